#include "proxy/server/internal/process.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "proxy/server/internal/errors.h"

namespace monolake::proxy::server::internal {

Result<void> raise_open_files(const config::Config& config, uint64_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return Error::from_errno(errno, "getrlimit");
  if (limit.rlim_cur >= wanted) return ok();
  rlimit raised = limit;
  raised.rlim_cur = wanted;
  if (raised.rlim_max < wanted) raised.rlim_max = wanted;
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    const int err = errno;
    return config_error(config, "runtime.max_open_files",
                        fmt::format("cannot raise the open-file limit to {} (now {}, hard limit "
                                    "{}): {}",
                                    wanted, limit.rlim_cur, limit.rlim_max, std::strerror(err)));
  }
  ML_LOG(kInfo, "open-file limit raised from {} to {}", limit.rlim_cur, wanted);
  return ok();
}

Result<void> drop_privileges(const config::Config& config, const std::string& user) {
  errno = 0;
  const passwd* pw = ::getpwnam(user.c_str());
  if (!pw) return config_error(config, "runtime.user", "no such user \"" + user + "\"");
  if (::geteuid() != 0) {
    if (pw->pw_uid == ::geteuid()) return ok();  // already that user
    return config_error(config, "runtime.user",
                        "cannot switch to \"" + user + "\": not started as root");
  }
  if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setgid(pw->pw_gid) != 0 ||
      ::setuid(pw->pw_uid) != 0) {
    return config_error(config, "runtime.user",
                        "cannot switch to \"" + user + "\": " + std::strerror(errno));
  }
  if (::setuid(0) == 0) {
    return config_error(config, "runtime.user", "privileges could not be dropped");
  }
  ML_LOG(kInfo, "running as user {} (uid {})", user, pw->pw_uid);
  return ok();
}

}  // namespace monolake::proxy::server::internal
