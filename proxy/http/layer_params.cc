#include "proxy/http/layer_params.h"

#include <netinet/in.h>
#include <sys/socket.h>

namespace monolake::proxy::http {}  // namespace monolake::proxy::http
