"""The external repositories Monolake needs, for this WORKSPACE and for outside ones.

An outside Bazel workspace (Bazel 4.2.3, WORKSPACE mode) depends on a checkout of Monolake so:

    local_repository(
        name = "monolake",
        path = "/path/to/monolake",
    )

    load("@monolake//bazel:repositories.bzl", "monolake_repositories")

    monolake_repositories("/path/to/monolake")

and then depends on @monolake//runtime, @monolake//transport, @monolake//tls, @monolake//http...
and may load @monolake//bazel:defs.bzl for ml_cc_library / ml_cc_binary / ml_cc_test.
tests/external_workspace_test.sh is such a workspace, built and tested by tools/test.sh.

`path` must be the same path as the local_repository's: a WORKSPACE macro cannot find where a
repository lives on disk, and the offline stand-ins below are local_repositories inside the
checkout. A relative `path` is relative to the calling workspace's root, as in local_repository.

Each repository is declared only if the calling WORKSPACE has not declared one of that name
already, so a workspace with the real rules_cc (or another llhttp) keeps its own.
"""

def _join(path, rel):
    if path in ("", "."):
        return rel
    return path.rstrip("/") + "/" + rel

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def monolake_repositories(path):
    """Declares rules_cc, rules_java, remote_coverage_tools, llhttp_src and llhttp_include.

    Args:
      path: the Monolake checkout, as given to local_repository(name = "monolake", path = ...).
    """

    # Bazel 4.2.3's @bazel_tools wants to download these three repositories on the first build.
    # This machine (and CI) has no network, so each is a tiny local stand-in that forwards to
    # the native rules. Moving to a newer Bazel with the real rules_cc is a change here only.
    _maybe(
        native.local_repository,
        name = "rules_cc",
        path = _join(path, "bazel/local_repos/rules_cc"),
    )
    _maybe(
        native.local_repository,
        name = "rules_java",
        path = _join(path, "bazel/local_repos/rules_java"),
    )
    _maybe(
        native.local_repository,
        name = "remote_coverage_tools",
        path = _join(path, "bazel/local_repos/remote_coverage_tools"),
    )

    # llhttp 8.1 ships as C sources in Debian's node-llhttp package; third_party/BUILD.bazel
    # compiles them. The header lives in a separate directory, hence two repositories.
    # Label() resolves against this file's repository: @monolake//third_party:... from outside,
    # //third_party:... from Monolake's own WORKSPACE.
    _maybe(
        native.new_local_repository,
        name = "llhttp_src",
        build_file = str(Label("//third_party:llhttp_src.BUILD")),
        path = "/usr/share/llhttp",
    )
    _maybe(
        native.new_local_repository,
        name = "llhttp_include",
        build_file = str(Label("//third_party:llhttp_include.BUILD")),
        path = "/usr/share/include/llhttp",
    )
