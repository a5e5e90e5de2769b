// RouteTable: picks the route of a request by host and path (router.h) and hands the request
// to that route's chain; 404 when none matches.
#pragma once

#include <memory>
#include <vector>

#include "proxy/http/http_service.h"
#include "proxy/http/pool.h"
#include "proxy/http/router.h"

namespace monolake::proxy::http {

class RouteTable final : public HttpService {
 public:
  RouteTable(Router router, std::vector<std::shared_ptr<HttpService>> routes,
             std::shared_ptr<ConnectionPool> pool)
      : router_(std::move(router)), routes_(std::move(routes)), pool_(std::move(pool)) {}
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;
  const std::vector<std::shared_ptr<HttpService>>& routes() const { return routes_; }
  const std::shared_ptr<ConnectionPool>& pool() const { return pool_; }

 private:
  Router router_;
  std::vector<std::shared_ptr<HttpService>> routes_;
  std::shared_ptr<ConnectionPool> pool_;
};

}  // namespace monolake::proxy::http
