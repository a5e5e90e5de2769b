"""examples/http_filter as a user runs it: the example binary (monolake plus its api_key filter)
in front of a real nginx, driven by curl.

- Without a key, or with an unknown one: 401, nothing reaches nginx; with a key: nginx's answer,
  without the key header, stamped with the worker's count.
- The count survives reloads (the filter's per-worker state passes to its next generation),
  including a reload that adds a route; the /stats counters agree.
- A bad filter table (unknown key, missing required key, unknown filter) is refused at reload
  with FILE: KEY.PATH: reason, and the running configuration stays in force.
- The access log line carries the filter's field (api_key=ok|missing|unknown).
- The client_limit connection filter: a client over its open-connection limit is closed before
  a byte is read, counted in /stats; the open counts survive a reload (connections opened before
  it still count); one closing lets the next in; bad connection_filters tables are refused.

Usage: example_http_filter_test.py HTTP_FILTER_BINARY
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

BINARY = os.path.abspath(sys.argv[1])
DIR = pt.tmpdir()


def start_nginx():
    port = pt.free_port()
    block = """server {
    listen 127.0.0.1:%d;
    location / { return 200 "nginx saw key=[$http_x_api_key] uri=$request_uri\\n"; }
  }""" % port
    process = pt.nginx(DIR, [block])
    pt.wait_until(lambda: pt.port_open(port), 10, "nginx")
    return process, port


def config(port, upstream, admin_port, filters, extra_routes=""):
    return """[admin]
listen = "127.0.0.1:%d"
[runtime]
worker_threads = 1
[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
%s
[[servers.web.routes]]
path = "/{*rest}"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
%s
""" % (admin_port, port, filters, upstream, extra_routes)


GOOD = """[[servers.web.filters]]
name = "api_key"
keys = ["k1", "k2"]
stamp = "x-seen"
"""


def curl(port, path="/a", key=None):
    args = ["curl", "-sS", "--max-time", "10", "-D", "-", "http://127.0.0.1:%d%s" % (port, path)]
    if key is not None:
        args[1:1] = ["-H", "x-api-key: " + key]
    out = subprocess.run(args, capture_output=True, timeout=20)  # bytes: keep the CRLFs
    head, _, body = out.stdout.decode(errors="replace").partition("\r\n\r\n")
    status = int(head.split(" ")[1]) if head.startswith("HTTP/") else 0
    headers = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def test_api_key_filter_end_to_end():
    ng, nport = start_nginx()
    port, admin = pt.free_ports(2)
    ml = pt.Monolake(BINARY, config(port, nport, admin, GOOD), DIR, name="http_filter")
    ml.wait_ready()
    assert "http_filter 0.1.0" in ml.out(), ml.out()

    status, headers, body = curl(port)
    assert status == 401 and "www-authenticate" in headers, (status, headers, body)
    status, _, body = curl(port, key="wrong")
    assert status == 401 and "unknown" in body, (status, body)

    for n in (1, 2, 3):
        status, headers, body = curl(port, key="k1")
        assert status == 200, (status, body)
        assert body == "nginx saw key=[] uri=/a\n", body  # the key never reaches the upstream
        assert headers.get("x-seen") == str(n), headers

    # A reload that adds a route: the count goes on.
    more = '[[servers.web.routes]]\npath = "/b"\nreturn = { status = 200, body = "b" }\n'
    assert ml.reload(config(port, nport, admin, GOOD, more)) is True, ml.err()
    status, headers, body = curl(port, "/b", key="k2")
    assert (status, body, headers.get("x-seen")) == (200, "b", "4"), (status, body, headers)

    # Bad filter tables: refused with the key path, the running configuration stays.
    bad_tables = [
        (GOOD + 'colour = "red"\n', "servers.web.filters[0].colour: unknown key"),
        ('[[servers.web.filters]]\nname = "api_key"\n', "servers.web.filters[0].keys: missing"),
        ('[[servers.web.filters]]\nname = "nope"\n', "servers.web.filters[0].name: unknown filter 'nope' (expected one of: "
         "api_key)"),
        ('[[servers.web.filters]]\nname = "api_key"\nkeys = []\n',
         "servers.web.filters[0]: keys: an empty list would refuse every request"),
    ]
    for text, expected in bad_tables:
        offset = os.path.getsize(ml.err_path)
        assert ml.reload(config(port, nport, admin, text)) is False, text
        with open(ml.err_path) as f:
            f.seek(offset)
            tail = f.read()
        assert ml.config_path + ": " + expected in tail, (expected, tail)
        status, headers, _ = curl(port, "/b", key="k1")
        assert status == 200 and headers.get("x-seen"), (status, headers)

    status, stats = pt.admin_request("/stats", port=admin)
    assert status == 200
    assert 'http_filter_api_key_requests_total{server="web",verdict="refused"} 2' in stats, stats
    ok = [line for line in stats.splitlines()
          if line.startswith('http_filter_api_key_requests_total{server="web",verdict="ok"}')]
    assert ok == ['http_filter_api_key_requests_total{server="web",verdict="ok"} 8'], ok

    err = ml.err()
    assert "status=401" in err and "api_key=missing" in err and "api_key=unknown" in err, err
    assert "status=200" in err and "api_key=ok" in err, err
    assert ml.stop() == 0
    ng.stop()


LIMIT = """[[servers.web.connection_filters]]
name = "client_limit"
max = 2
""" + GOOD


def keepalive_request(sock, key="k1"):
    """One request on an open connection: the response's status, or 0 if the connection closed."""
    sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\nx-api-key: " + key.encode() + b"\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return 0
        if not chunk:
            return 0
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split(b" ")[1])


