#include "proxy/http/route_table.h"

#include "proxy/http/upstream_request.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

Task<Result<mh::Response>> RouteTable::call(mh::Request request) {
  std::optional<size_t> route = router_.find(request.head.authority(), request.head.path());
  if (!route) co_return error_response(request, 404, "no route");
  co_return co_await routes_[*route]->call(std::move(request));
}

}  // namespace monolake::proxy::http
