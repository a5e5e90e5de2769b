#include "proxy/framework/control_loop.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "base/log.h"
#include "runtime/io.h"

namespace monolake::proxy::framework {

Result<std::unique_ptr<ControlLoop>> ControlLoop::create(const std::vector<int>& signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (int e = pthread_sigmask(SIG_BLOCK, &set, nullptr); e != 0) {
    return Error(ErrorCode::kIo, "pthread_sigmask", e);
  }
  std::unique_ptr<ControlLoop> loop(new ControlLoop());
  loop->signal_fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (loop->signal_fd_ < 0) return Error(ErrorCode::kIo, "signalfd", errno);
  // A small ring: the loop waits on a handful of descriptors and timers, never on traffic.
  runtime::RuntimeOptions options;
  options.entries = 64;
  options.pooled_buffers = 4;
  options.pooled_buffer_size = 4096;
  Result<std::unique_ptr<runtime::Runtime>> rt = runtime::Runtime::create(options);
  if (!rt) return std::move(rt).error();
  loop->runtime_ = std::move(*rt);
  return loop;
}

ControlLoop::~ControlLoop() {
  abandon_jobs();
  runtime_.reset();  // its tasks first: the signal task polls signal_fd_
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

void ControlLoop::on_signal(int signal, std::function<void()> handler) {
  handlers_[signal] = std::move(handler);
}

runtime::Task<void> ControlLoop::read_signals() {
  while (true) {
    Result<uint32_t> ready = co_await runtime::poll(signal_fd_, POLLIN);
    if (!ready) {
      if (ready.error().code() == ErrorCode::kCancelled) co_return;
      ML_LOG(kError, "control loop: waiting for signals: {}", ready.error().to_string());
      co_return;
    }
    signalfd_siginfo info;
    while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      auto it = handlers_.find(static_cast<int>(info.ssi_signo));
      if (it != handlers_.end()) it->second();
    }
  }
}

int ControlLoop::run(runtime::Task<int> main) {
  runtime_->spawn(read_signals());
  const int status = runtime_->block_on(std::move(main));
  abandon_jobs();
  return status;
}

bool ControlLoop::enqueue(std::function<void()> run, std::function<void()> abandon) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ended_) return false;
    jobs_.push_back(Job{std::move(run), std::move(abandon)});
  }
  runtime_->post([this] { run_jobs(); });
  return true;
}

void ControlLoop::run_jobs() {
  while (true) {
    Job job;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job.run();
  }
}

void ControlLoop::abandon_jobs() {
  std::deque<Job> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ended_ = true;
    left.swap(jobs_);
  }
  for (Job& job : left) job.abandon();
}

}  // namespace monolake::proxy::framework
