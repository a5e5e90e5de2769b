"""send_proxy_protocol (a route's): the PROXY protocol header written to upstreams, with real
receivers.

- http routes to nginx listening with `proxy_protocol` (v1 and v2, plain and TLS): nginx sees
  the client's own address and port, not the proxy's; requests on one client connection share
  one upstream connection, another client connection gets its own, and the upstream
  connection closes with the client's.
- an http route to HAProxy with `accept-proxy` (v2): HAProxy's `src` is the client.
- tcp routes to an echo upstream: the header bytes are exactly the specification's.
- refused at load: send_proxy_protocol on a server that speaks HTTP/2 to upstreams.

Clients use distinct loopback source addresses (127.0.0.5...) so the announced address differs
from the proxy's own 127.0.0.1.

Usage: send_proxy_protocol_test.py MONOLAKE MAKE_TEST_CERTS
"""

import os
import re
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])
MAKE_CERTS = os.path.abspath(sys.argv[2])
DIR = pt.tmpdir()



def certs():
    return pt.test_certs(MAKE_CERTS, DIR)




def read_response(s):
    """One HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, data
        body += chunk
    return head, body.decode()


def get(s, path):
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: a.test\r\n\r\n")
    head, body = read_response(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    return body


def established_to(port):
    out = subprocess.run(["ss", "-Htn", "state", "established", "dst", "127.0.0.1:%d" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return len([line for line in out.splitlines() if line.strip()])


class Setup:
    def __init__(self):
        c = certs()
        self.ng, self.ng_tls, self.hap, self.web, self.tcp1, self.tcp2, self.admin = \
            pt.free_ports(7)
        answer = 'return 200 "addr=$proxy_protocol_addr:$proxy_protocol_port conn=$connection\\n";'
        self.nginx = pt.nginx(DIR, [
            "server { listen 127.0.0.1:%d proxy_protocol; location / { %s } }" % (self.ng, answer),
            "server { listen 127.0.0.1:%d ssl proxy_protocol; ssl_certificate %s/a.pem; "
            "ssl_certificate_key %s/a.key; location / { %s } }" % (self.ng_tls, c, c, answer)])
        self.haproxy = pt.haproxy(DIR, """
frontend fp
  mode http
  bind 127.0.0.1:%d accept-proxy
  http-request return status 200 content-type text/plain lf-string "src=%%[src]:%%[src_port]\\n"
""" % self.hap)
        self.echo = pt.EchoServer()
        pt.wait_until(lambda: pt.port_open(self.ng) and pt.port_open(self.ng_tls) and
                      pt.port_open(self.hap), 10, "nginx and haproxy")
        self.ml = pt.Monolake(MONOLAKE, self.config(), DIR)
        self.ml.wait_ready()

    def config(self, upstream_http_version="auto"):
        def route(path, version, endpoint, extra=""):
            return """[[servers.web.routes]]
path = "%s"
send_proxy_protocol = "%s"
upstreams = [{ endpoint = %s }]
%s""" % (path, version, endpoint, extra)
        socket_endpoint = '{ type = "socket", value = "127.0.0.1:%d" }'
        return """[admin]
listen = "127.0.0.1:%d"
[runtime]
worker_threads = 2

[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
upstream_http_version = "%s"
%s%s%s%s
[servers.tcp1]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
[servers.tcp1.route]
send_proxy_protocol = "v1"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]

[servers.tcp2]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
[servers.tcp2.route]
send_proxy_protocol = "v2"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % (self.admin, self.web, upstream_http_version,
       route("/v1", "v1", socket_endpoint % self.ng),
       route("/v2", "v2", socket_endpoint % self.ng),
       route("/tls", "v2", '{ type = "uri", value = "https://127.0.0.1:%d" }' % self.ng_tls,
             'upstream_tls = { ca = "%s/ca.pem", sni = "a.test" }\n' % certs()),
       route("/haproxy", "v2", socket_endpoint % self.hap),
       self.tcp1, self.echo.port, self.tcp2, self.echo.port)


def setup():
    return Setup()


def test_nginx_sees_the_client_and_one_upstream_connection_per_client_connection():
    s = setup()
    for path in ("/v1", "/v2", "/tls"):
        with pt.connect_from("127.0.0.5", s.web) as a, pt.connect_from("127.0.0.6", s.web) as b:
            a_port, b_port = a.getsockname()[1], b.getsockname()[1]
            first, second = get(a, path), get(a, path)
            other = get(b, path)
            assert first.startswith("addr=127.0.0.5:%d " % a_port), (path, first)
            assert other.startswith("addr=127.0.0.6:%d " % b_port), (path, other)
            conn = lambda body: body.split("conn=")[1].strip()  # noqa: E731
            # nginx's $connection: the same upstream connection for both of a's requests.
            assert conn(first) == conn(second), (path, first, second)
            assert conn(first) != conn(other), (path, first, other)
    # Each client connection's upstream connections closed with it.
    pt.wait_until(lambda: established_to(s.ng) == 0 and established_to(s.ng_tls) == 0, 10,
                  "upstream connections closing with their clients")


def test_haproxy_accept_proxy_sees_the_client():
    s = setup()
    with pt.connect_from("127.0.0.7", s.web) as c:
        body = get(c, "/haproxy")
        assert body == "src=127.0.0.7:%d\n" % c.getsockname()[1], body


def test_tcp_routes_write_the_header_bytes_of_the_specification():
    s = setup()
    with pt.connect_from("127.0.0.8", s.tcp1) as c:
        c.sendall(b"hello")
        c.shutdown(socket.SHUT_WR)
        got = pt.read_all(c)
        expected = b"PROXY TCP4 127.0.0.8 127.0.0.1 %d %d\r\n" % (c.getsockname()[1], s.tcp1)
        assert got == expected + b"hello", got
    with pt.connect_from("127.0.0.9", s.tcp2) as c:
        c.sendall(b"hello")
        c.shutdown(socket.SHUT_WR)
        got = pt.read_all(c)
        body = socket.inet_aton("127.0.0.9") + socket.inet_aton("127.0.0.1") + \
            struct.pack("!HH", c.getsockname()[1], s.tcp2)
        expected = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", len(body)) + body
        assert got == expected + b"hello", got


def test_refused_on_a_server_that_speaks_http2_to_upstreams():
    s = setup()
    assert s.ml.reload(s.config(upstream_http_version="http2")) is False
    assert "servers.web.routes[0].send_proxy_protocol: HTTP/2 upstream connections are shared" \
        in s.ml.err()
    with pt.connect_from("127.0.0.5", s.web) as c:  # the running configuration stays
        assert get(c, "/v1").startswith("addr=127.0.0.5:")


if __name__ == "__main__":
    pt.main([(name, fn) for name, fn in list(globals().items()) if name.startswith("test_")])
