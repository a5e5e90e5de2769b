"""monolake as an HTTP/1.1 reverse proxy, as a process, with real peers: nginx and small Python
upstreams behind it, curl, wrk, ab and raw sockets in front of it.

Covered: GET/HEAD/PUT/POST with fixed and chunked bodies both ways, Expect: 100-continue,
absolute-form targets, HTTP/1.0; 10 MiB uploads and downloads streamed with flat memory;
trickling chunked bodies passed on piece by piece; pipelining; upstream keep-alive reuse (and
upstreams that close idle connections); X-Forwarded-For/-Proto, X-Request-Id and hop-by-hop
fields; routing by host and path, 404, direct answers; an upstream dying mid-response or
answering with bad framing; 504 on a silent upstream, 502 on a refusing one; request smuggling
inputs answered 4xx with nothing reaching the upstream; a reload reaching a keep-alive
connection; stalled heads and bodies and idle keep-alive connections closed by their timeouts
while others are served; SIGTERM drain; wrk and ab without errors. Every monolake a test starts
is stopped with SIGTERM afterwards and must exit 0 without sanitizer reports.

Usage: proxy_http_test.py MONOLAKE
"""

import concurrent.futures
import hashlib
import http.client
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])
MAKE_CERTS = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
DIR = pt.tmpdir()
MiB = 1 << 20

_upstreams = []  # in-process upstreams, closed after each test


# --- bytes on sockets ----------------------------------------------------------------------


class Reader:
    """Buffered reads from a socket; every byte received also goes to `log` if given."""

    def __init__(self, sock, log=None):
        self.sock = sock
        self.buf = bytearray()
        self.log = log

    def fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            raise EOFError("peer closed")
        if self.log:
            self.log(data)
        self.buf += data

    def until(self, marker, limit=1 << 20):
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                end = i + len(marker)
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if len(self.buf) > limit:
                raise ValueError("no %r within %d bytes" % (marker, limit))
            start = max(0, len(self.buf) - len(marker) + 1)
            self.fill()

    def exact(self, n, sink=None):
        """n bytes, returned, or handed to `sink` piece by piece (then b"" is returned)."""
        out = bytearray()
        while n > 0:
            if not self.buf:
                self.fill()
            take = min(n, len(self.buf))
            piece = bytes(self.buf[:take])
            del self.buf[:take]
            n -= take
            if sink:
                sink(piece)
            else:
                out += piece
        return bytes(out)

    def rest(self):
        """Everything up to EOF."""
        while True:
            try:
                self.fill()
            except EOFError:
                break
        out = bytes(self.buf)
        self.buf.clear()
        return out


