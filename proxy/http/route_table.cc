#include "proxy/http/route_table.h"

#include "proxy/http/upstream_request.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

Task<Result<mh::Response>> RouteTable::call(mh::Request request) {
  std::optional<size_t> route = router_.find(request.head.authority(), request.head.path());
  if (!route) co_return error_response(request, 404, "no route");
  if (request.context) request.context->route = names_[*route];
  co_return co_await routes_[*route]->call(std::move(request));
}

Result<std::shared_ptr<RouteTable>> RouteTableFactory::make_via_ref(const RouteTable*,
                                                                    std::shared_ptr<HttpService>,
                                                                    const Build& build) const {
  Router router;
  std::vector<std::shared_ptr<HttpService>> routes;
  std::vector<std::string> names;
  OccurrenceNames scopes;  // two routes with one host and path (the first matches) stay apart
  for (const Route& route : routes_) {
    if (auto added = router.add(route.host, route.path); !added) return std::move(added).error();
    const std::string id = route.id.empty() ? route.host + " " + route.path : route.id;
    Result<std::shared_ptr<HttpService>> chain =
        route.stack.make(build.scoped(scopes.next("route[" + id + "]")));
    if (!chain) return std::move(chain).error();
    routes.push_back(std::move(*chain));
    names.push_back(route.host + " " + route.path);
  }
  return std::make_shared<RouteTable>(std::move(router), std::move(routes), std::move(names));
}

}  // namespace monolake::proxy::http
