"""PROXY protocol (server key proxy_protocol) and access lists (allow / deny), with real peers.

- HAProxy in front with `send-proxy` (v1) to a plain http server and `send-proxy-v2` to a TLS
  one (HAProxy in tcp mode, TLS end to end): nginx behind sees the client's own address in
  X-Forwarded-For, not HAProxy's; HAProxy's health checks (v2 LOCAL) are accepted.
- Hand-written headers on a tcp server with proxy_protocol = "any": v1, v2, v2 LOCAL; the
  echo upstream gets the payload without the header, split across reads or not.
- A missing, malformed, oversized or slow header closes the connection without an answer,
  counted in /stats per server and layer.
- allow / deny at accept on the socket's peer, and again on the address a header announces;
  peers outside proxy_protocol_from are served as if proxy_protocol were off.

Clients use distinct loopback source addresses (127.0.0.2...) so the announced address differs
from HAProxy's 127.0.0.1.

Usage: proxy_protocol_test.py MONOLAKE MAKE_TEST_CERTS
"""

import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])
MAKE_CERTS = os.path.abspath(sys.argv[2])
DIR = pt.tmpdir()
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"



def certs():
    return pt.test_certs(MAKE_CERTS, DIR)


def v2_header(source, sport, dest="127.0.0.1", dport=80, command=0x21):
    family = 0x11
    body = socket.inet_aton(source) + socket.inet_aton(dest) + struct.pack("!HH", sport, dport)
    if command == 0x20:
        family, body = 0x00, b""
    return V2_SIG + bytes([command, family]) + struct.pack("!H", len(body)) + body






def http_get(s, host="a.test"):
    s.sendall(b"GET /who HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
    return pt.read_all(s)


def closed_count(admin, server, layer):
    status, stats = pt.admin_request("/stats", port=admin)
    assert status == 200, stats
    line = 'monolake_connection_filter_closed_total{server="%s",filter="%s"} ' % (server, layer)
    for l in stats.splitlines():
        if l.startswith(line):
            return int(l[len(line):])
    return 0


class Setup:
    def __init__(self):
        c = certs()
        self.ng_port, self.v1_port, self.v2_port, self.any_port, self.acl_port, self.admin, \
            self.h1, self.h2 = pt.free_ports(8)
        self.echo = pt.EchoServer()
        self.nginx = pt.nginx(DIR, [
            'server { listen 127.0.0.1:%d; location / { return 200 "xff=$http_x_forwarded_for\\n"; } }'
            % self.ng_port])
        pt.wait_until(lambda: pt.port_open(self.ng_port), 10, "nginx")
        route = """[[servers.%%s.routes]]
path = "/{*rest}"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % self.ng_port
        text = """[admin]
listen = "127.0.0.1:%d"
[runtime]
worker_threads = 2

[servers.v1]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
proxy_protocol = "v1"
%s
[servers.v2tls]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
tls = { chain = "%s/a.pem", key = "%s/a.key" }
proxy_protocol = "v2"
timeout = { server_read_header_timeout_sec = 1 }
%s
[servers.anytcp]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
proxy_protocol = "any"
[servers.anytcp.route]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]

[servers.acl]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
proxy_protocol = "v1"
proxy_protocol_from = ["127.0.0.1"]
deny = ["127.0.0.2", "192.0.2.66"]
%s
""" % (self.admin, self.v1_port, route % "v1", self.v2_port, c, c, route % "v2tls",
       self.any_port, self.echo.port, self.acl_port, route % "acl")
        self.ml = pt.Monolake(MONOLAKE, text, DIR, name="monolake")
        self.ml.wait_ready()
        self.haproxy = pt.haproxy(DIR, """
frontend f1
  bind 127.0.0.1:%d
  default_backend b1
backend b1
  server m 127.0.0.1:%d send-proxy
frontend f2
  bind 127.0.0.1:%d
  default_backend b2
backend b2
  server m 127.0.0.1:%d send-proxy-v2 check check-send-proxy inter 200