def parse_head(head):
    lines = head[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers


def field(headers, name):
    values = [v for n, v in headers if n == name]
    return ", ".join(values) if values else None


def read_body(reader, headers, sink=None, until_close=False):
    te = field(headers, "transfer-encoding")
    if te is not None:
        assert te.lower() == "chunked", te
        out = bytearray()
        while True:
            size = int(reader.until(b"\r\n").split(b";")[0].strip(), 16)
            if size == 0:
                while reader.until(b"\r\n") != b"\r\n":  # trailer fields
                    pass
                return bytes(out)
            out += reader.exact(size, sink)
            if reader.exact(2) != b"\r\n":
                raise ValueError("chunk without CRLF")
    length = field(headers, "content-length")
    if length is not None:
        return reader.exact(int(length), sink)
    return reader.rest() if until_close else b""


class Response:
    def __init__(self, status, headers, body, raw_head):
        self.status, self.headers, self.body, self.raw_head = status, headers, body, raw_head

    def get(self, name):
        return field(self.headers, name.lower())


def read_response(reader, method="GET"):
    raw = reader.until(b"\r\n\r\n")
    first, headers = parse_head(raw)
    status = int(first.split(" ")[1])
    if method == "HEAD" or status in (204, 304) or status < 200:
        body = b""
    else:
        body = read_body(reader, headers, until_close=True)
    return Response(status, headers, body, raw)


def connect(port, timeout=5.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def closed_within(sock, seconds):
    """True if the peer closes (EOF or reset) within `seconds`; data before it is discarded."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return False
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


# --- in-process upstreams ------------------------------------------------------------------


class Upstream:
    """A TCP server in this process: serve(reader, sock, index) runs per connection in its own
    thread. Counts connections; with log_bytes=True keeps every byte received, in order."""

    def __init__(self, serve, log_bytes=False):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.raw = bytearray()
        self.lock = threading.Lock()
        self._serve = serve
        self._log_bytes = log_bytes
        self._open = []
        _upstreams.append(self)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                index = self.connections
                self._open.append(conn)
            threading.Thread(target=self._run, args=(conn, index), daemon=True).start()

    def _log(self, data):
        with self.lock:
            self.raw += data

    def _run(self, conn, index):
        reader = Reader(conn, self._log if self._log_bytes else None)
        try:
            self._serve(reader, conn, index)
        except (OSError, EOFError, ValueError):
            pass
        finally:
            conn.close()

    def logged(self):
        with self.lock:
            return bytes(self.raw)

    def close(self):
        self.sock.close()
        with self.lock:
            for c in self._open:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Request:
    def __init__(self, method, target, version, headers, body, connection, length, sha256):
        self.method, self.target, self.version, self.headers = method, target, version, headers
        self.body, self.connection, self.length, self.sha256 = body, connection, length, sha256

    def get(self, name):
        return field(self.headers, name.lower())

    def names(self):
        return {n for n, _ in self.headers}


def send_response(sock, status, headers=(), body=b"", chunked=False):
    out = ["HTTP/1.1 %d %s\r\n" % (status, http.client.responses.get(status, "X"))]
    out += ["%s: %s\r\n" % kv for kv in headers]
    if chunked:
        out.append("Transfer-Encoding: chunked\r\n\r\n")
        data = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                        for i in range(0, len(body), 1000)) + b"0\r\n\r\n"
    else:
        out.append("Content-Length: %d\r\n\r\n" % len(body))
        data = body
    sock.sendall("".join(out).encode("latin-1") + data)


class HttpUpstream(Upstream):
    """An HTTP/1.1 keep-alive server. handler(request) returns (status, headers, body[, chunked])
    or a function(sock) that takes over the connection. Records every request it reads; with
    stream_bodies=True bodies are only hashed (large uploads)."""

    def __init__(self, handler=None, log_bytes=False, stream_bodies=False):
        self.requests = []
        self.handler = handler or echo
        self.stream_bodies = stream_bodies
        super().__init__(self._http, log_bytes)

    def _http(self, reader, sock, index):
        while True:
            try:
                head = reader.until(b"\r\n\r\n", 65536)
            except EOFError:
                return
            first, headers = parse_head(head)
            method, target, version = first.split(" ")
            digest = hashlib.sha256()
            count = [0]

            def sink(piece):
                digest.update(piece)
                count[0] += len(piece)

            body = read_body(reader, headers, sink if self.stream_bodies else None)
            if not self.stream_bodies:
                sink(body)
            request = Request(method, target, version, headers, body, index, count[0],
                              digest.hexdigest())
            with self.lock:
                self.requests.append(request)
            answer = self.handler(request)
            if callable(answer):
                answer(sock)
                return
            status, extra, out = answer[:3]
            send_response(sock, status, extra, out, chunked=len(answer) > 3 and answer[3])
            if "close" in (request.get("connection") or "").lower():
                return


def echo(request):
    """Echoes the request body; says what arrived in X-Got-* fields."""
    extra = [("X-Got-Method", request.method), ("X-Got-Target", request.target),
             ("X-Got-Length", str(request.length)), ("X-Got-Sha256", request.sha256),
             ("X-Got-Framing", "chunked" if request.get("transfer-encoding") else
              "length=%s" % request.get("content-length")),
             ("X-Got-Connection", str(request.connection))]
    return 200, extra, request.body, "chunked" in request.target


def http_upstream(**kwargs):
    return HttpUpstream(**kwargs)


# --- monolake configuration ----------------------------------------------------------------


def route(path, upstreams=(), host=None, ret=None):
    lines = ["path = '%s'" % path]
    if host is not None:
        lines.append('host = "%s"' % host)
    if upstreams:
        lines.append("upstreams = [%s]" % ", ".join(
            '{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }' % p for p in upstreams))
    if ret is not None:
        status, body = ret[0], ret[1]
        headers = ret[2] if len(ret) > 2 else {}
        text = "return = { status = %d, body = \"%s\"" % (status, body)
        if headers:
            text += ", headers = { %s }" % ", ".join('"%s" = "%s"' % kv for kv in headers.items())
        lines.append(text + " }")
    return "\n".join(lines)


def server(key, port, routes, timeout=None):
    text = '[servers.%s]\nproxy_type = "http"\nlistener = { type = "socket", value = ' \
           '"127.0.0.1:%d" }\n' % (key, port)
    if timeout:
        text += "timeout = { %s }\n" % ", ".join("%s = %d" % kv for kv in timeout.items())
    for r in routes:
        text += "\n[[servers.%s.routes]]\n%s\n" % (key, r)
    return text


def config(*servers, workers=1):
    return "[runtime]\nworker_threads = %d\n\n%s" % (workers, "\n".join(servers))


_monolakes = []  # started by the current test: stopped, and their logs checked, after it


def start(text, **kwargs):
    kwargs.setdefault("name", "monolake-t%d-%d" % (_test_number[0], len(_monolakes) + 1))
    ml = pt.Monolake(MONOLAKE, text, DIR, **kwargs)
    _monolakes.append(ml)
    ml.wait_ready()
    return ml


def proxy(routes, timeout=None, workers=1, **kwargs):
    """Starts monolake with one http server; returns (process, port)."""
    port = pt.free_port()
    return start(config(server("web", port, routes, timeout), workers=workers), **kwargs), port


# --- nginx ---------------------------------------------------------------------------------

WWW = os.path.join(DIR, "www")
SMALL_TEXT = b"hello from nginx\n"


def www():
    """nginx's document root: small.txt, chunked/text.txt (served chunked), 1 MiB and 10 MiB
    random files."""
    if not os.path.exists(os.path.join(WWW, "big.bin")):
        os.makedirs(os.path.join(WWW, "chunked"), exist_ok=True)
        os.makedirs(os.path.join(WWW, "dav"), exist_ok=True)
        with open(os.path.join(WWW, "small.txt"), "wb") as f:
            f.write(SMALL_TEXT)
        with open(os.path.join(WWW, "chunked", "text.txt"), "wb") as f:
            f.write(b"".join(b"line %06d of a chunked answer\n" % i for i in range(4000)))
        with open(os.path.join(WWW, "medium.bin"), "wb") as f:
            f.write(os.urandom(MiB))
        with open(os.path.join(WWW, "big.bin"), "wb") as f:
            f.write(os.urandom(10 * MiB))
    return WWW


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def start_nginx(name="nginx"):
    root = www()
    port = pt.free_port()
    block = """server {
    listen 127.0.0.1:%d;
    root %s;
    client_max_body_size 64m;
    keepalive_requests 100000;
    location /dav/ {
      dav_methods PUT DELETE;
      create_full_put_path on;
    }
    # sub_filter drops Content-Length: nginx answers with a chunked body.
    location /chunked/ { sub_filter 'no-such-text' 'x'; sub_filter_types *; }
    location = /conn { return 200 "$connection\\n"; }
    location /p/ { return 200 "$request_method $request_uri $http_host\\n"; }
    location /tiny/ { client_max_body_size 1k; }
  }""" % (port, root)
    process = pt.nginx(DIR, [block], name=name)
    pt.wait_until(lambda: pt.port_open(port), 10, "nginx")
    return process, port


def curl(*args, timeout=30):
    return subprocess.run(["curl", "-sS", "--max-time", "15"] + list(args), capture_output=True,
                          timeout=timeout)


def headers_of(dump):
    """Lower-cased field names -> values of the last response head in a `curl -D -` dump."""
    heads = dump.decode("latin-1").split("\r\n\r\n")
    head = [h for h in heads if h.startswith("HTTP/")][-1]
    out = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return out, head.split("\r\n")[0]


def status(port, path, method="GET", host=None, headers=None, body=None, timeout=10.0):
    """One request on a new connection with http.client: (status, headers (lower), body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        all_headers = dict(headers or {})
        if host:
            all_headers["Host"] = host
        c.request(method, path, body=body, headers=all_headers)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s for %d" % (key, pid))


# --- tests ---------------------------------------------------------------------------------


def test_get_head_put_post_fixed_and_chunked():
    ng, nport = start_nginx()
    up = http_upstream()
    ml, port = proxy([route("/echo/{*rest}", [up.port]), route("/{*rest}", [nport])])
    base = "http://127.0.0.1:%d" % port

    # GET with a Content-Length answer, HEAD, GET with a chunked answer from nginx.
    out = curl("-D", "-", "-o", os.path.join(DIR, "small.out"), base + "/small.txt")
    assert out.returncode == 0, out.stderr
    h, line = headers_of(out.stdout)
    assert line.startswith("HTTP/1.1 200"), line
    assert h.get("content-length") == str(len(SMALL_TEXT)), h
    assert read(os.path.join(DIR, "small.out")) == SMALL_TEXT
    out = curl("-I", base + "/small.txt")
    h, line = headers_of(out.stdout)
    assert line.startswith("HTTP/1.1 200") and h.get("content-length") == str(len(SMALL_TEXT)), \
        out.stdout
    direct = curl("-D", "-", "-o", "/dev/null", "http://127.0.0.1:%d/chunked/text.txt" % nport)
    assert headers_of(direct.stdout)[0].get("transfer-encoding") == "chunked", direct.stdout
    out = curl("-D", "-", "-o", os.path.join(DIR, "chunked.out"), base + "/chunked/text.txt")
    assert out.returncode == 0, out.stderr
    h, line = headers_of(out.stdout)
    assert h.get("transfer-encoding") == "chunked" and "content-length" not in h, h
    assert read(os.path.join(DIR, "chunked.out")) == read(os.path.join(WWW, "chunked/text.txt"))
    # HTTP/1.0 client: no chunked answer; the body ends with the connection.
    out = curl("-0", "-D", "-", "-o", os.path.join(DIR, "chunked10.out"),
               base + "/chunked/text.txt")
    assert out.returncode == 0, out.stderr
    h, line = headers_of(out.stdout)
    assert "transfer-encoding" not in h, h
    assert read(os.path.join(DIR, "chunked10.out")) == read(os.path.join(WWW, "chunked/text.txt"))

    # PUT to nginx (WebDAV) with Content-Length and chunked: the bytes land on disk.
    payload = os.path.join(WWW, "medium.bin")
    for name, extra in (("fixed.bin", []), ("chunked.bin", ["-H", "Transfer-Encoding: chunked"])):
        out = curl("-o", "/dev/null", "-w", "%{http_code}", "-T", payload, *extra,
                   base + "/dav/" + name)
        assert out.returncode == 0 and out.stdout in (b"201", b"204"), (out.stdout, out.stderr)
        assert read(os.path.join(WWW, "dav", name)) == read(payload), name

    # POST with fixed and chunked bodies to a Python upstream that echoes them.
    body = os.urandom(300 * 1024)
    st, h, got = status(port, "/echo/fixed?x=1&y=%20", "POST", body=body)
    assert st == 200 and got == body, (st, h)
    assert h["x-got-framing"] == "length=%d" % len(body) and h["x-got-target"] == \
        "/echo/fixed?x=1&y=%20", h
    pieces = [os.urandom(n) for n in (1, 5000, 70000, 3)]
    st, h, got = status(port, "/echo/chunked", "POST", body=iter(pieces))
    assert st == 200 and got == b"".join(pieces), (st, h, len(got))
    assert h["x-got-framing"] == "chunked" and h["x-got-sha256"] == sha(b"".join(pieces)), h
    assert h.get("transfer-encoding") == "chunked", h  # the upstream answered chunked too
    # curl's chunked upload, and an empty POST (Content-Length: 0 is passed on).
    out = curl("-D", "-", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + payload,
               "-o", os.path.join(DIR, "echo.out"), base + "/echo/curl")
    assert out.returncode == 0, out.stderr
    assert read(os.path.join(DIR, "echo.out")) == read(payload)
    assert headers_of(out.stdout)[0]["x-got-framing"] == "chunked"
    st, h, got = status(port, "/echo/empty", "POST", body=b"")
    assert st == 200 and got == b"" and h["x-got-framing"] == "length=0", h
    # Expect: 100-continue is answered by the proxy and not passed on.
    with connect(port) as s:
        s.sendall(b"POST /echo/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        r = Reader(s)
        assert r.until(b"\r\n\r\n").startswith(b"HTTP/1.1 100 ")
        s.sendall(b"hello")
        resp = read_response(r)
        assert resp.status == 200 and resp.body == b"hello", resp.raw_head
    assert up.requests[-1].get("expect") is None, up.requests[-1].headers
    # Absolute-form target: origin-form to the upstream, the authority as its Host.
    with connect(port) as s:
        s.sendall(b"GET http://abs.test/echo/abs?q=1 HTTP/1.1\r\nHost: abs.test\r\n\r\n")
        assert read_response(Reader(s)).status == 200
    assert (up.requests[-1].target, up.requests[-1].get("host")) == ("/echo/abs?q=1",
                                                                     "abs.test")
    # nginx refusing a large upload early (413): the client gets the 413.
    st, h, got = status(port, "/tiny/x", "POST", body=os.urandom(2 * MiB))
    assert st == 413, (st, got)
    # HTTP/1.0 without Host: nginx still answers (the proxy sends an empty Host).
    with connect(port) as s:
        s.sendall(b"GET /small.txt HTTP/1.0\r\n\r\n")
        resp = read_response(Reader(s))
        assert (resp.status, resp.body) == (200, SMALL_TEXT), resp.raw_head
    st, h, got = status(port, "/echo/get")
    assert st == 200 and h["x-got-method"] == "GET" and h["x-got-framing"] == "length=None", h
    ng.stop()


def test_ten_mib_up_and_down_streamed_with_flat_memory():
    ng, nport = start_nginx()
    sink = http_upstream(stream_bodies=True)
    # Under AddressSanitizer (--config=asan) freed buffers wait in its quarantine and count as
    # resident: without one, RSS shows what the proxy holds. (Ignored by other builds.)
    asan = ":".join(o for o in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0") if o)
    ml, port = proxy([route("/sink", [sink.port]), route("/{*rest}", [nport])],
                     env={"ASAN_OPTIONS": asan})
    base = "http://127.0.0.1:%d" % port
    big = os.path.join(WWW, "big.bin")
    big_sha = sha(read(big))
    # Warm up (buffer pools, first connections), then measure.
    assert curl("-o", "/dev/null", base + "/medium.bin").returncode == 0
    assert curl("-o", "/dev/null", "-T", os.path.join(WWW, "medium.bin"),
                base + "/dav/warm.bin").returncode == 0
    rss_before = vm(ml.pid, "VmRSS")
    hwm_before = vm(ml.pid, "VmHWM")
    peak = [rss_before]
    done = threading.Event()

    def sample():
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            peak[0] = max(peak[0], vm(ml.pid, "VmRSS"))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        # Download, rate-limited client: the proxy must wait for it, not buffer the file.
        out = curl("--limit-rate", "40M", "-o", os.path.join(DIR, "down.bin"), base + "/big.bin")
        assert out.returncode == 0, out.stderr
        assert sha(read(os.path.join(DIR, "down.bin"))) == big_sha
        # Uploads: to nginx with Content-Length, to a hashing upstream chunked.
        out = curl("-o", "/dev/null", "-w", "%{http_code}", "-T", big, base + "/dav/up.bin")
        assert out.returncode == 0 and out.stdout in (b"201", b"204"), out
        assert sha(read(os.path.join(WWW, "dav", "up.bin"))) == big_sha
        out = curl("-D", "-", "-o", "/dev/null", "-H", "Transfer-Encoding: chunked",
                   "--data-binary", "@" + big, base + "/sink")
        assert out.returncode == 0, out.stderr
        h, _ = headers_of(out.stdout)
        assert h["x-got-sha256"] == big_sha and h["x-got-length"] == str(10 * MiB), h
    finally:
        done.set()
        sampler.join(5)
    grown = max(peak[0] - rss_before, vm(ml.pid, "VmHWM") - hwm_before)
    print("RSS before %.1f MiB, peak %.1f MiB; VmHWM %.1f -> %.1f MiB" % (
        rss_before / MiB, peak[0] / MiB, hwm_before / MiB, vm(ml.pid, "VmHWM") / MiB))
    # A client that goes away mid-download: the proxy drops that upstream connection and goes on.
    with connect(port) as s:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        Reader(s).exact(MiB)
    assert curl("-o", os.path.join(DIR, "down2.bin"), base + "/big.bin").returncode == 0
    assert sha(read(os.path.join(DIR, "down2.bin"))) == big_sha
    assert grown < 8 * MiB, "RSS grew by %.1f MiB moving 30 MiB" % (grown / MiB)
    ng.stop()


def test_pipelined_requests_answered_in_order():
    def handler(request):
        if request.target == "/slow":
            time.sleep(0.3)  # the first answer is the slowest: order must still hold
        return 200, [], b"answer to %s %s %s" % (request.method.encode(), request.target.encode(),
                                                 request.body)

    up = http_upstream(handler=handler)
    ng, nport = start_nginx()
    ml, port = proxy([route("/p/{*rest}", [nport]), route("/{*rest}", [up.port])])
    requests = (b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\n\r\n"
                b"GET /p/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /p/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    with connect(port) as s:
        s.sendall(requests)  # one send
        r = Reader(s)
        bodies = [read_response(r).body for _ in range(6)]
        assert bodies == [b"answer to GET /slow ", b"answer to POST /b hello",
                          b"answer to POST /c abc", b"GET /p/1 x\n", b"GET /p/2 x\n",
                          b"answer to GET /d "], bodies
        assert r.rest() == b""  # closed after the last (Connection: close), nothing extra
    ng.stop()


def test_upstream_connections_reused():
    up = http_upstream()
    ng, nport = start_nginx()
    ml, port = proxy([route("/conn", [nport]), route("/{*rest}", [up.port])])
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(30):
        c.request("GET", "/ka/%d" % i)
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"" and r.getheader("Connection") != "close"
    c.close()
    for i in range(20):  # one client connection per request
        assert status(port, "/new/%d" % i)[0] == 200
    assert len(up.requests) == 50
    assert up.connections <= 2, "%d upstream connections for 50 requests" % up.connections
    # nginx's $connection: the same upstream connection serves a client's requests.
    out = curl(*["http://127.0.0.1:%d/conn" % port] * 10)
    assert out.returncode == 0, out.stderr
    ids = set(out.stdout.split())
    assert len(out.stdout.split()) == 10 and len(ids) <= 2, out.stdout
    ng.stop()


def test_websocket_tunnel():
    # A route with websocket = true tunnels WebSocket upgrades to a real WebSocket server
    # (python3-websockets): 101, then messages both ways; a route without it serves the same
    # request as plain HTTP (the Upgrade is dropped).
    import asyncio
    import threading
    import websockets

    ws_port = pt.free_port()
    ready = threading.Event()
    stop = {}

    async def echo(connection, path=None):
        async for message in connection:
            await connection.send(b"echo:" + (message if isinstance(message, bytes)
                                               else message.encode()))

    def serve():
        loop = asyncio.new_event_loop()
        stop["loop"] = loop

        async def main():
            stop["future"] = loop.create_future()
            async with websockets.serve(echo, "127.0.0.1", ws_port):
                ready.set()
                await stop["future"]
        loop.run_until_complete(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        port = pt.free_port()
        ws_route = "\n".join([route("/ws", [ws_port]), "websocket = true"])
        start(config(server("web", port, [ws_route, route("/plain", [ws_port])])))

        async def client():
            async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
                for i in range(20):
                    await ws.send(b"m%d" % i)
                    assert await asyncio.wait_for(ws.recv(), 5) == b"echo:m%d" % i
                await ws.send(b"x" * 200000)  # larger than one read
                assert await asyncio.wait_for(ws.recv(), 5) == b"echo:" + b"x" * 200000
        asyncio.run(client())

        # Without websocket = true the handshake is not passed on: no 101.
        async def refused():
            try:
                async with websockets.connect("ws://127.0.0.1:%d/plain" % port):
                    return False
            except Exception:  # InvalidStatusCode (the upstream's plain HTTP answer)
                return True
        assert asyncio.run(refused())
    finally:
        stop["loop"].call_soon_threadsafe(stop["future"].set_result, None)
        thread.join(10)


def test_slowloris_with_slowhttptest():
    # slowhttptest (Debian) opens 300 connections that send their heads a line every 2 s
    # (slowloris). With server_read_header_timeout_sec = 1 they are cut, while curl probes on
    # other connections keep being answered at once.
    ng, nport = start_nginx()
    port = pt.free_port()
    start(config(server("web", port, [route("/{*rest}", [nport])],
                        {"server_read_header_timeout_sec": 1}), workers=1), log_level="warn")
    slow = subprocess.Popen(["slowhttptest", "-H", "-c", "300", "-r", "150", "-i", "2", "-l", "6",
                             "-u", "http://127.0.0.1:%d/small.txt" % port, "-p", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.5)  # the slow connections are open and trickling
        for _ in range(10):
            # Answered while the attack holds its 300 connections: not a speed test, so the bound
            # is loose enough for a loaded CI machine (a blocked proxy would not answer at all
            # until the attack's connections were cut).
            out = subprocess.run(["curl", "-s", "--max-time", "5", "-o", "/dev/null", "-w",
                                  "%{http_code} %{time_total}",
                                  "http://127.0.0.1:%d/small.txt" % port],
                                 capture_output=True, text=True, timeout=10)
            code, took = out.stdout.split()
            assert code == "200" and float(took) < 3.0, out.stdout
            time.sleep(0.3)
        report, _ = slow.communicate(timeout=30)
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    # slowhttptest's own verdict: the service stayed available throughout, and the server
    # closed every slow connection (it ends early with "No open connections left").
    report = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", report)
    assert "service available:   NO" not in report, report[-1500:]
    assert "No open connections left" in report, report[-1500:]
    ended = re.search(r"Test ended on (\d+)th second", report)
    assert ended and int(ended.group(1)) < 6, report[-1500:]


def test_https_listeners_sni_mtls_and_https_upstreams():
    # HTTPS on the listener with each TLS stack: SNI picks the certificate (curl and
    # openssl s_client verify it), client_ca requires a client certificate, min_version = "1.3"
    # refuses TLS 1.2; an https:// upstream (nginx with TLS) is verified against the test CA.
    certs = os.path.join(DIR, "certs")
    if not os.path.exists(os.path.join(certs, "a.pem")):
        subprocess.run([MAKE_CERTS, certs], check=True, timeout=60, capture_output=True)
    up = http_upstream()
    tls_port = pt.free_port()
    ng = pt.nginx(DIR, ["server { listen 127.0.0.1:%d ssl; ssl_certificate %s/a.pem; "
                        "ssl_certificate_key %s/a.key; location / { return 200 \"tls upstream "
                        "$ssl_server_name\"; } }" % (tls_port, certs, certs)], name="nginx-tls")
    pt.wait_until(lambda: pt.port_open(tls_port), 10, "nginx tls")
    try:
        for stack in ("openssl", "gnutls"):
            port, mport = pt.free_port(), pt.free_port()
            tls = ('tls = { chain = "%s/a.pem", key = "%s/a.key", stack = "%s", sni = [{ names = '
                   '["b.test"], chain = "%s/b.pem", key = "%s/b.key" }], min_version = "1.3" }'
                   % (certs, certs, stack, certs, certs))
            mtls = ('tls = { chain = "%s/a.pem", key = "%s/a.key", stack = "%s", client_ca = '
                    '"%s/ca.pem" }' % (certs, certs, stack, certs))
            https_up = "\n".join([
                "path = '/secure'",
                'upstreams = [{ endpoint = { type = "uri", value = "https://a.test:%d" } }]'
                % tls_port,
                'upstream_tls = { ca = "%s/ca.pem", stack = "%s" }' % (certs, stack)])
            text = config(server("s", port, [route("/{*rest}", [up.port]), https_up]),
                          server("m", mport, [route("/{*rest}", [up.port])]))
            text = text.replace('[servers.s]\nproxy_type = "http"',
                                '[servers.s]\nproxy_type = "http"\n' + tls)
            text = text.replace('[servers.m]\nproxy_type = "http"',
                                '[servers.m]\nproxy_type = "http"\n' + mtls)
            # a.test resolves nowhere here: the upstream is given by address, its name as sni.
            text = text.replace("https://a.test:%d" % tls_port, "https://127.0.0.1:%d" % tls_port)
            text = text.replace('ca = "%s/ca.pem", stack' % certs,
                                'ca = "%s/ca.pem", sni = "a.test", stack' % certs)
            start(text, name="monolake-https-" + stack)
            for name in ("a.test", "b.test"):
                out = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", certs + "/ca.pem",
                                      "-o", "/dev/null", "-w", "%{http_code}",
                                      "--resolve", "%s:%d:127.0.0.1" % (name, port),
                                      "https://%s:%d/x" % (name, port)],
                                     capture_output=True, text=True, timeout=20)
                assert out.returncode == 0 and out.stdout == "200", (stack, name, out.stderr)
                sc = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                                     "-servername", name, "-CAfile", certs + "/ca.pem",
                                     "-verify_return_error", "-brief"],
                                    input=b"", capture_output=True, timeout=20)
                assert sc.returncode == 0, (stack, name, sc.stderr)
                assert ("CN = %s" % name).encode() in sc.stderr or \
                    ("CN=%s" % name).encode() in sc.stderr, (stack, name, sc.stderr)
            # min_version 1.3: a TLS 1.2 client is refused.
            old = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                                  "-tls1_2", "-servername", "a.test"],
                                 input=b"", capture_output=True, timeout=20)
            assert old.returncode != 0, (stack, old.stdout[-500:])
            # The https upstream, verified, with its name sent as SNI.
            out = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", certs + "/ca.pem",
                                  "--resolve", "a.test:%d:127.0.0.1" % port,
                                  "https://a.test:%d/secure" % port],
                                 capture_output=True, text=True, timeout=20)
            assert out.stdout == "tls upstream a.test", (stack, out.stdout, out.stderr)
            # mTLS: without a client certificate no answer; with one, served.
            bare = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", certs + "/ca.pem",
                                   "--resolve", "a.test:%d:127.0.0.1" % mport,
                                   "https://a.test:%d/x" % mport],
                                  capture_output=True, text=True, timeout=20)
            assert bare.returncode != 0, (stack, bare.stdout)
            good = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", certs + "/ca.pem",
                                   "--cert", certs + "/client.pem", "--key", certs + "/client.key",
                                   "--resolve", "a.test:%d:127.0.0.1" % mport,
                                   "https://a.test:%d/x" % mport],
                                  capture_output=True, text=True, timeout=20)
            assert good.returncode == 0, (stack, good.stderr)
        # X-Forwarded-Proto says https for requests that came over TLS.
        assert any(q.get("x-forwarded-proto") == "https" for q in up.requests), \
            [q.headers for q in up.requests]
    finally:
        ng.stop()


