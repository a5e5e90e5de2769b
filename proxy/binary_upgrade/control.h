// Binary upgrade over `[runtime] control_socket`: a running monolake hands its listening sockets
// (SCM_RIGHTS) and TLS ticket keys to its replacement, then drains.
//
//   new process                          old process (ControlServer)
//   connect(control_socket)
//   "upgrade\n"                 ---->
//                               <----    "listener N ADDRESS\n"... "tickets HEX\n" "end\n",
//                                        then the sockets, in batches with SCM_RIGHTS
//   start workers on them (not
//   accepting yet); bind the control
//   socket anew
//   "ready\n"                   ---->    on_ready(): stop accepting (returns once it has)
//                               <----    "bye\n"; then drain and exit
//   start accepting
//
// The new process accepts only once the old one has stopped (Proxy::release_accepts says why).
// If the new process fails before "ready" (bad config, failed bind, crash), its connection just
// closes and the old process goes on serving as if nothing happened.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/result.h"
#include "proxy/server/server.h"
#include "transport/stream.h"

namespace monolake::proxy::binary_upgrade {

class ControlServer {
 public:
  struct Hooks {
    std::function<server::Handover()> handover;  // called on the control thread
    // The new process is ready: stop accepting, return once no worker accepts any more (the
    // new one starts when this returns), then drain.
    std::function<void()> on_ready;
  };
  // Binds `path` (mode 0600). `replace` (the new process of an upgrade) takes the path over from
  // the live old process; otherwise a live socket at `path` is an error (another monolake).
  static Result<std::unique_ptr<ControlServer>> start(const std::string& path, bool replace,
                                                      Hooks hooks);
  ~ControlServer();

 private:
  ControlServer() = default;
  void run();
  void serve(int connection);

  Hooks hooks_;
  std::string path_;
  transport::UnixSocketFile file_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The new process's side: connects to `path`, asks for the sockets and keys. On success the
// connection stays open in `*connection` until confirm_ready().
Result<server::Handover> request_handover(const std::string& path, int* connection);
// Tells the old process the new one is ready and waits (at most 5 s) until it has stopped
// accepting; closes `connection`. Whatever it returns, the caller then starts accepting.
Result<void> confirm_ready(int connection);

}  // namespace monolake::proxy::binary_upgrade
