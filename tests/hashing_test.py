"""Consistent hashing (load_balancer = "ring_hash" | "maglev" with hash_on) through a real proxy
with two workers, in front of three nginx upstreams that each answer with their own name, and
three echo upstreams for a tcp server.

- Each key (a header, a cookie, the client address, the path) reaches one upstream on every
  connection (connections spread over both workers), and keys spread over all upstreams.
- A reload that changes something else keeps every key where it was; a reload that removes an
  upstream moves that upstream's keys (ring_hash: only those; maglev: a few others too).
- Requests without the key go round robin.
- tcp: connections from one client address reach one upstream.
- Bad hash_on at reload: the key path named, the running configuration kept.

Usage: hashing_test.py MONOLAKE
"""

import http.client
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])
DIR = pt.tmpdir()
NAMES = ["a", "b", "c"]


def config(admin, web, tcp, nginx_ports, echo_ports, extra_route="", names=NAMES):
    def upstreams(ports):
        return "upstreams = [%s]" % ", ".join(
            '{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }' % p for p in ports)
    web_ports = [nginx_ports[NAMES.index(n)] for n in names]
    tcp_ports = [echo_ports[NAMES.index(n)] for n in names]
    routes = ""
    for path, balancer, hash_on in [("/header", "ring_hash", '{ header = "X-User-Id" }'),
                                    ("/cookie", "maglev", '{ cookie = "sid" }'),
                                    ("/ip", "maglev", "{ source_ip = true }"),
                                    ("/path/{*rest}", "ring_hash", "{ path = true }")]:
        routes += """[[servers.web.routes]]
path = "%s"
load_balancer = "%s"
hash_on = %s
%s
%s
""" % (path, balancer, hash_on, upstreams(web_ports), extra_route)
    return """[admin]
listen = "127.0.0.1:%d"
[runtime]
worker_threads = 2

[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
%s
[servers.tcp]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
[servers.tcp.route]
load_balancer = "ring_hash"
hash_on = { source_ip = true }
%s
""" % (admin, web, routes, tcp, upstreams(tcp_ports))


class Setup:
    def __init__(self):
        ports = pt.free_ports(6)
        self.nginx_ports, (self.web, self.tcp, self.admin) = ports[:3], ports[3:]
        self.nginx = pt.nginx(DIR, [
            'server { listen 127.0.0.1:%d; location / { return 200 "%s"; } }' % (port, name)
            for port, name in zip(self.nginx_ports, NAMES)])
        self.echoes = [pt.EchoServer(tag=name.encode()) for name in NAMES]
        for port in self.nginx_ports:
            pt.wait_until(lambda: pt.port_open(port), 10, "nginx")
        self.ml = pt.Monolake(MONOLAKE, self.config(), DIR)
        self.ml.wait_ready()

    def config(self, **kw):
        return config(self.admin, self.web, self.tcp, self.nginx_ports,
                      [e.port for e in self.echoes], **kw)

    def get(self, path, headers=None, source="127.0.0.1"):
        """Which upstream answered one request on a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.web, timeout=10,
                                          source_address=(source, 0))
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            body = response.read().decode()
            assert response.status == 200, (response.status, body)
            return body
        finally:
            conn.close()

    def mapping(self, route, keys=40, tries=4):
        """{key: upstream} for `keys` keys, each sent `tries` times on fresh connections
        (the kernel spreads them over both workers); asserts each key stayed on one upstream."""
        out = {}
        for k in range(keys):
            seen = set()
            for _ in range(tries):
                if route == "header":
                    seen.add(self.get("/header", {"X-User-Id": "user-%d" % k}))
                elif route == "cookie":
                    seen.add(self.get("/cookie", {"Cookie": "theme=dark; sid=s%d" % k}))
                elif route == "ip":
                    seen.add(self.get("/ip", source="127.0.0.%d" % (k + 2)))
                else:
                    seen.add(self.get("/path/item-%d?page=%d" % (k, len(seen))))
            assert len(seen) == 1, (route, k, seen)
            out[k] = seen.pop()
        return out


def setup():
    return Setup()


ROUTES = ["header", "cookie", "ip", "path"]


def test_each_key_stays_on_one_upstream_and_keys_spread_over_all():
    s = setup()
    for route in ROUTES:
        mapped = s.mapping(route)
        assert set(mapped.values()) == set(NAMES), (route, mapped)


def test_requests_without_the_key_go_round_robin():
    s = setup()
    answers = [s.get("/header") for _ in range(12)]
    assert set(answers) == set(NAMES), answers
    answers = [s.get("/cookie", {"Cookie": "other=1"}) for _ in range(12)]
    assert set(answers) == set(NAMES), answers


def test_a_reload_keeps_keys_and_removing_an_upstream_moves_only_its_keys():
    s = setup()
    before = {route: s.mapping(route, tries=2) for route in ROUTES}
    assert s.ml.reload(s.config(extra_route='response_headers = { add = { x-gen = "2" } }'))
    after = {route: s.mapping(route, tries=2) for route in ROUTES}
    assert after == before
    assert s.ml.reload(s.config(names=["a", "b"]))
    for route in ROUTES:
        now = s.mapping(route, tries=2)
        moved_kept = [k for k, up in before[route].items() if up != "c" and now[k] != up]
        # The ring moves none of them; maglev's table, refilled, moves a few (under 3%).
        allowed = 0 if route in ("header", "path") else 4
        assert len(moved_kept) <= allowed, (route, moved_kept)
        assert "c" not in now.values()


def test_tcp_connections_from_one_address_reach_one_upstream():
    s = setup()
    used = set()
    for i in range(20):
        source = "127.0.0.%d" % (i + 2)
        seen = set()
        for _ in range(3):
            sock = pt.connect_from(source, s.tcp)
            with sock:
                sock.sendall(b"x")
                sock.shutdown(socket.SHUT_WR)
                seen.add(pt.read_all(sock)[:1].decode())
        assert len(seen) == 1, (source, seen)
        used |= seen
    assert used == set(NAMES), used


def test_a_bad_hash_on_at_reload_keeps_the_running_configuration():
    s = setup()
    bad = s.config().replace('hash_on = { cookie = "sid" }', 'hash_on = { cookie = "sid", path = true }')
    assert s.ml.reload(bad) is False
    assert "servers.web.routes[1].hash_on: give exactly one of header, cookie" in s.ml.err()
    bad = s.config().replace('load_balancer = "maglev"\nhash_on = { source_ip = true }\n',
                             'load_balancer = "maglev"\n')
    assert s.ml.reload(bad) is False
    assert "servers.web.routes[2].load_balancer:" in s.ml.err()
    assert s.get("/header", {"X-User-Id": "u"}) in NAMES


if __name__ == "__main__":
    pt.main([(name, fn) for name, fn in list(globals().items()) if name.startswith("test_")])