def test_client_that_stops_reading_is_disconnected():
    # A client asks for 10 MiB and never reads: once the socket buffers are full the proxy's
    # write waits; after server_write_timeout_sec (1 s) the connection is closed and the
    # upstream connection released, while other clients are served meanwhile.
    ng, nport = start_nginx()
    port = pt.free_port()
    ml = start(config(server("web", port, [route("/{*rest}", [nport])],
                             {"server_write_timeout_sec": 1})))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    began = time.monotonic()
    pt.wait_until(lambda: "target=/big.bin" in ml.err(), 10, "the stalled response logged")
    took = time.monotonic() - began
    assert 0.8 < took < 8, took
    line = [l for l in ml.err().splitlines() if "target=/big.bin" in l][0]
    assert "bytes=10485760" not in line, line  # cut short, not completed
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                          "http://127.0.0.1:%d/small.txt" % port], capture_output=True, text=True,
                         timeout=10)
    assert out.stdout == "200", out
    s.close()


def test_route_rewrites_and_trusted_proxies():
    # Host and path-prefix rewrites, request/response fields added and removed per route;
    # X-Forwarded-For appended to only for a trusted proxy (127.0.0.1 here), else replaced.
    def handler(request):
        return 200, [("X-Internal", "secret"), ("X-Resp", "ok")], b"ok"

    up = http_upstream(handler=handler)
    port = pt.free_port()
    api = "\n".join([route("/api/{*rest}", [up.port]), 'host_rewrite = "backend.internal"',
                     'strip_prefix = "/api"', 'add_prefix = "/v2/"',
                     'request_headers = { add = { X-Env = "prod" }, remove = ["x-debug"] }',
                     'response_headers = { add = { X-Served-By = "monolake" }, '
                     'remove = ["x-internal"] }'])
    text = config(server("web", port, [api, route("/{*rest}", [up.port])]))
    text = text.replace('proxy_type = "http"', 'proxy_type = "http"\ntrusted_proxies = ["127.0.0.0/8"]')
    start(text)
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(b"GET /api/users/7?x=1 HTTP/1.1\r\nHost: front.test\r\nX-Debug: 1\r\n"
                  b"X-Forwarded-For: 10.1.2.3\r\n\r\n")
        resp = read_response(reader)
        assert resp.status == 200, resp.raw_head
        assert resp.get("x-served-by") == "monolake" and resp.get("x-internal") is None, resp.raw_head
        assert resp.get("x-resp") == "ok", resp.raw_head
        s.sendall(b"GET /other HTTP/1.1\r\nHost: front.test\r\n\r\n")
        resp = read_response(reader)
        assert resp.status == 200 and resp.get("x-internal") == "secret", resp.raw_head
    first, second = up.requests[0], up.requests[1]
    assert first.target == "/v2/users/7?x=1", first.target
    assert first.get("host") == "backend.internal", first.headers
    assert first.get("x-env") == "prod" and first.get("x-debug") is None, first.headers
    assert first.get("x-forwarded-for") == "10.1.2.3, 127.0.0.1", first.headers
    assert second.target == "/other" and second.get("host") == "front.test", second.headers
    assert second.get("x-forwarded-for") == "127.0.0.1", second.headers