""" % (self.h1, self.v1_port, self.h2, self.v2_port))
        pt.wait_until(lambda: pt.port_open(self.h1) and pt.port_open(self.h2), 10, "haproxy")


def setup():
    # Fresh processes per test: pt.main stops every process a test started when it ends.
    return Setup()


def test_haproxy_send_proxy_v1_gives_the_client_address():
    s = setup()
    for source in ("127.0.0.5", "127.0.0.6"):
        with pt.connect_from(source, s.h1) as c:
            reply = http_get(c)
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert reply.endswith(b"xff=%s\n" % source.encode()), reply


def test_haproxy_send_proxy_v2_before_tls_and_its_local_health_checks():
    s = setup()
    context = ssl.create_default_context(cafile=certs() + "/ca.pem")
    raw = pt.connect_from("127.0.0.7", s.h2)
    with context.wrap_socket(raw, server_hostname="a.test") as c:
        reply = http_get(c)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert reply.endswith(b"xff=127.0.0.7\n"), reply
    # HAProxy checks the server every 200 ms with a v2 LOCAL header: none is refused.
    time.sleep(1.0)
    assert closed_count(s.admin, "v2tls", "filter[proxy_protocol]") == 0, s.ml.err()[-2000:]


def test_hand_written_headers_on_a_tcp_server():
    s = setup()
    cases = [
        b"PROXY TCP4 192.0.2.1 127.0.0.1 5000 80\r\n",
        b"PROXY UNKNOWN\r\n",
        v2_header("192.0.2.2", 5001),
        v2_header("0.0.0.0", 0, command=0x20),  # LOCAL
    ]
    for header in cases:
        for split in (False, True):
            with pt.connect_from("127.0.0.1", s.any_port) as c:
                payload = b"payload after the header"
                if split:  # the header in three pieces, the payload with its last piece
                    c.sendall(header[:3])
                    time.sleep(0.05)
                    c.sendall(header[3:-2])
                    time.sleep(0.05)
                    c.sendall(header[-2:] + payload)
                else:
                    c.sendall(header + payload)
                c.shutdown(socket.SHUT_WR)
                got = pt.read_all(c)
            assert got == payload, (header, split, got)


def expect_refused(port, data, server, layer, admin, source="127.0.0.1"):
    before = closed_count(admin, server, layer)
    with pt.connect_from(source, port) as c:
        if data:
            c.sendall(data)
        got = pt.read_all(c)
    assert got == b"", (data, got[:200])
    pt.wait_until(lambda: closed_count(admin, server, layer) == before + 1, 5,
                  "the refusal of %r counted" % data[:40])


def test_missing_malformed_oversized_and_slow_headers_close_the_connection():
    s = setup()
    layer = "filter[proxy_protocol]"
    expect_refused(s.v1_port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "v1", layer, s.admin)
    expect_refused(s.v1_port, b"PROXY TCP4 1.2.3.999 1.2.3.4 1 2\r\n", "v1", layer, s.admin)
    expect_refused(s.v1_port, b"PROXY UNKNOWN " + b"x" * 200, "v1", layer, s.admin)
    expect_refused(s.v1_port, v2_header("192.0.2.3", 1), "v1", layer, s.admin)  # v2 on v1
    huge = V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", 5000)
    expect_refused(s.any_port, huge, "anytcp", layer, s.admin)
    # Slow: half a header, then nothing; server_read_header_timeout_sec = 1 on v2tls.
    start = time.monotonic()
    expect_refused(s.v2_port, V2_SIG[:6], "v2tls", layer, s.admin)
    assert time.monotonic() - start < 5
    # The proxy still serves.
    with pt.connect_from("127.0.0.8", s.h1) as c:
        assert http_get(c).endswith(b"xff=127.0.0.8\n")


def test_allow_deny_on_the_peer_and_on_the_announced_client():
    s = setup()
    # A peer outside proxy_protocol_from speaks plain HTTP (no header read) ...
    with pt.connect_from("127.0.0.3", s.acl_port) as c:
        reply = http_get(c)
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"xff=127.0.0.3\n"), reply
    # ... unless it is denied: refused at accept, before a byte is read.
    expect_refused(s.acl_port, b"", "acl", "filter[allow_deny]", s.admin, source="127.0.0.2")
    # The balancer (127.0.0.1) announces clients: a denied one is refused by the second check.
    expect_refused(s.acl_port, b"PROXY TCP4 192.0.2.66 127.0.0.1 5 80\r\n", "acl",
                   "filter[allow_deny_announced]", s.admin)
    with pt.connect_from("127.0.0.1", s.acl_port) as c:
        c.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 5 80\r\n")
        reply = http_get(c)
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"xff=192.0.2.9\n"), reply


def test_bad_keys_name_the_key_and_keep_the_running_config():
    s = setup()
    path = s.ml.config_path
    good = open(path).read()
    bad = good.replace('deny = ["127.0.0.2", "192.0.2.66"]', 'deny = ["127.0.0.2/40"]')
    assert s.ml.reload(bad) is False
    assert "servers.acl.deny[0]: '127.0.0.2/40' is not an IP address or CIDR block" in s.ml.err()
    with pt.connect_from("127.0.0.9", s.h1) as c:
        assert http_get(c).endswith(b"xff=127.0.0.9\n")
    assert s.ml.reload(good)


if __name__ == "__main__":
    pt.main([(name, fn) for name, fn in list(globals().items()) if name.startswith("test_")])
