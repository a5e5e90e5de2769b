"""examples/custom_protocol (a user server kind, "resp") as a user runs it: two real
redis-servers behind it, redis-cli and raw sockets as clients.

- SET/GET through the proxy land on the redis their route names (checked against each redis
  directly); a pipelined burst is answered in order; an unrouted command gets its error; a
  reply of more elements than max_args passes; the same through TLS (redis-cli --tls).
- A malformed or over-long command closes that client's connection while another client, open
  all along, keeps working; a reply over max_bulk_bytes gets `-ERR upstream unavailable` and the
  next command on that connection is answered; a silent client is closed at the idle timeout.
- One redis stopped: `-ERR upstream unavailable` for its route, the other route still works.
- A reload that moves a command to the other route applies to new connections; a bad kind key
  is refused at reload with FILE: KEY.PATH: reason and the running configuration stays.

- The access log names the server and the upstream; /stats counts the connections and bytes.

- The example's own config.toml passes --check.

Usage: example_custom_protocol_test.py CUSTOM_PROTOCOL_BINARY MAKE_TEST_CERTS CONFIG_TOML
"""

import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

BINARY = os.path.abspath(sys.argv[1])
MAKE_CERTS = os.path.abspath(sys.argv[2])
EXAMPLE_CONFIG = os.path.abspath(sys.argv[3])
DIR = pt.tmpdir()
IDLE_SEC = 1  # tcp_idle_timeout_sec at the end: a silent client is closed after it


def redis(port, name):
    p = pt.Process(["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no"], name, DIR)
    pt.wait_until(lambda: pt.port_open(port), 10, name)
    return p


def cli(port, *args, tls=()):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(tls) +
                         list(args), capture_output=True, timeout=20)
    return out.stdout.decode().strip()


def server(name, port, strings, other, routes, extra, idle):
    return """[servers.%s]
proxy_type = "resp"
listener = { type = "socket", value = "127.0.0.1:%d" }
timeout = { tcp_idle_timeout_sec = %d }
max_bulk_bytes = 4096
%s
[[servers.%s.routes]]
path = "%s"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
[[servers.%s.routes]]
path = "LPUSH,LLEN,LRANGE,PING,DEL"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % (name, port, idle, extra, name, routes, strings, name, other)


def config(ports, strings, other, routes="GET,SET", extra="", idle=60):
    """The `cache` server on ports[0] with `extra` keys, `secure` (TLS) on ports[1], the admin
    API on ports[2]."""
    tls = 'tls = { chain = "certs/ip.pem", key = "certs/ip.key" }'
    return """[admin]