def test_forwarded_fields_and_hop_by_hop():
    def handler(request):
        return 200, [("Connection", "X-Secret-Hop"), ("X-Secret-Hop", "1"),
                     ("Keep-Alive", "timeout=9"), ("X-Resp", "ok")], b"ok"

    up = http_upstream(handler=handler)
    ml, port = proxy([route("/{*rest}", [up.port])])
    with connect(port) as s:
        s.sendall(b"GET /h HTTP/1.1\r\nHost: h.test\r\nX-Forwarded-For: 6.6.6.6\r\n"
                  b"X-Forwarded-Proto: https\r\nX-Request-Id: my-id-123\r\n"
                  b"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n"
                  b"TE: trailers\r\nUpgrade: foo/2\r\nProxy-Connection: keep-alive\r\n"
                  b"X-Keep: yes\r\n\r\n")
        reader = Reader(s)
        resp = read_response(reader)
        assert resp.status == 200 and resp.body == b"ok", resp.raw_head
        assert resp.get("x-resp") == "ok", resp.raw_head
        assert resp.get("x-secret-hop") is None and resp.get("keep-alive") is None, resp.raw_head
        # Connection: upgrade + Upgrade: both stay on this hop (no upgrade support).
        s.sendall(b"GET /u HTTP/1.1\r\nHost: h.test\r\nConnection: Upgrade\r\n"
                  b"Upgrade: websocket\r\n\r\n")
        resp = read_response(reader)
        assert resp.status == 200, resp.raw_head
    first, second = up.requests[0], up.requests[1]
    assert first.get("x-forwarded-for") == "127.0.0.1", first.headers
    assert first.get("x-forwarded-proto") == "http", first.headers
    assert first.get("x-request-id") == "my-id-123", first.headers
    assert first.get("host") == "h.test" and first.get("x-keep") == "yes", first.headers
    for request in (first, second):
        for name in ("x-hop", "keep-alive", "te", "upgrade", "proxy-connection"):
            assert name not in request.names(), (name, request.headers)
        conn = (request.get("connection") or "").lower()
        assert "x-hop" not in conn and "upgrade" not in conn, request.headers
    # Without X-Request-Id: a generated one, 32 hex digits, new for each request.
    assert re.fullmatch(r"[0-9a-f]{32}", second.get("x-request-id") or ""), second.headers
    assert status(port, "/again")[0] == 200
    third = up.requests[2]
    assert re.fullmatch(r"[0-9a-f]{32}", third.get("x-request-id") or ""), third.headers
    assert third.get("x-request-id") != second.get("x-request-id")
    pt.wait_until(lambda: "request_id=my-id-123" in ml.err(), 5, "request id in the access log")


