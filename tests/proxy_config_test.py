"""monolake's command line and configuration errors, as a user meets them: `--check`,
`--version`, `-h`, and one bad config per error class, each asserting the message names the
file, the key path and the reason, and that the process exits 1 without serving.

Usage: proxy_config_test.py MONOLAKE MAKE_TEST_CERTS
"""

import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])
MAKE_CERTS = os.path.abspath(sys.argv[2])
DIR = pt.tmpdir()
CERTS = os.path.join(DIR, "certs")


def run(*args, timeout=20):
    return subprocess.run([MONOLAKE] + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=DIR)


def write(name, text):
    path = os.path.join(DIR, name)
    with open(path, "w") as f:
        f.write(text)
    return path


GOOD = """[runtime]
worker_threads = 1

[servers.edge]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
tls = { chain = "certs/a.pem", key = "certs/a.key", stack = "gnutls" }

[[servers.edge.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9" } }]
"""


def good():
    return GOOD % pt.free_port()


def expect_rejected(name, text, *expected):
    """--check and a real start both exit 1 and print every expected fragment."""
    path = write(name, text)
    for args in (["--check", "-c", path], ["-c", path]):
        out = run(*args)
        assert out.returncode == 1, (args, out.returncode, out.stdout, out.stderr)
        for fragment in expected:
            fragment = fragment.replace("FILE", path)
            assert fragment in out.stderr, "%r not in:\n%s" % (fragment, out.stderr)
        assert "Segmentation" not in out.stderr and "terminate called" not in out.stderr


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("monolake "), out
    out = run("-h")
    assert out.returncode == 0 and "--check" in out.stdout and "--log-level" in out.stdout, out
    out = run("--log-level", "loud", "--check")
    assert out.returncode == 1 and "--log-level" in out.stderr, out
    out = run("--no-such-flag")
    assert out.returncode != 0, out


def test_check_accepts_a_good_config_and_binds_nothing():
    subprocess.run([MAKE_CERTS, CERTS], check=True, timeout=60, capture_output=True)
    text = good()
    port = int(text.split("127.0.0.1:")[1].split('"')[0])
    held = socket.socket()  # --check must not bind: holding the port changes nothing
    held.bind(("127.0.0.1", port))
    held.listen(1)
    path = write("good.toml", text)
    out = run("--check", "-c", path)
    held.close()
    assert out.returncode == 0 and out.stdout == "ok\n", (out.stdout, out.stderr)
    # Also from another directory: relative certificate paths follow the config file.
    out = subprocess.run([MONOLAKE, "--check", "-c", path], capture_output=True, text=True,
                         cwd="/", timeout=20)
    assert out.returncode == 0, out.stderr


def test_unknown_key():
    expect_rejected("unknown.toml", good().replace("worker_threads = 1",
                                                   "worker_threads = 1\nworkers = 4"),
                    "FILE: runtime.workers: unknown key")


def test_wrong_type():
    expect_rejected("type.toml", good().replace("worker_threads = 1", 'worker_threads = "two"'),
                    "FILE: runtime.worker_threads: ")


def test_empty_upstream_list():
    text = good().replace('upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9" } }]',
                          "upstreams = []")
    expect_rejected("empty.toml", text, "FILE: servers.edge.routes[0].upstreams: ")


def test_bad_address():
    text = good().replace('value = "127.0.0.1:9"', 'value = "127.0.0.1:99999"')
    expect_rejected("address.toml", text, "FILE: servers.edge.routes[0].upstreams[0].endpoint")


def test_unreadable_certificate():
    text = good().replace("certs/a.pem", "certs/missing.pem")
    expect_rejected("cert.toml", text, "FILE: servers.edge.tls", "missing.pem")


def test_rustls_is_refused():
    text = good().replace('stack = "gnutls"', 'stack = "rustls"')
    expect_rejected("rustls.toml", text, "FILE: servers.edge.tls.stack: ", "openssl", "gnutls")


def test_toml_syntax_error():
    expect_rejected("syntax.toml", good() + "\n[servers.edge\n", "FILE:")


def test_missing_file():
    out = run("-c", os.path.join(DIR, "does-not-exist.toml"))
    assert out.returncode == 1 and "does-not-exist.toml" in out.stderr, out


def test_every_problem_reported_at_once():
    text = good().replace("worker_threads = 1", "worker_threads = 0\nbogus = true")
    expect_rejected("many.toml", text, "FILE: runtime.worker_threads: ", "FILE: runtime.bogus: ")


def test_unsupported_combination_is_an_error_not_a_crash():
    # GOOD has a TLS listener: TLS on a thrift listener is not supported yet.
    text = good().replace('proxy_type = "tcp"', 'proxy_type = "thrift"')
    expect_rejected("thrift.toml", text, "FILE: servers.edge.tls: ", "not supported yet")


def test_listener_that_cannot_bind():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    text = GOOD % taken.getsockname()[1]
    path = write("bind.toml", text)
    out = run("-c", path)
    taken.close()
    assert out.returncode == 1, out
    assert path + ": servers.edge.listener: " in out.stderr and "in use" in out.stderr, out.stderr


def test_bad_environment_runtime():
    path = write("env.toml", good())
    out = subprocess.run([MONOLAKE, "-c", path], capture_output=True, text=True, timeout=20,
                         env=dict(os.environ, MONOLAKE_RUNTIME="fast"))
    assert out.returncode == 1 and "MONOLAKE_RUNTIME" in out.stderr, out


if __name__ == "__main__":
    pt.main([(name, fn) for name, fn in list(globals().items()) if name.startswith("test_")])
