// RouteTable: picks the route of a request by host and path (router.h) and hands the request
// to that route's chain; 404 when none matches.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "proxy/http/http_service.h"
#include "proxy/http/router.h"
#include "proxy/service/stack.h"

namespace monolake::proxy::http {

class RouteTable final : public HttpService {
 public:
  // names[i]: route i's "HOST PATH", written into the request's context when it matches.
  RouteTable(Router router, std::vector<std::shared_ptr<HttpService>> routes,
             std::vector<std::string> names = {})
      : router_(std::move(router)), routes_(std::move(routes)), names_(std::move(names)) {
    names_.resize(routes_.size());
  }
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;
  const std::vector<std::shared_ptr<HttpService>>& routes() const { return routes_; }

 private:
  Router router_;
  std::vector<std::shared_ptr<HttpService>> routes_;
  std::vector<std::string> names_;
};

using HttpStack = Stack<monolake::http::Request, monolake::http::Response>;

// Each route's own stack (its filters, then forwarding or a direct answer), built in a scope
// of its own: "route[HOST PATH]", or "route[ID]" for a route with an explicit id. So a route
// keeps its state (balancer position, counters) over a reload however routes are inserted or
// reordered around it.
class RouteTableFactory final : public FactoryLayer<RouteTable> {
 public:
  struct Route {
    std::string host;  // "" for any host
    std::string path;  // matchit pattern
    std::string id;    // "" for "HOST PATH"
    HttpStack stack;
  };
  explicit RouteTableFactory(std::vector<Route> routes) : routes_(std::move(routes)) {}
  Result<std::shared_ptr<RouteTable>> make_via_ref(const RouteTable* previous,
                                                   std::shared_ptr<HttpService> inner,
                                                   const Build& build) const override;

 private:
  std::vector<Route> routes_;
};

}  // namespace monolake::proxy::http