def test_routing_by_host_and_path():
    ng, nport = start_nginx()
    port, other = pt.free_port(), pt.free_port()
    routes = [
        route("/{*rest}", host="a.test", ret=(200, "exact a.test")),
        route("/{*rest}", host="*.b.test", ret=(200, "wildcard b.test")),
        route("/u/me", ret=(200, "static me")),
        route("/u/{id}", ret=(200, "parameter")),
        route("/{*rest}", ret=(200, "catch-all")),
        route("/made", ret=(201, "made", {"X-Made": "yes", "Cache-Control": "no-store"})),
        route("/p/{*rest}", [nport]),
    ]
    only = [route("/only", ret=(200, "only"))]
    start(config(server("web", port, routes), server("other", other, only)))
    cases = [
        ("a.test", "/u/me", "exact a.test"),
        ("A.TEST:%d" % port, "/anything", "exact a.test"),
        ("x.b.test", "/u/me", "wildcard b.test"),
        ("deep.x.b.test", "/x", "wildcard b.test"),
        ("b.test", "/u/me", "static me"),  # the wildcard needs a subdomain
        ("c.test", "/u/me", "static me"),
        ("c.test", "/u/me?q=1", "static me"),
        ("c.test", "/u/you", "parameter"),
        ("c.test", "/u/you/more", "catch-all"),
        ("c.test", "/elsewhere", "catch-all"),
    ]
    for host, path, expected in cases:
        st, h, body = status(port, path, host=host)
        assert (st, body.decode()) == (200, expected), (host, path, st, body)
    # matchit: a catch-all needs at least one byte, so "/" matches nothing here.
    assert status(port, "/", host="c.test")[0] == 404
    st, h, body = status(port, "/made", host="c.test")
    assert (st, body, h.get("x-made"), h.get("cache-control")) == (201, b"made", "yes",
                                                                   "no-store"), (st, h, body)
    st, h, body = status(port, "/p/x?y=1", host="proxied.test")
    assert (st, body) == (200, b"GET /p/x?y=1 proxied.test\n"), (st, body)
    # The other server has one route: anything else is 404 (and the connection stays usable).
    c = http.client.HTTPConnection("127.0.0.1", other, timeout=10)
    for path, expected in (("/nothing", 404), ("/only/more", 404), ("/only", 200)):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        assert r.status == expected, (path, r.status)
    c.close()
    ng.stop()


