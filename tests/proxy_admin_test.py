"""The admin API of a running monolake: /ready, /stats, /config, POST /reload (good and bad
config), Unix socket mode 0600, TCP admin refused on a non-loopback address.

Usage: proxy_admin_test.py MONOLAKE
"""

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])


def config(port, body, admin):
    return """[admin]
listen = "%s"
[runtime]
worker_threads = 2
[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
[[servers.web.routes]]
path = "/{*rest}"
return = { status = 200, body = "%s" }
""" % (admin, port, body)


def get(port, path="/x"):
    out = subprocess.run(["curl", "-s", "--max-time", "5", "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, timeout=10)
    return out.stdout


def test_admin_over_unix_socket():
    short = tempfile.mkdtemp(prefix="ml-", dir="/tmp")  # unix paths are limited to 107 bytes
    try:
        port = pt.free_port()
        ml = pt.Monolake(MONOLAKE, config(port, "one", "unix:admin.sock"), short)
        ml.wait_ready()
        sock = os.path.join(short, "admin.sock")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert pt.admin_request("/ready", unix=sock) == (200, "ready\n")
        assert get(port) == "one"
        assert get(port) == "one"
        status, stats = pt.admin_request("/stats", unix=sock)
        assert status == 200
        assert 'monolake_http_responses_total{server="web",class="2xx"} 2' in stats, stats
        assert 'monolake_http_request_duration_seconds_count{server="web"} 2' in stats, stats
        status, body = pt.admin_request("/config", unix=sock)
        parsed = json.loads(body)
        assert parsed["servers"]["web"]["routes"][0]["return"]["body"] == "one", parsed
        # A good reload through the API.
        ml.write_config(config(port, "two", "unix:admin.sock"))
        assert pt.admin_request("/reload", method="POST", unix=sock) == (200, '{"ok": true}\n')
        assert get(port) == "two"
        # Counters survive the reload.
        status, stats = pt.admin_request("/stats", unix=sock)
        assert 'class="2xx"} 3' in stats, stats
        # A bad one: 409 with the reason, the running config stays.
        ml.write_config(config(port, "three", "unix:admin.sock") + "bogus = 1\n")
        status, body = pt.admin_request("/reload", method="POST", unix=sock)
        assert status == 409, (status, body)
        answer = json.loads(body)
        assert answer["ok"] is False and "bogus: unknown key" in answer["error"], answer
        assert get(port) == "two"
        assert pt.admin_request("/reload", method="GET", unix=sock)[0] == 405
        assert pt.admin_request("/nope", unix=sock)[0] == 404
        assert ml.stop() == 0
        assert not os.path.exists(sock)
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_reload_during_drain_is_refused():
    # While draining, POST /reload must not change anything (and must not crash the process):
    # 409 "shutting down", then a clean exit 0 when the open connection ends.
    import signal
    short = tempfile.mkdtemp(prefix="ml-", dir="/tmp")
    try:
        port = pt.free_port()
        text = config(port, "one", "unix:admin.sock").replace(
            "[runtime]\n", "[runtime]\ndrain_timeout_sec = 10\n")
        ml = pt.Monolake(MONOLAKE, text, short)
        ml.wait_ready()
        sock = os.path.join(short, "admin.sock")
        held = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        assert b"200" in held.recv(1000)
        ml.signal(signal.SIGTERM)
        pt.wait_until(lambda: "draining" in ml.err(), 5, "drain start")
        status, body = pt.admin_request("/reload", method="POST", unix=sock)
        assert status == 409 and "shutting down" in body, (status, body)
        assert ml.running()
        held.close()  # the last connection ends: the drain is over
        assert ml.wait(10) == 0, ml.err()
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_tcp_admin_must_be_loopback():
    d = pt.tmpdir()
    path = os.path.join(d, "remote.toml")
    with open(path, "w") as f:
        f.write(config(pt.free_port(), "x", "0.0.0.0:%d" % pt.free_port()))
    out = subprocess.run([MONOLAKE, "--check", "-c", path], capture_output=True, text=True,
                         timeout=20)
    assert out.returncode == 1 and "admin.listen: " in out.stderr and "allow_remote" in out.stderr, out
    # On loopback TCP it serves.
    admin_port, port = pt.free_port(), pt.free_port()
    ml = pt.Monolake(MONOLAKE, config(port, "tcp", "127.0.0.1:%d" % admin_port), d,
                     name="monolake-tcp-admin")
    ml.wait_ready()
    assert pt.admin_request("/ready", port=admin_port) == (200, "ready\n")
    assert ml.stop() == 0


if __name__ == "__main__":
    pt.main([(name, fn) for name, fn in list(globals().items()) if name.startswith("test_")])
