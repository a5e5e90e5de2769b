// Compression: the `compression` layer of a server or a route. It compresses response bodies
// as they stream (http/compression/compressed_body.h) with the coding the request's
// Accept-Encoding prefers among `algorithms` (http/compression/negotiate.h).
//
// A response is compressed only if it has a body whose media type is in `types`, whose length
// is unknown or at least `min_length`, that is not already encoded (Content-Encoding), that
// does not say Cache-Control: no-transform, and whose status is not 1xx, 204, 206 or 304; never
// for HEAD or Range requests. Such a response gets Vary: Accept-Encoding whether it is
// compressed or not (a cache must not hand a compressed copy to a client that cannot decode
// it). A compressed one loses Content-Length (HTTP/1.1 sends it chunked) and a strong ETag
// becomes weak (W/"..."): the bytes differ from the upstream's.
//
// Stateless: a reload builds a new one. With a table on the server and one on a route, the
// route's decides for that route's responses (the layer marks the request's context, and the
// server's layer, outside it, then leaves the response alone).
#pragma once

#include "proxy/http/http_service.h"
#include "proxy/http/layer_params.h"
#include "proxy/service/stack.h"

namespace monolake::proxy::http {

class Compression final : public Layer<monolake::http::Request, monolake::http::Response> {
 public:
  Compression(std::shared_ptr<const CompressionParams> params, std::shared_ptr<Inner> inner)
      : Layer(std::move(inner)), params_(std::move(params)) {}
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;

 private:
  // Whether the response may be compressed at all (then it varies on Accept-Encoding).
  bool compressible(const monolake::http::Response& response) const;

  std::shared_ptr<const CompressionParams> params_;
};

class CompressionFactory final : public FactoryLayer<Compression> {
 public:
  explicit CompressionFactory(CompressionParams params)
      : params_(std::make_shared<const CompressionParams>(std::move(params))) {}
  Result<std::shared_ptr<Compression>> make_via_ref(const Compression* previous,
                                                    std::shared_ptr<HttpService> inner,
                                                    const Build& build) const override;

 private:
  std::shared_ptr<const CompressionParams> params_;
};

}  // namespace monolake::proxy::http