def test_upstream_dies_mid_response():
    def handler(request):
        if request.target == "/cut":
            return lambda sock: sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        if request.target == "/cut-chunked":
            return lambda sock: sock.sendall(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n")
        return 200, [], b"fine"

    up = http_upstream(handler=handler)
    ml, port = proxy([route("/{*rest}", [up.port])])
    base = "http://127.0.0.1:%d" % port
    for path in ("/cut", "/cut-chunked"):
        began = time.monotonic()
        out = curl("-o", os.path.join(DIR, "cut.out"), base + path)
        assert out.returncode != 0, "curl took a truncated response as complete: %s" % path
        assert time.monotonic() - began < 5
        assert len(read(os.path.join(DIR, "cut.out"))) <= 10
        # The raw view: the client gets at most the 10 bytes, then the connection closes.
        with connect(port) as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
            got = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                got += chunk
            else:
                raise AssertionError("connection left open after a truncated response")
            head, _, body = got.partition(b"\r\n\r\n")
            assert b" 200 " in head.split(b"\r\n")[0], got
            assert not body.endswith(b"0\r\n\r\n") and len(body) < 1000, got
        assert status(port, "/next")[:3:2] == (200, b"fine")
    out = curl(base + "/after", base + "/after")
    assert out.returncode == 0 and out.stdout == b"finefine", out


def test_streamed_pieces_pass_without_waiting():
    # A chunked answer trickling in (server-sent events, progress) and a chunked upload sent
    # piece by piece: each piece must reach the other side while the sender waits, not once
    # more data (or the end) has arrived.
    got_first = threading.Event()

    def handler(request):
        def events(sock):
            sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nevent 1\r\n")
            got_first.wait(3)
            sock.sendall(b"7\r\nevent 2\r\n0\r\n\r\n")
        return events

    up = http_upstream(handler=handler)
    upload_seen = threading.Event()

    def uploads(reader, sock, index):
        reader.until(b"\r\n\r\n")
        reader.until(b"hello")
        upload_seen.set()
        reader.until(b"0\r\n\r\n")
        send_response(sock, 200, [], b"uploaded")

    sink = Upstream(uploads)
    ml, port = proxy([route("/events", [up.port]), route("/upload", [sink.port])])
    with connect(port) as s:
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        r = Reader(s)
        s.settimeout(1.5)
        try:
            r.until(b"event 1")
            in_time = True
        except socket.timeout:
            in_time = False
        got_first.set()
        s.settimeout(5)
        r.until(b"event 2\r\n0\r\n\r\n")
        assert in_time, "the first piece of a chunked answer was held back by the proxy"
    with connect(port) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n")
        in_time = upload_seen.wait(1.5)
        s.sendall(b"0\r\n\r\n")
        assert read_response(Reader(s)).body == b"uploaded"
        assert in_time, "the first piece of a chunked upload was held back by the proxy"


def test_bad_upstream_answers():
    def handler(request):
        answers = {
            "/cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                      b"\r\n0\r\n\r\n",
            "/two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "/garbage": b"HTP/1.1 200 OK\r\n\r\n",
            "/nothing": b"",
        }
        if request.target in answers:
            return lambda sock: sock.sendall(answers[request.target])
        if request.target == "/204":
            return 204, [], b""
        if request.target == "/304":
            return lambda sock: sock.sendall(b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n")
        if request.method == "HEAD":
            return lambda sock: sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
        if request.target == "/until-close":  # no length: the body ends with the connection
            return lambda sock: sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" +
                                             b"until close " * 1000)
        return 200, [], b"fine"

    up = http_upstream(handler=handler)
    ml, port = proxy([route("/{*rest}", [up.port])])
    for path in ("/cl-te", "/two-cl", "/garbage", "/nothing"):
        st, h, body = status(port, path)
        assert st == 502, (path, st, body)
        assert status(port, "/ok")[0] == 200
    # Bodiless answers (204, 304, to HEAD) on keep-alive connections both sides.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for method, path, expected in (("GET", "/204", 204), ("GET", "/ok", 200),
                                   ("GET", "/304", 304), ("HEAD", "/head", 200),
                                   ("GET", "/ok", 200)):
        c.request(method, path)
        r = c.getresponse()
        assert r.status == expected and r.read() == (b"fine" if expected == 200 and
                                                     method == "GET" else b""), (path, r.status)
    c.close()
    st, h, body = status(port, "/until-close")
    assert st == 200 and body == b"until close " * 1000, (st, h, len(body))
    assert h.get("transfer-encoding") == "chunked", h


