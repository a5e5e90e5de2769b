"""examples/custom_protocol (a user server kind, "resp") as a user runs it: two real
redis-servers behind it, redis-cli and raw sockets as clients.

- SET/GET through the proxy land on the redis their route names (checked against each redis
  directly); a pipelined burst is answered in order; an unrouted command gets its error.
- A malformed command closes that client's connection while another client keeps working.
- One redis stopped: `-ERR upstream unavailable` for its route, the other route still works.
- A reload that moves a command to the other route applies to new connections; a bad kind key
  is refused at reload with FILE: KEY.PATH: reason and the running configuration stays.

Usage: example_custom_protocol_test.py CUSTOM_PROTOCOL_BINARY
"""

import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

BINARY = os.path.abspath(sys.argv[1])
DIR = pt.tmpdir()


def redis(port, name):
    p = pt.Process(["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no"], name, DIR)
    pt.wait_until(lambda: pt.port_open(port), 10, name)
    return p


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port)] + list(args), capture_output=True,
                         timeout=20)
    return out.stdout.decode().strip()


def config(port, strings, other, routes=None, extra=""):
    routes = routes or "GET,SET"
    return """[runtime]
worker_threads = 1
[servers.cache]
proxy_type = "resp"
listener = { type = "socket", value = "127.0.0.1:%d" }
%s
[[servers.cache.routes]]
path = "%s"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
[[servers.cache.routes]]
path = "LPUSH,LLEN,LRANGE,PING,DEL"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % (port, extra, routes, strings, other)


def raw(port, payload, expect_replies):
    """Sends `payload` at once (pipelined) and reads until `expect_replies` CRLF lines came,
    or the connection closed. Returns what was read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        got = b""
        while got.count(b"\r\n") < expect_replies:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def closed_after(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        return s.recv(65536) == b""


def test_resp_server_kind():
    p_strings, p_other, port = pt.free_ports(3)
    r1 = redis(p_strings, "redis-strings")
    r2 = redis(p_other, "redis-other")
    ml = pt.Monolake(BINARY, config(port, p_strings, p_other), DIR, name="custom_protocol")
    ml.wait_ready()
    assert "(resp)" in ml.out(), ml.out()

    assert cli(port, "SET", "k", "v1") == "OK"
    assert cli(port, "get", "k") == "v1"             # names match in any case
    assert cli(p_strings, "GET", "k") == "v1"        # it is on the strings redis
    assert cli(p_other, "GET", "k") == ""            # and not on the other one
    assert cli(port, "LPUSH", "q", "a", "b") == "2"
    assert cli(p_other, "LLEN", "q") == "2"
    assert cli(port, "PING") == "PONG"
    assert cli(port, "HSET", "h", "f", "v") == "ERR no route for command 'HSET'"

    # Pipelined: 200 commands in one write, 200 replies in order.
    n = 200
    burst = b"".join(b"*3\r\n$3\r\nSET\r\n$2\r\np%d\r\n$1\r\n%d\r\n" % (i % 10, i % 10)
                     for i in range(n))
    assert raw(port, burst, n) == b"+OK\r\n" * n
    gets = b"".join(b"*2\r\n$3\r\nGET\r\n$2\r\np%d\r\n" % i for i in range(10))
    assert raw(port, gets, 20) == b"".join(b"$1\r\n%d\r\n" % i for i in range(10))

    # A reply with more elements than max_args (1024 by default) still passes.
    push = b"*%d\r\n$5\r\nLPUSH\r\n$4\r\nlong\r\n" % 752 + b"$1\r\nx\r\n" * 750
    assert raw(port, push + push, 2) == b":750\r\n:1500\r\n"
    lrange = b"*4\r\n$6\r\nLRANGE\r\n$4\r\nlong\r\n$1\r\n0\r\n$2\r\n-1\r\n"
    assert raw(port, lrange, 1 + 2 * 1500).count(b"$1\r\nx\r\n") == 1500

    # Malformed: that connection closes; others carry on.
    assert closed_after(port, b"*1\n$3\r\nGET\r\n")      # a bare LF
    assert closed_after(port, b"$5\r\nhello\r\n")     # a command is an array
    assert cli(port, "GET", "k") == "v1"

    # One upstream down: its route errors, the other works.
    r2.stop()
    assert cli(port, "LLEN", "q") == "ERR upstream unavailable"
    assert cli(port, "GET", "k") == "v1"
    r2 = redis(p_other, "redis-other-2")
    assert cli(port, "LPUSH", "q2", "x") == "1"      # connects again (back-off permitting)

    # Reload: GET and SET and now LLEN go to the strings redis.
    assert ml.reload(config(port, p_strings, p_other, routes="GET,SET,LLEN")) is True, ml.err()
    assert cli(port, "LLEN", "q2") == "0"            # the strings redis has no q2
    # Bad kind keys: refused, with the key path; the running configuration stays.
    for extra, expected in [("max_args = 0", "servers.cache.max_args: must be at least 1, got 0"),
                            ("colour = 1", "servers.cache.colour: unknown key")]:
        assert ml.reload(config(port, p_strings, p_other, extra=extra)) is False, extra
        assert ml.config_path + ": " + expected in ml.err(), (expected, ml.err())
    assert ml.reload(config(port, p_strings, p_other, routes="GET, ,SET")) is False
    assert "servers.cache: routes[0].path: 'GET, ,SET' is not a list" in ml.err(), ml.err()
    assert cli(port, "LLEN", "q2") == "0"            # still the reloaded routes

    err = ml.err()
    assert "l4 server=cache" in err and "upstream=127.0.0.1:%d" % p_strings in err, err
    assert ml.stop() == 0
    r1.stop()
    r2.stop()


if __name__ == "__main__":
    pt.main([("resp server kind", test_resp_server_kind)])
