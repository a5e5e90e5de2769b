"""Request rate limits (a route's rate_limit) and connection rate limits (a server's
connection_rate_limit), with curl, wrk and an nginx upstream.

- One worker (the split over workers is then exact): a client gets its burst, then 429 with
  Retry-After, and is admitted again after waiting that long; another client has its own
  bucket; header:<name> keys count each value; HTTP/1.1 and HTTP/2 clients alike.
- Two workers: the route key under wrk load never admits more than the configured rate (plus
  its burst), and every 429 is counted in /stats.
- connection_rate_limit on a tcp server: connections over the burst are closed unanswered and
  counted; tokens come back with time.
- A bad rate_limit at reload names the key and keeps the running configuration.

Usage: rate_limit_test.py MONOLAKE
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])
DIR = pt.tmpdir()


def config(admin, web, tcp, nginx_port, echo_port, workers,
           per_client="requests_per_sec = 0.5, burst = 3"):
    upstream = 'upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]' % \
        nginx_port
    return """[admin]
listen = "127.0.0.1:%d"
[runtime]
worker_threads = %d

[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
[[servers.web.routes]]
path = "/client"
rate_limit = { %s }
%s
[[servers.web.routes]]
path = "/key"
rate_limit = { requests_per_sec = 0.2, burst = 2, key = "header:x-api-key" }
%s
[[servers.web.routes]]
path = "/route"
rate_limit = { requests_per_sec = 20, burst = 20, key = "route" }
%s
[[servers.web.routes]]
path = "/free"
%s

[servers.tcp]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
connection_rate_limit = { per_sec = 0.5, burst = 3 }
[servers.tcp.route]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % (admin, workers, web, per_client, upstream, upstream, upstream, upstream, tcp, echo_port)


class Setup:
    def __init__(self, workers=1):
        self.nginx_port, self.web, self.tcp, self.admin = pt.free_ports(4)
        self.nginx = pt.nginx(DIR, [
            'server { listen 127.0.0.1:%d; location / { return 200 "ok\\n"; } }' % self.nginx_port])
        self.echo = pt.EchoServer()
        pt.wait_until(lambda: pt.port_open(self.nginx_port), 10, "nginx")
        self.text = config(self.admin, self.web, self.tcp, self.nginx_port, self.echo.port, workers)
        self.ml = pt.Monolake(MONOLAKE, self.text, DIR)
        self.ml.wait_ready()

    def h2load(self, path, requests):
        """Sends `requests` HTTP/2 requests one after another on one connection from
        127.0.0.1 (h2load cannot bind a source address); returns (2xx, 4xx)."""
        out = subprocess.run(["h2load", "-n%d" % requests, "-c1", "-m1",
                              "http://127.0.0.1:%d%s" % (self.web, path)],
                             capture_output=True, text=True, timeout=30).stdout
        found = re.search(r"status codes: (\d+) 2xx, \d+ 3xx, (\d+) 4xx", out)
        assert found, out
        return int(found.group(1)), int(found.group(2))

    def curl(self, path, count=1, source="127.0.0.1", headers=()):
        """Sends `count` requests on one connection; returns [(status, retry_after)]."""
        argv = ["curl", "-s", "--interface", source,
                "-w", "%{http_code} %header{retry-after}\\n", "--max-time", "10"]
        for h in headers:
            argv += ["-H", h]
        for _ in range(count):
            argv += ["-o", "/dev/null", "http://127.0.0.1:%d%s" % (self.web, path)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
        return [(int(line.split(" ")[0]), line.split(" ", 1)[1].strip())
                for line in out.splitlines() if line]

    def stat(self, pattern):
        status, stats = pt.admin_request("/stats", port=self.admin)
        assert status == 200, stats
        total = 0
        for line in stats.splitlines():
            if re.match(pattern, line):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total


def setup():
    return Setup()


def statuses(results):
    return [status for status, _ in results]


def test_a_client_gets_its_burst_then_429_with_retry_after_then_tokens_again():
    s = setup()
    # HTTP/2 streams count like HTTP/1.1 requests (h2load: 4 requests, one connection, h2c).
    assert s.h2load("/client", 4) == (3, 1)
    results = s.curl("/client", count=5, source="127.0.0.2")
    assert statuses(results) == [200, 200, 200, 429, 429], results
    # A token every 2 s (slow enough that a loaded CI machine sends each batch within it).
    assert results[3][1] == "2", results
    # Another client address, its own bucket.
    assert statuses(s.curl("/client", count=4, source="127.0.0.3")) == [200, 200, 200, 429]
    time.sleep(2.2)  # what Retry-After said, and a margin
    assert statuses(s.curl("/client", count=1, source="127.0.0.2"))[0] == 200
    # Routes without rate_limit are not limited.
    assert set(statuses(s.curl("/free", count=10))) == {200}
    assert s.stat(r'monolake_rate_limited_total\{server="web",route=" /client"\}') == 4


def test_a_header_key_counts_each_value_and_requests_without_it_together():
    s = setup()
    assert statuses(s.curl("/key", count=3, headers=["X-Api-Key: alice"])) == [200, 200, 429]
    assert statuses(s.curl("/key", count=3, headers=["X-Api-Key: bob"])) == [200, 200, 429]
    # Without the header: one shared bucket, whatever the client's address.
    assert statuses(s.curl("/key", count=2)) == [200, 200]
    assert statuses(s.curl("/key", count=1, source="127.0.0.3")) == [429]


def test_two_workers_never_admit_more_than_the_rate_under_load():
    s = Setup(workers=2)
    # 8 connections, spread by the kernel over both workers; each worker admits 10/s, burst 10.
    start = time.monotonic()
    out = subprocess.run(["wrk", "-t1", "-c8", "-d3s", "http://127.0.0.1:%d/route" % s.web],
                         capture_output=True, text=True, timeout=30).stdout
    elapsed = time.monotonic() - start
    total = int(re.search(r"(\d+) requests in", out).group(1))
    refused = int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1))
    admitted = total - refused
    assert total > 200, out  # enough load that the limit is what bounds the admitted count
    assert admitted <= 20 + 20 * elapsed + 2, (admitted, elapsed, out)
    assert admitted >= 10, (admitted, out)  # at least one worker's burst
    # wrk counts the requests it saw answered; 429s answered as it stopped may not be among them.
    counted = s.stat(r'monolake_rate_limited_total\{server="web",route=" /route"\}')
    assert refused <= counted <= refused + 16, (counted, refused)
    print("two workers, 3 s of wrk: %d admitted of %d (configured: 20/s, burst 20)"
          % (admitted, total))