listen = "127.0.0.1:%d"
[runtime]
worker_threads = 1
""" % ports[2] + server("cache", ports[0], strings, other, routes, extra, idle) + \
        server("secure", ports[1], strings, other, routes, tls, idle)


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


def ask(sock, payload, expect_replies):
    """Sends `payload` on an open connection and reads `expect_replies` CRLF lines."""
    sock.sendall(payload)
    got = b""
    while got.count(b"\r\n") < expect_replies:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_resp_server_kind():
    certs = os.path.join(DIR, "certs")
    subprocess.run([MAKE_CERTS, certs], check=True, timeout=60, stdout=subprocess.DEVNULL)
    tls = ("--tls", "--cacert", os.path.join(certs, "ca.pem"))
    p_strings, p_other, port, tport, admin = pt.free_ports(5)
    ports = (port, tport, admin)
    r1 = redis(p_strings, "redis-strings")
    r2 = redis(p_other, "redis-other")
    ml = pt.Monolake(BINARY, config(ports, p_strings, p_other), DIR, name="custom_protocol")
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
    # A reply of 3000 elements (max_args, 1024, bounds commands only).
    for i in range(3):
        cli(p_other, "RPUSH", "big", *[str(i * 1000 + j) for j in range(1000)])
    assert cli(port, "LRANGE", "big", "0", "-1").split("\n") == [str(i) for i in range(3000)]
    # The same routes behind TLS.
    assert cli(tport, "GET", "k", tls=tls) == "v1"
    assert cli(tport, "LLEN", "q", tls=tls) == "2"

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

    # Malformed or over the limits: that connection closes; one open all along carries on.
    get_k = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as keep:
        assert ask(keep, get_k, 2) == b"$2\r\nv1\r\n"
        assert closed_after(port, b"*1\n$3\r\nGET\r\n")      # a bare LF
        assert closed_after(port, b"$5\r\nhello\r\n")         # a command is an array
        assert closed_after(port, b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5000\r\n")  # > 4096
        assert ask(keep, get_k, 2) == b"$2\r\nv1\r\n"
        # A reply over max_bulk_bytes: refused, that link dropped, the next command connects.
        assert cli(p_strings, "SET", "huge", "x" * 5000) == "OK"
        assert ask(keep, b"GET huge\r\n" + get_k, 3) == \
            b"-ERR upstream unavailable\r\n$2\r\nv1\r\n"
    assert "resp: upstream 127.0.0.1:%d dropped" % p_strings in ml.err(), ml.err()

    # One upstream down: its route errors, the other works.
    r2.stop()
    assert cli(port, "LLEN", "q") == "ERR upstream unavailable"
    assert cli(port, "GET", "k") == "v1"
    r2 = redis(p_other, "redis-other-2")
    assert cli(port, "LPUSH", "q2", "x") == "1"      # connects again (back-off permitting)

    # Reload: GET and SET and now LLEN go to the strings redis.
    assert ml.reload(config(ports, p_strings, p_other, routes="GET,SET,LLEN")) is True, ml.err()
    assert cli(port, "LLEN", "q2") == "0"            # the strings redis has no q2
    # Bad kind keys: refused, with the key path; the running configuration stays.
    for extra, expected in [("max_args = 0", "servers.cache.max_args: must be at least 1, got 0"),
                            ("colour = 1", "servers.cache.colour: unknown key"),
                            ("max_frame_bytes = 2048",
                             "servers.cache: max_bulk_bytes: 4096 is over max_frame_bytes")]:
        assert ml.reload(config(ports, p_strings, p_other, extra=extra)) is False, extra
        assert ml.config_path + ": " + expected in ml.err(), (expected, ml.err())
    assert ml.reload(config(ports, p_strings, p_other, routes="GET, ,SET")) is False
    assert "servers.cache: routes[0].path: 'GET, ,SET' is not a list" in ml.err(), ml.err()
    assert cli(port, "LLEN", "q2") == "0"            # still the reloaded routes
    # A short idle timeout (reloaded, so new connections have it): a silent client is closed.
    assert ml.reload(config(ports, p_strings, p_other, routes="GET,SET,LLEN",
                            idle=IDLE_SEC)) is True, ml.err()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
        start = time.monotonic()
        assert idle.recv(1) == b""
        assert IDLE_SEC - 0.2 < time.monotonic() - start < IDLE_SEC + 5
    # The access-log line is written as the connection's task ends, just after the socket closes.
    pt.wait_until(lambda: "end=client: timeout" in ml.err(), 5, "the idle connection's log line")

    err = ml.err()
    assert "l4 server=cache" in err and "upstream=127.0.0.1:%d" % p_strings in err, err
    assert "l4 server=secure" in err, err
    status, stats = pt.admin_request("/stats", port=admin)
    assert status == 200, stats
    connections = [line for line in stats.splitlines()
                   if line.startswith('monolake_l4_connections_total{server="cache"}')]
    assert connections and int(connections[0].split()[-1]) >= 10, stats
    assert 'monolake_l4_bytes_total{server="cache",direction="to_client"} 0' not in stats, stats
    assert ml.stop() == 0
    r1.stop()
    r2.stop()


def test_example_config_checks():
    out = subprocess.run([BINARY, "--check", "-c", EXAMPLE_CONFIG], capture_output=True,
                         timeout=20)
    assert out.returncode == 0, out.stderr.decode()


if __name__ == "__main__":
    pt.main([("resp server kind", test_resp_server_kind),
             ("the example's config.toml", test_example_config_checks)])
