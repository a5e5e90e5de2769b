// Assertion tiers.
//   ML_CHECK(cond)   always on: a broken invariant that would corrupt memory or state if we went
//                    on. Prints the condition and location, then aborts.
//   ML_DCHECK(cond)  debug builds only (compiled out under NDEBUG, i.e. -c opt): expensive or
//                    hot-path checks of our own logic.
// Neither is for validating input: bad input is an Error, never an abort.
#pragma once

namespace monolake::detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line, const char* msg);
}  // namespace monolake::detail

#define ML_CHECK_MSG(cond, msg) \
  ((cond) ? (void)0 : ::monolake::detail::check_failed(#cond, __FILE__, __LINE__, (msg)))
#define ML_CHECK(cond) ML_CHECK_MSG(cond, nullptr)

#ifdef NDEBUG
#define ML_DCHECK(cond) ((void)sizeof(cond))
#else
#define ML_DCHECK(cond) ML_CHECK(cond)
#endif