def test_connection_rate_limit_closes_connections_over_the_burst():
    s = setup()
    served = 0
    for i in range(6):  # within a few milliseconds: the burst of 3, then none
        try:
            if pt.exchange(s.tcp, b"ping %d" % i, timeout=5) == b"ping %d" % i:
                served += 1
        except OSError:  # reset at once; the send or the half-close may see it
            pass
    assert served == 3, served
    assert s.stat(r'monolake_connection_filter_closed_total\{server="tcp",'
                  r'filter="filter\[connection_rate_limit\]"\}') == 3
    time.sleep(2.2)  # one every 2 s: a token is back
    assert pt.exchange(s.tcp, b"again", timeout=5) == b"again"


def test_a_bad_rate_limit_at_reload_keeps_the_running_configuration():
    s = setup()
    bad = config(s.admin, s.web, s.tcp, s.nginx_port, s.echo.port, 1,
                 per_client='requests_per_sec = 0.5, key = "cookie:session"')
    assert s.ml.reload(bad) is False
    assert "servers.web.routes[0].rate_limit.key: unknown key 'cookie:session'" in s.ml.err()
    assert statuses(s.curl("/client", count=4)) == [200, 200, 200, 429]


if __name__ == "__main__":
    pt.main([(name, fn) for name, fn in list(globals().items()) if name.startswith("test_")])
