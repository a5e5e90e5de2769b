#include "proxy/upstream/connect.h"

#include <algorithm>
#include <optional>

#include "base/log.h"
#include "runtime/cancel.h"
#include "runtime/runtime.h"

namespace monolake::proxy {

runtime::Task<Result<UpstreamConnection>> connect_upstream(UpstreamSet& upstreams,
                                                           std::chrono::nanoseconds timeout,
                                                           std::string log_as, std::string* tried,
                                                           std::optional<uint64_t> key_hash) {
  runtime::Runtime* rt = runtime::Runtime::current();
  runtime::CancelState* cancel = co_await runtime::current_cancel_state{};
  const size_t attempts = std::min<size_t>(kMaxConnectAttempts, upstreams.size());
  std::optional<Error> last;
  for (size_t attempt = 0; attempt < attempts; ++attempt) {
    // A failed upstream backs off, so a retry with the same key lands elsewhere.
    const size_t index = upstreams.pick(rt->now(), key_hash);
    const transport::SocketAddress& address = upstreams.at(index).address;
    if (tried) *tried = address.to_string();
    Result<transport::Stream> stream =
        co_await transport::Stream::connect(address, {.timeout = timeout});
    if (stream) {
      upstreams.report_success(index);
      co_return UpstreamConnection{index, std::move(*stream)};
    }
    if (cancel && cancel->cancelled()) co_return std::move(stream).error();
    upstreams.report_failure(index, rt->now());
    ML_LOG(kWarn, "{}: upstream {} failed: {}", log_as, address.to_string(),
           stream.error().to_string());
    last = std::move(stream).error();
  }
  if (!last) co_return Error(ErrorCode::kInvalidArgument, "no upstreams");
  co_return std::move(*last);
}

}  // namespace monolake::proxy