def test_client_limit_connection_filter():
    import socket
    ng, nport = start_nginx()
    port, admin = pt.free_ports(2)
    ml = pt.Monolake(BINARY, config(port, nport, admin, LIMIT), DIR, name="client_limit")
    ml.wait_ready()
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    for sock in held:
        assert keepalive_request(sock) == 200
    # The third is over the limit: closed before its request is read.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as third:
        assert keepalive_request(third) == 0

    # A reload keeps the counts: the two held connections still count.
    more = '[[servers.web.routes]]\npath = "/b"\nreturn = { status = 200, body = "b" }\n'
    assert ml.reload(config(port, nport, admin, LIMIT, more)) is True, ml.err()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as fourth:
        assert keepalive_request(fourth) == 0
    for sock in held:
        assert keepalive_request(sock) == 200  # served by the new chain, still open

    # One closes: the next client connection is let in (the old generation's closed() reached
    # the table the new one reads).
    held.pop().close()
    early = []  # tries before the proxy saw the close: refused, and counted

    def next_one_served():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            served = keepalive_request(sock) == 200
        if not served:
            early.append(1)
        return served
    pt.wait_until(next_one_served, 10, "a connection under the limit again")

    status, stats = pt.admin_request("/stats", port=admin)
    assert status == 200
    line = 'monolake_connection_filter_closed_total{server="web",filter="filter:client_limit"}'
    counted = [l for l in stats.splitlines() if l.startswith(line)]
    assert counted == [line + " %d" % (2 + len(early))], (counted, len(early), stats)

    bad_tables = [
        ('[[servers.web.connection_filters]]\nname = "client_limit"\nmax = 0\n',
         "servers.web.connection_filters[0].max: must be at least 1, got 0"),
        ('[[servers.web.connection_filters]]\nname = "api_key"\n',
         "servers.web.connection_filters[0].name: unknown connection filter 'api_key' "
         "(expected one of: client_limit)"),
    ]
    for text, expected in bad_tables:
        offset = os.path.getsize(ml.err_path)
        assert ml.reload(config(port, nport, admin, text + GOOD)) is False, text
        with open(ml.err_path) as f:
            f.seek(offset)
            tail = f.read()
        assert ml.config_path + ": " + expected in tail, (expected, tail)
    assert keepalive_request(held[0]) == 200
    held[0].close()
    assert ml.stop() == 0
    ng.stop()


if __name__ == "__main__":
    pt.main([("api_key filter end to end", test_api_key_filter_end_to_end),
             ("client_limit connection filter", test_client_limit_connection_filter)])
