// Two-phase update of every worker's Slot: prepare everywhere; if any worker fails, abort
// everywhere (every worker keeps serving its old chain) and report the first error; otherwise
// commit everywhere. Called from a control thread (not a worker): it blocks until the workers
// have answered.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "proxy/service/slot.h"
#include "runtime/worker_pool.h"

namespace monolake::proxy {

namespace detail {
// Runs `fn(i)` on every worker i and waits for all the results.
template <class T>
std::vector<T> run_on_each_worker(runtime::WorkerPool& pool, const std::function<T(size_t)>& fn) {
  std::vector<std::promise<T>> promises(pool.size());
  std::vector<std::future<T>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  for (size_t i = 0; i < pool.size(); ++i) {
    pool.post(i, [&fn, &promises, i] { promises[i].set_value(fn(i)); });
  }
  std::vector<T> results;
  for (auto& f : futures) results.push_back(f.get());
  return results;
}
}  // namespace detail

// `slot_of(i)` gives worker i's slot; it is only dereferenced on worker i's thread.
// `after_commit(i)`, if given, runs on worker i's thread right after its commit, before the
// worker does anything else (e.g. to start or stop listeners that go with the new chain).
template <class S>
Result<void> update_all(runtime::WorkerPool& pool, const std::function<Slot<S>*(size_t)>& slot_of,
                        std::shared_ptr<const Factory<S>> factory,
                        const std::function<void(size_t)>& after_commit = {}) {
  std::function<std::optional<Error>(size_t)> prepare = [&](size_t i) -> std::optional<Error> {
    Result<void> r = slot_of(i)->prepare(*factory);
    if (!r) return std::move(r).error();
    return std::nullopt;
  };
  std::vector<std::optional<Error>> prepared = detail::run_on_each_worker(pool, prepare);
  for (size_t i = 0; i < prepared.size(); ++i) {
    if (!prepared[i]) continue;
    std::function<bool(size_t)> abort = [&](size_t w) {
      slot_of(w)->abort();
      return true;
    };
    detail::run_on_each_worker(pool, abort);
    const Error& e = *prepared[i];
    ML_LOG(kError, "update aborted: worker {}: {}", i, e.to_string());
    return Error(e.code(), "worker " + std::to_string(i) + ": " + e.message(), e.sys_errno());
  }
  std::function<bool(size_t)> commit = [&](size_t w) {
    const bool committed = slot_of(w)->commit();
    if (after_commit) after_commit(w);
    return committed;
  };
  detail::run_on_each_worker(pool, commit);
  return ok();
}

}  // namespace monolake::proxy
