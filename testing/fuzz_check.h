// FUZZ_CHECK(cond) and FUZZ_CHECK_EQ(a, b): the invariants a fuzz target asserts. A failure
// prints where and what, then aborts, which libFuzzer reports as a crash (with the input
// saved) and the corpus replay test as a failed test. Unlike assert(), they are on in every
// build mode.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

// For values that convert to std::string (strings, string_views): both are printed.
#define FUZZ_CHECK_EQ(a, b)                                                                       \
  do {                                                                                            \
    const auto& fuzz_a_ = (a);                                                                    \
    const auto& fuzz_b_ = (b);                                                                    \
    if (!(fuzz_a_ == fuzz_b_)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s == %s\n  %s\n  %s\n", __FILE__, __LINE__, #a, \
                   #b, std::string(fuzz_a_).c_str(), std::string(fuzz_b_).c_str());               \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)
