"""Project macros: every Monolake target gets the same language level and warnings.

Use ml_cc_library / ml_cc_binary / ml_cc_test for project code. Code under third_party/ uses
the plain rules with ML_THIRD_PARTY_C_COPTS, so vendor sources are not held to -Werror.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

# Labels below are wrapped in Label() so that they name Monolake's own targets (@monolake//...)
# when a workspace outside loads this file as @monolake//bazel:defs.bzl; a plain string would be
# resolved in the package that calls the macro.

ML_CXX_COPTS = [
    "-std=c++20",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wnon-virtual-dtor",
    "-Wimplicit-fallthrough",
]

# Symmetric transfer between coroutines (runtime/task.h) only stops deep await chains from
# growing the stack when the compiler turns the transfer into a tail call. Clang always does;
# GCC 12 only with sibling-call optimisation, which -O0 lacks. So non-opt builds use -Og with
# sibling calls rather than -O0 (opt builds already have -O2).
ML_DEBUG_OPT_COPTS = select({
    str(Label("//bazel:opt")): [],
    "//conditions:default": [
        "-Og",
        "-foptimize-sibling-calls",
    ],
})

# C sources of our own (none yet) would get these; vendor C code gets the lax set.
ML_C_COPTS = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
]

ML_THIRD_PARTY_C_COPTS = [
    "-std=c11",
    "-w",
]

def ml_cc_library(name, copts = [], **kwargs):
    cc_library(name = name, copts = ML_CXX_COPTS + ML_DEBUG_OPT_COPTS + copts, **kwargs)

def ml_cc_binary(name, copts = [], **kwargs):
    cc_binary(name = name, copts = ML_CXX_COPTS + ML_DEBUG_OPT_COPTS + copts, **kwargs)

def ml_cc_test(name, copts = [], deps = [], gtest_main = True, **kwargs):
    """A GoogleTest test. gtest_main=False for tests that bring their own main()."""
    test_deps = [str(Label("//third_party:gtest_main" if gtest_main else "//third_party:gtest"))]
    cc_test(
        name = name,
        copts = ML_CXX_COPTS + ML_DEBUG_OPT_COPTS + copts,
        deps = deps + test_deps,
        **kwargs
    )

def ml_cc_benchmark(name, copts = [], deps = [], tags = [], **kwargs):
    """A Google Benchmark binary. Run with `bazel run -c opt`; never a timed test."""
    cc_binary(
        name = name,
        copts = ML_CXX_COPTS + copts,
        deps = deps + [str(Label("//third_party:benchmark_main"))],
        tags = tags + ["benchmark"],
        **kwargs
    )

def ml_cc_fuzz(name, fuzz_src, library, library_srcs, deps, corpus = "testdata/fuzz_corpus", replay_deps = []):
    """A libFuzzer target and the test that replays its seed corpus.

    NAME: the libFuzzer binary, clang only (tagged manual): build it with --config=asan, run
    `bazel-bin/PKG/NAME -max_total_time=60 NEW_CORPUS_DIR PKG/CORPUS`. `library_srcs` (the
    sources of `library`) are compiled into it rather than taken from `library`, so that
    libFuzzer's coverage instrumentation sees them; keep them and `deps` in step with `library`.
    NAME_replay_test: the same fuzz function under the default compiler with a small main that
    replays every corpus file, so plain `bazel test` covers the fuzz invariants.
    """
    check = str(Label("//testing:fuzz_check"))
    ml_cc_binary(
        name = name,
        srcs = library_srcs + [fuzz_src],
        copts = ["-fsanitize=fuzzer,address"],
        linkopts = ["-fsanitize=fuzzer,address"],
        # tools/fuzz.sh finds the fuzz targets by the "libfuzzer" tag and their corpus by the
        # "corpus=" one.
        tags = ["manual", "libfuzzer", "corpus=" + native.package_name() + "/" + corpus],
        deps = deps + [check],
    )
    ml_cc_test(
        name = name + "_replay_test",
        srcs = [fuzz_src],
        args = [native.package_name() + "/" + corpus],
        copts = ["-DML_FUZZ_REPLAY_MAIN"],
        data = native.glob([corpus + "/**"]),
        gtest_main = False,
        deps = [library, check, str(Label("//testing:fuzz_replay_main"))] + replay_deps,
    )
