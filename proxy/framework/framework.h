// The public framework: everything a proxy binary of your own includes (docs/framework.md).
//
//   registry.h      register request filters, connection filters and server kinds by name,
//                   with parameter schemas
//   app.h           run(): the whole binary (flags, config, workers, reload, upgrade, admin)
//   params.h        ParamSchema and Params: a layer's own configuration keys
//   stack.h         FactoryLayer / make_via_ref: a layer built from its own previous generation
//   http_service.h  the HTTP request service type; l4/connection.h the connection types
//   connection/     connection layers: filter.h (before and after TLS), context.h, chain.h;
//                   transport/prefixed.h for bytes a layer read ahead
//   metrics.h       counters that appear in /stats
#pragma once

#include "http/exchange.h"
#include "proxy/connection/chain.h"
#include "proxy/connection/context.h"
#include "proxy/connection/filter.h"
#include "proxy/framework/app.h"
#include "proxy/framework/registry.h"
#include "proxy/http/http_service.h"
#include "proxy/l4/connection.h"
#include "proxy/metrics/metrics.h"
#include "proxy/params/params.h"
#include "proxy/service/generation.h"
#include "proxy/service/stack.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/connect.h"
#include "transport/prefixed.h"
