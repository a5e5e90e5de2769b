// The service type of an HTTP request chain: a request in, a response (whose body streams) out.
#pragma once

#include "http/exchange.h"
#include "proxy/service/service.h"

namespace monolake::proxy::http {

using HttpService = Service<monolake::http::Request, monolake::http::Response>;

}  // namespace monolake::proxy::http