def test_upstream_closing_idle_connections():
    # An upstream that closes each connection right after answering (without saying so):
    # the pooled connection is dead by the next request, which must still succeed, GET or POST.
    def handler(request):
        def answer_and_close(sock):
            send_response(sock, 200, [], b"got %d" % request.length)
        return answer_and_close

    up = http_upstream(handler=handler)
    ml, port = proxy([route("/{*rest}", [up.port])])
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(10):
        if i % 2:
            c.request("POST", "/p", body=b"x" * i)
        else:
            c.request("GET", "/g")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"got %d" % (i if i % 2 else 0)), (i, r.status)
        time.sleep(0.05)
    c.close()
    # Several dead connections in the pool at once: a GET takes one unprobed, fails, and its
    # one retry must connect anew, not take the next dead one (nor one that a probe passes
    # because its FIN has not arrived yet).
    for _ in range(3):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda _: status(port, "/g")[0], range(8)))
        assert got == [200] * 8, got
        time.sleep(0.1)
        assert status(port, "/g")[0] == 200


def test_upstream_timeout_504_and_refused_502():
    def hang(request):
        def hold(sock):  # never answers; holds the connection until the proxy gives up
            sock.settimeout(10)
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
        return hold

    silent = http_upstream(handler=hang)
    good = http_upstream()
    dead = pt.free_port()
    ml, port = proxy([route("/hang", [silent.port]), route("/dead", [dead]),
                      route("/{*rest}", [good.port])],
                     timeout={"upstream_read_timeout_sec": 1})
    began = time.monotonic()
    st, h, body = status(port, "/hang")
    took = time.monotonic() - began
    assert st == 504 and 0.8 <= took <= 3.0, (st, took)
    began = time.monotonic()
    st, h, body = status(port, "/dead")
    took = time.monotonic() - began
    assert st == 502 and took < 1.0, (st, took)
    assert status(port, "/fine")[0] == 200
    # The same on one keep-alive connection: each answer leaves it usable.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path, expected in (("/dead", 502), ("/fine", 200), ("/hang", 504), ("/fine", 200)):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        assert r.status == expected, (path, r.status)
    c.close()
    pt.wait_until(lambda: "status=504" in ml.err() and "status=502" in ml.err(), 5, "access log")


