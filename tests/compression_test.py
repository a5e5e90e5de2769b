"""Response compression (`compression` on a server and on a route) with an nginx upstream and
real decoders: Python's zlib for gzip, the `brotli` and `zstd` command-line tools.

- each coding chosen by Accept-Encoding (q-values, ties by the configured order), decoded to
  the upstream's bytes; curl --compressed over HTTP/1.1 and HTTP/2; Vary, no Content-Length,
  a weakened ETag;
- left alone: short, binary (image/png), already encoded, no-transform, HEAD, Range (206);
- a malformed Accept-Encoding gets the response uncompressed, not an error;
- a route's own compression table overrides the server's;
- a 100 MiB response streams through with the proxy's memory flat (RSS sampled throughout).

Usage: compression_test.py MONOLAKE
"""

import os
import subprocess
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])
DIR = pt.tmpdir()
WWW = os.path.join(DIR, "www")
BIG = 100 * 1024 * 1024


def text(size):
    line = b"%08d the quick brown fox jumps over the lazy dog, again and again\n"
    out = b"".join(line % i for i in range(size // 60 + 1))
    return out[:size]


def write_files():
    os.makedirs(os.path.join(WWW, "pre"), exist_ok=True)
    os.makedirs(os.path.join(WWW, "nt"), exist_ok=True)
    files = {
        "page.txt": text(200 * 1024),
        "small.txt": b"short\n" * 10,
        "data.json": b'{"items": [' + b", ".join(b'{"id": %d}' % i for i in range(5000)) + b"]}",
        "image.png": bytes(range(256)) * 400,
        "pre/page.txt": zlib.compress(text(4096)),
        "nt/page.txt": text(4096),
    }
    for name, data in files.items():
        with open(os.path.join(WWW, name), "wb") as f:
            f.write(data)
    big = os.path.join(WWW, "big.txt")
    if not os.path.exists(big):
        with open(big, "wb") as f:
            chunk = text(1024 * 1024)
            for _ in range(BIG // len(chunk)):
                f.write(chunk)
    return files


FILES = write_files()


class Setup:
    def __init__(self):
        self.ng, self.web, self.admin = pt.free_ports(3)
        self.nginx = pt.nginx(DIR, ["""server {
  listen 127.0.0.1:%d;
  root %s;
  types { text/plain txt; application/json json; image/png png; }
  location /pre/ { add_header Content-Encoding deflate; }
  location /nt/ { add_header Cache-Control no-transform; }
}""" % (self.ng, WWW)])
        pt.wait_until(lambda: pt.port_open(self.ng), 10, "nginx")
        upstream = 'upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]' % \
            self.ng
        self.ml = pt.Monolake(MONOLAKE, """[admin]
listen = "127.0.0.1:%d"
[runtime]
worker_threads = 2

[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
compression = { algorithms = ["br", "zstd", "gzip"] }
[[servers.web.routes]]
path = "/{*rest}"
%s
[[servers.web.routes]]
path = "/gzip-only/{*rest}"
strip_prefix = "/gzip-only"
compression = { algorithms = ["gzip"], min_length = 10, types = ["text/*"] }
%s
""" % (self.admin, self.web, upstream, upstream), DIR, env=pt.no_quarantine())
        self.ml.wait_ready()

    def get(self, path, *args):
        """curl; returns (headers as a lower-cased dict, body bytes)."""
        head = os.path.join(DIR, "head.txt")
        r = subprocess.run(["curl", "-sS", "--max-time", "60", "-D", head] + list(args) +
                           ["http://127.0.0.1:%d%s" % (self.web, path)],
                           capture_output=True, timeout=90)
        assert r.returncode == 0, r.stderr
        headers = {}
        with open(head, "rb") as f:
            for line in f.read().decode().split("\r\n")[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
        return headers, r.stdout


def setup():
    return Setup()


def decode(coding, data):
    if coding == "gzip":
        return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    tool = {"br": "brotli", "zstd": "zstd"}[coding]
    return subprocess.run([tool, "-d", "-c"], input=data, capture_output=True, check=True,
                          timeout=60).stdout


def test_each_coding_decodes_to_the_upstreams_bytes():
    s = setup()
    plain_headers, _ = s.get("/page.txt", "-H", "Accept-Encoding: identity")
    assert plain_headers["etag"].startswith('"'), plain_headers
    for coding in ("gzip", "br", "zstd"):
        for path, original in (("/page.txt", FILES["page.txt"]),
                               ("/data.json", FILES["data.json"])):
            headers, body = s.get(path, "-H", "Accept-Encoding: " + coding)
            assert headers.get("content-encoding") == coding, (path, headers)
            assert headers.get("vary") == "Accept-Encoding", headers
            assert "content-length" not in headers, headers
            assert headers.get("transfer-encoding") == "chunked", headers
            assert len(body) < len(original) / 3, (path, coding, len(body))
            assert decode(coding, body) == original, (path, coding)
            if path == "/page.txt":
                assert headers["etag"] == "W/" + plain_headers["etag"], headers


def test_q_values_and_the_configured_order_choose():
    s = setup()
    cases = [("gzip, deflate, br, zstd", "br"), ("gzip;q=1, br;q=0.5", "gzip"),
             ("zstd, gzip", "zstd"), ("*", "br"), ("br;q=0, *;q=0.1", "zstd"),
             ("deflate", None), ("gzip;q=0", None)]
    for accept, expected in cases:
        headers, body = s.get("/page.txt", "-H", "Accept-Encoding: " + accept)
        assert headers.get("content-encoding") == expected, (accept, headers)
        if expected is None:
            assert body == FILES["page.txt"], accept
            assert headers.get("vary") == "Accept-Encoding", headers


def test_curl_compressed_over_http1_and_http2():
    s = setup()
    for extra in ([], ["--http2-prior-knowledge"]):
        headers, body = s.get("/page.txt", "--compressed", *extra)
        assert headers.get("content-encoding") == "br", (extra, headers)
        assert body == FILES["page.txt"], extra  # curl decoded it


def test_responses_left_as_they_are():
    s = setup()
    accept = ["-H", "Accept-Encoding: br, gzip"]
    headers, body = s.get("/small.txt", *accept)  # 60 bytes, under min_length 1024
    assert "content-encoding" not in headers and body == FILES["small.txt"], headers
    headers, body = s.get("/image.png", *accept)
    assert "content-encoding" not in headers and body == FILES["image.png"], headers
    assert "vary" not in headers, headers  # never compressed, so it does not vary
    headers, body = s.get("/pre/page.txt", *accept)
    assert headers.get("content-encoding") == "deflate" and body == FILES["pre/page.txt"]
    headers, body = s.get("/nt/page.txt", *accept)
    assert "content-encoding" not in headers and body == FILES["nt/page.txt"], headers
    headers, body = s.get("/page.txt", "-I", *accept)
    assert "content-encoding" not in headers, headers
    headers, body = s.get("/page.txt", "-H", "Range: bytes=0-99", *accept)
    assert "content-encoding" not in headers and body == FILES["page.txt"][:100], headers


def test_a_malformed_accept_encoding_gets_the_response_uncompressed():
    s = setup()
    for accept in ("br;q=7", "gzip;q=abc, zstd;level=9", ",;;,", "b r"):
        headers, body = s.get("/page.txt", "-H", "Accept-Encoding: " + accept)
        assert "content-encoding" not in headers, (accept, headers)
        assert body == FILES["page.txt"], accept


def test_a_routes_table_overrides_the_servers():
    s = setup()
    headers, body = s.get("/gzip-only/small.txt", "-H", "Accept-Encoding: br, gzip")
    assert headers.get("content-encoding") == "gzip", headers  # min_length 10 on this route
    assert decode("gzip", body) == FILES["small.txt"]
    headers, _ = s.get("/gzip-only/data.json", "-H", "Accept-Encoding: gzip")
    assert "content-encoding" not in headers, headers  # types = ["text/*"] here


def test_a_100_mib_response_streams_with_memory_flat():
    s = setup()
    s.get("/page.txt", "-H", "Accept-Encoding: zstd")  # warm: buffers and encoder code paged in
    baseline = pt.rss_kib(s.ml.pid)
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], pt.rss_kib(s.ml.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        curl = subprocess.Popen(["curl", "-sS", "--max-time", "120", "-H", "Accept-Encoding: zstd",
                                 "http://127.0.0.1:%d/big.txt" % s.web], stdout=subprocess.PIPE)
        count = subprocess.run(["sh", "-c", "zstd -d -c | wc -c"], stdin=curl.stdout,
                               capture_output=True, timeout=180, text=True)
        curl.stdout.close()
        assert curl.wait(timeout=60) == 0
    finally:
        done.set()
        sampler.join()
    assert int(count.stdout.strip()) == BIG, count
    growth_mib = (peak[0] - baseline) / 1024
    print("100 MiB through zstd: RSS %d MiB before, peak %+.1f MiB" % (baseline // 1024,
                                                                       growth_mib))
    assert growth_mib < 32, growth_mib  # the body is 100 MiB; an encoder's window is 256 KiB


if __name__ == "__main__":
    pt.main([(name, fn) for name, fn in list(globals().items()) if name.startswith("test_")])