SMUGGLING = [
    ("CL and TE", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("TE with obs-fold", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
     b"0\r\n\r\n"),
    ("duplicate Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
     b"Content-Length: 6\r\n\r\nhello!"),
    ("Content-Length list", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!"),
    ("Content-Length with junk", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello"),
    ("Content-Length with sign", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"),
    ("TE xchunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"
     b"0\r\n\r\n"),
    ("TE chunked not last", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip"
     b"\r\n\r\n0\r\n\r\n"),
    ("TE in HTTP/1.0", b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n"),
    ("bare LF", b"GET / HTTP/1.1\nHost: x\n\n"),
    ("bare CR", b"GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n"),
    ("space before colon", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
     b"0\r\n\r\n"),
    ("chunk-size overflow", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"10000000000000000000001\r\nA\r\n0\r\n\r\n"),
    ("chunk data without CRLF", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     b"\r\n5\r\nhelloXX0\r\n\r\n"),
    ("NUL in a field", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("non-ASCII target", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("missing Host in HTTP/1.1", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n"),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
    ("userinfo in Host", b"GET / HTTP/1.1\r\nHost: user@x\r\n\r\n"),
    ("HTTP/2.0 request line", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("HTTP/0.9 request", b"GET /\r\n"),
    # Limits: rejected the same way.
    ("request line too long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("head too large", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 70000 +
     b"\r\n\r\n", 431),
]


def test_smuggling_inputs_rejected_and_never_forwarded():
    logger = http_upstream(log_bytes=True)
    ml, port = proxy([route("/", [logger.port]), route("/{*rest}", [logger.port])])
    problems = []
    for case in SMUGGLING:
        name, payload = case[0], case[1]
        expected = case[2] if len(case) > 2 else None
        with connect(port, timeout=3) as s:
            s.sendall(payload)
            r = Reader(s)
            try:
                resp = read_response(r)
                rest = r.rest()
            except (EOFError, ValueError, OSError) as e:
                problems.append("%s: no complete answer (%r)" % (name, e))
                continue
            if expected is not None and resp.status != expected:
                problems.append("%s: status %d, expected %d" % (name, resp.status, expected))
            if expected is None and not 400 <= resp.status < 500:
                problems.append("%s: status %d, expected 4xx" % (name, resp.status))
            if rest:
                problems.append("%s: more after the answer: %r" % (name, rest[:200]))
            if "close" not in (resp.get("connection") or ""):
                problems.append("%s: answer without Connection: close" % name)
        logged = logger.logged()
        if logged:
            problems.append("%s: reached the upstream: %r" % (name, logged[:300]))
            with logger.lock:
                logger.raw.clear()
    assert not problems, "\n".join(problems)
    # A valid request afterwards, on a new connection, does reach the upstream.
    st, h, body = status(port, "/valid", "POST", body=b"fine")
    assert st == 200 and body == b"fine", (st, body)
    assert logger.logged().startswith(b"POST /valid HTTP/1.1\r\n"), logger.logged()


def test_reload_reaches_keepalive_connection():
    a = http_upstream(handler=lambda r: (200, [], b"from A"))
    b = http_upstream(handler=lambda r: (200, [], b"from B"))
    port = pt.free_port()
    ml = start(config(server("web", port, [route("/{*rest}", [a.port])])))
    with connect(port) as s:
        r = Reader(s)
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(r).body == b"from A"
        assert ml.reload(config(server("web", port, [route("/{*rest}", [b.port])])))
        s.sendall(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(r).body == b"from B"
        s.sendall(b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(r).body == b"from B"
    assert a.connections == 1 and [q.target for q in b.requests] == ["/2", "/3"]


def test_slow_clients_closed_others_served():
    # A head that stalls halfway, a body that stalls, an idle keep-alive connection: each is
    # closed after its timeout (1 s here) while another connection on the same worker is served.
    up = http_upstream(handler=lambda r: (200, [], b"served"))
    ml, port = proxy([route("/{*rest}", [up.port])], workers=1,
                     timeout={"server_read_header_timeout_sec": 1,
                              "server_read_body_timeout_sec": 1,
                              "server_keepalive_timeout_sec": 1})
    pending = {"head": connect(port), "body": connect(port), "idle": connect(port)}
    pending["head"].sendall(b"GET /stalled HTTP/1.1\r\nHo")
    pending["body"].sendall(b"POST /stalled-body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                            b"\r\n0123456789")
    pending["idle"].sendall(b"GET /once HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(Reader(pending["idle"])).body == b"served"
    began = time.monotonic()
    served = 0
    closed = {}
    busy = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while time.monotonic() - began < 4 and len(closed) < len(pending):  # bounded: 4 s
        busy.request("GET", "/busy")
        r = busy.getresponse()
        assert r.status == 200 and r.read() == b"served"
        served += 1
        for name, sock in pending.items():
            if name not in closed and closed_within(sock, 0.02):
                closed[name] = time.monotonic() - began
    busy.close()
    for sock in pending.values():
        sock.close()
    assert sorted(closed) == sorted(pending), "not closed within 4 s: %s" % (
        set(pending) - set(closed))
    for name, at in closed.items():
        assert 0.7 <= at <= 3.0, (name, at)
    assert served >= 5, served
    assert not any(q.target.startswith("/stalled") for q in up.requests)


def test_sigterm_drains_http_connections():
    # SIGTERM: the listener closes; a request in progress is answered (Connection: close); an
    # idle keep-alive connection is not cut (the client could be sending a request on it at
    # that moment): a request it sends during the drain is served with Connection: close, and
    # one left idle is closed at drain_timeout_sec.
    def handler(request):
        if request.target == "/slow":
            time.sleep(1.0)
        return 200, [], b"done " + request.target.encode()

    up = http_upstream(handler=handler)
    port = pt.free_port()
    text = config(server("web", port, [route("/{*rest}", [up.port])], None), workers=2)
    ml = start(text.replace("[runtime]\n", "[runtime]\ndrain_timeout_sec = 3\n"))
    idle = connect(port)
    idle.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(Reader(idle)).body == b"done /first"
    late = connect(port)
    late.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(Reader(late)).body == b"done /first"
    busy = connect(port)
    busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    pt.wait_until(lambda: any(q.target == "/slow" for q in up.requests), 5, "slow request")
    began = time.monotonic()
    ml.signal(signal.SIGTERM)
    pt.wait_until(lambda: not pt.port_open(port), 5, "listener closed")
    resp = read_response(Reader(busy))
    assert resp.status == 200 and resp.body == b"done /slow", resp.raw_head
    assert "close" in (resp.get("connection") or ""), resp.raw_head
    assert closed_within(busy, 2)
    # The keep-alive connection that speaks during the drain is served, then closed.
    late.sendall(b"GET /during-drain HTTP/1.1\r\nHost: x\r\n\r\n")
    resp = read_response(Reader(late))
    assert resp.status == 200 and resp.body == b"done /during-drain", resp.raw_head
    assert "close" in (resp.get("connection") or ""), resp.raw_head
    assert closed_within(late, 2)
    # The silent one holds the drain until its timeout (3 s), then the process exits 0.
    assert ml.wait(10) == 0
    took = time.monotonic() - began
    assert 2.5 <= took < 6, took
    assert closed_within(idle, 1)
    idle.close()
    busy.close()
    late.close()


def test_wrk_and_ab_without_errors():
    ng, nport = start_nginx()
    up = http_upstream()
    ml, port = proxy([route("/echo", [up.port]), route("/{*rest}", [nport])], workers=2,
                     log_level="warn")
    out = subprocess.run(["wrk", "-t2", "-c16", "-d3s", "http://127.0.0.1:%d/small.txt" % port],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "Socket errors" not in out.stdout and "Non-2xx" not in out.stdout, out.stdout
    total = int(re.search(r"(\d+) requests in", out.stdout).group(1))
    assert total > 1000, out.stdout
    # ab: HTTP/1.0 with keep-alive, then POST bodies without keep-alive.
    out = subprocess.run(["ab", "-q", "-k", "-n", "2000", "-c", "8",
                          "http://127.0.0.1:%d/small.txt" % port],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"Complete requests:\s+2000\b", out.stdout), out.stdout
    assert re.search(r"Failed requests:\s+0\b", out.stdout), out.stdout
    assert re.search(r"Keep-Alive requests:\s+2000\b", out.stdout), out.stdout
    assert "Non-2xx" not in out.stdout, out.stdout
    body = os.path.join(DIR, "ab-body")
    with open(body, "wb") as f:
        f.write(os.urandom(20000))
    out = subprocess.run(["ab", "-q", "-n", "300", "-c", "4", "-p", body, "-T",
                          "application/octet-stream", "http://127.0.0.1:%d/echo" % port],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"Failed requests:\s+0\b", out.stdout), out.stdout
    assert "Non-2xx" not in out.stdout, out.stdout
    assert len(up.requests) == 300 and all(q.length == 20000 for q in up.requests)
    assert ml.running()
    assert ml.stop() == 0
    ng.stop()


_test_number = [0]


def run(fn):
    """Runs a test, then stops its monolake processes (SIGTERM) and fails it if one reported a
    sanitizer error (--config=asan builds) or did not exit cleanly."""
    def wrapped():
        _test_number[0] += 1
        try:
            fn()
            for ml in _monolakes:
                code = ml.stop(timeout=10)
                report = re.search(r"(AddressSanitizer|LeakSanitizer|runtime error:).*", ml.err())
                assert not report, "%s: %s (see %s)" % (ml.name, report.group(0), ml.err_path)
                assert code == 0, "%s exited with %s" % (ml.name, code)
        finally:
            del _monolakes[:]
            while _upstreams:
                _upstreams.pop().close()
    return wrapped


if __name__ == "__main__":
    pt.main([(name, run(fn)) for name, fn in list(globals().items())
             if name.startswith("test_")])
