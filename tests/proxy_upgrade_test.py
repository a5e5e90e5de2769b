"""Binary upgrade (`monolake --upgrade`) under load: the new process takes the listening
sockets over [runtime] control_socket, the old one drains and exits.

- 10 upgrades in a row while keep-alive HTTP clients, new-connection-per-request clients, short
  L4 streams and HTTPS clients resuming TLS sessions run: zero connection errors, zero non-2xx,
  every request answered, TLS resumption still works after each upgrade, all traffic ends on
  the newest process, every old process exits 0.
- A broken config (and a listener that cannot be bound) makes --upgrade exit 1 with the reason
  while the old process keeps serving. Without control_socket, --upgrade exits 1 saying so.
- A long upload in flight during an upgrade completes on the old process.

Usage: proxy_upgrade_test.py MONOLAKE MAKE_TEST_CERTS
"""

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])
MAKE_CERTS = os.path.abspath(sys.argv[2])
DIR = pt.tmpdir()
# Unix socket paths are limited to 107 bytes: the control socket lives in a short directory.
SHORT = tempfile.mkdtemp(prefix="ml-up-", dir="/tmp")



def certs():
    return pt.test_certs(MAKE_CERTS, DIR)


def config(http_port, https_port, tcp_port, nginx_port, echo_port, extra=""):
    c = certs()
    return """[runtime]
worker_threads = 2
control_socket = "%s/monolake.ctl"
drain_timeout_sec = 5

[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
[[servers.web.routes]]
path = "/{*rest}"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]

[servers.secure]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:%d" }
tls = { chain = "%s/a.pem", key = "%s/a.key" }
[[servers.secure.routes]]
path = "/{*rest}"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]

[servers.tcp]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
[servers.tcp.route]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
%s""" % (SHORT, http_port, nginx_port, https_port, c, c, nginx_port, tcp_port, echo_port, extra)


class Load:
    """Bounded client loops; every failure is recorded."""

    def __init__(self, http_port, https_port, tcp_port, seconds=120):
        self.ports = (http_port, https_port, tcp_port)
        self.errors = []
        self.counts = {"keepalive": 0, "fresh": 0, "tcp": 0, "tls": 0, "resumed": 0}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._deadline = self._started + seconds
        self._threads = [threading.Thread(target=f, daemon=True) for f in
                         (self._keepalive, self._keepalive, self._fresh, self._tcp, self._tls)]
        for t in self._threads:
            t.start()

    def running(self):
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _count(self, kind):
        with self._lock:
            self.counts[kind] += 1

    def _error(self, kind, e):
        with self._lock:
            self.errors.append("%s at %.1f s: %r" % (kind, time.monotonic() - self._started, e))

    def _keepalive(self):
        # http.client opens a new connection when the server said Connection: close.
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[0], timeout=10)
        while self.running():
            try:
                conn.request("GET", "/small.txt")
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or body != b"hello\n":
                    raise AssertionError("status %d body %r" % (resp.status, body))
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                self._count("keepalive")
            except Exception as e:  # recorded; the test asserts there are none
                self._error("keepalive", e)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.ports[0], timeout=10)
                time.sleep(0.05)
        conn.close()

    def _fresh(self):
        while self.running():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.ports[0], timeout=10)
                conn.request("GET", "/small.txt", headers={"Connection": "close"})
                resp = conn.getresponse()
                if resp.status != 200 or resp.read() != b"hello\n":
                    raise AssertionError("status %d" % resp.status)
                conn.close()
                self._count("fresh")
            except Exception as e:
                self._error("fresh", e)
                time.sleep(0.05)

    def _tcp(self):
        # Short L4 streams (~0.5 s each, well within the drain timeout).
        while self.running():
            try:
                with socket.create_connection(("127.0.0.1", self.ports[2]), timeout=10) as s:
                    for i in range(5):
                        msg = b"stream %d" % i
                        s.sendall(msg)
                        got = b""
                        while len(got) < len(msg):
                            chunk = s.recv(100)
                            if not chunk:
                                raise AssertionError("closed mid-stream")
                            got += chunk
                        if got != msg:
                            raise AssertionError("echo %r" % got)
                        time.sleep(0.1)
                self._count("tcp")
            except Exception as e:
                self._error("tcp", e)
                time.sleep(0.05)

    def _tls(self):
        context = ssl.create_default_context(cafile=certs() + "/ca.pem")
        session = None
        while self.running():
            try:
                with socket.create_connection(("127.0.0.1", self.ports[1]), timeout=10) as raw:
                    with context.wrap_socket(raw, server_hostname="a.test",
                                             session=session) as s:
                        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: a.test\r\n"
                                  b"Connection: close\r\n\r\n")
                        data = b""
                        while True:
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                        if not data.startswith(b"HTTP/1.1 200"):
                            raise AssertionError(data[:100])
                        if s.session_reused:
                            self._count("resumed")
                        session = s.session
                self._count("tls")
            except Exception as e:
                self._error("tls", e)
                session = None
                time.sleep(0.05)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)


def upgrade(config_path, name):
    new = pt.Monolake(MONOLAKE, open(config_path).read(), DIR, name=name,
                      extra_args=["--upgrade"])
    # Monolake() rewrites the file under DIR; use the same control socket (absolute path).
    pt.wait_until(lambda: "took over" in new.err() or not new.running(), 20, name + " takes over")
    assert new.running(), new.err()
    return new


def test_ten_upgrades_under_load():
    ng_port = pt.free_port()
    root = os.path.join(DIR, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "small.txt"), "w") as f:
        f.write("hello\n")
    ng = pt.nginx(DIR, ["server { listen 127.0.0.1:%d; root %s; keepalive_requests 100000; }"
                        % (ng_port, root)])
    pt.wait_until(lambda: pt.port_open(ng_port), 10, "nginx")
    echo = pt.EchoServer()
    http_port, https_port, tcp_port = pt.free_ports(3)
    text = config(http_port, https_port, tcp_port, ng_port, echo.port)
    current = pt.Monolake(MONOLAKE, text, DIR, name="monolake-gen0")
    current.wait_ready()
    load = Load(http_port, https_port, tcp_port)
    # wrk with keep-alive alongside, bounded in time; it reports any socket error or non-2xx.
    wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d6s", "http://127.0.0.1:%d/small.txt"
                            % http_port], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    olds = []
    try:
        time.sleep(1.0)
        for generation in range(1, 11):
            resumed_before = load.counts["resumed"]
            print("  upgrade %d at %.1f s" % (generation, time.monotonic() - load._started))
            new = upgrade(current.config_path, "monolake-gen%d" % generation)
            olds.append(current)
            current = new
            # The old process drains and exits 0 within the drain timeout.
            assert olds[-1].wait(15) == 0, olds[-1].err()
            # Resumption keeps working: tickets of earlier generations are accepted here.
            pt.wait_until(lambda: load.counts["resumed"] > resumed_before, 10,
                          "a resumed TLS session after upgrade %d" % generation)
        time.sleep(1.0)
    finally:
        load.stop()
        try:
            wrk_out, _ = wrk.communicate(timeout=30)  # it runs 6 s, over the first upgrades
        finally:
            if wrk.poll() is None:
                wrk.kill()
    if load.errors:
        # What each generation said beyond its access lines, to tell where a connection stalled.
        for proc in olds + [current]:
            notes = [line for line in proc.err().splitlines() if " server=" not in line]
            print("--- %s\n%s" % (proc.name, "\n".join(notes[-40:])))
    assert not load.errors, "%d errors, e.g. %s" % (len(load.errors), load.errors[:5])
    assert " requests in " in wrk_out, wrk_out
    assert "Socket errors" not in wrk_out and "Non-2xx" not in wrk_out, wrk_out
    assert all(load.counts[k] > 0 for k in load.counts), load.counts
    # All traffic ends on the newest process.
    before = current.err().count("http server=web")
    for _ in range(5):
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
        conn.request("GET", "/small.txt")
        assert conn.getresponse().status == 200
        conn.close()
    # (an access line is written once its response has gone out: wait for it)
    pt.wait_until(lambda: current.err().count("http server=web") >= before + 5, 5,
                  "the newest process logging the last requests")
    assert all(not o.running() for o in olds)
    print("  %s over 10 upgrades, no errors" % load.counts)
    assert current.stop() == 0
    ng.stop()


def test_failed_upgrades_leave_the_old_process_serving():
    ng_port = pt.free_port()
    echo = pt.EchoServer()
    http_port, https_port, tcp_port = pt.free_ports(3)
    root = os.path.join(DIR, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "small.txt"), "w") as f:
        f.write("hello\n")
    ng = pt.nginx(DIR, ["server { listen 127.0.0.1:%d; root %s; }" % (ng_port, root)],
                  name="nginx-failed")
    pt.wait_until(lambda: pt.port_open(ng_port), 10, "nginx")
    text = config(http_port, https_port, tcp_port, ng_port, echo.port)
    old = pt.Monolake(MONOLAKE, text, DIR, name="monolake-keeps")
    old.wait_ready()

    def serves():
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
        conn.request("GET", "/small.txt")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok

    # 1. A config that does not validate.
    bad = os.path.join(DIR, "bad.toml")
    with open(bad, "w") as f:
        f.write(text.replace("drain_timeout_sec = 5", "drain_timeout_sec = 5\nbogus = 1"))
    out = subprocess.run([MONOLAKE, "--upgrade", "-c", bad], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1 and "runtime.bogus: unknown key" in out.stderr, out
    assert old.running() and serves()
    # 2. A new listener that cannot be bound (its port is taken).
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    extra = """
[servers.more]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
[servers.more.route]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % (taken.getsockname()[1], echo.port)
    with open(bad, "w") as f:
        f.write(config(http_port, https_port, tcp_port, ng_port, echo.port, extra))
    out = subprocess.run([MONOLAKE, "--upgrade", "-c", bad], capture_output=True, text=True,
                         timeout=30)
    taken.close()
    assert out.returncode == 1 and "servers.more.listener" in out.stderr, out
    assert old.running() and serves()
    assert "still serving" in old.err() or "upgrade" in old.err(), old.err()
    # 3. No control_socket: --upgrade says so.
    nocontrol = os.path.join(DIR, "nocontrol.toml")
    with open(nocontrol, "w") as f:
        f.write("\n".join(l for l in text.splitlines() if not l.startswith("control_socket")))
    out = subprocess.run([MONOLAKE, "--upgrade", "-c", nocontrol], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and "control_socket" in out.stderr, out
    assert old.running() and serves()
    assert old.stop() == 0
    ng.stop()


def test_new_process_dying_mid_handover():
    # A "new process" that takes the sockets and dies before "ready" (played by this test over
    # the control socket): the old process goes on serving, and a real upgrade still works after.
    import array
    echo = pt.EchoServer()
    ng_port = pt.free_port()
    root = os.path.join(DIR, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "small.txt"), "w") as f:
        f.write("hello\n")
    ng = pt.nginx(DIR, ["server { listen 127.0.0.1:%d; root %s; }" % (ng_port, root)],
                  name="nginx-crash")
    pt.wait_until(lambda: pt.port_open(ng_port), 10, "nginx")
    http_port, https_port, tcp_port = pt.free_ports(3)
    old = pt.Monolake(MONOLAKE, config(http_port, https_port, tcp_port, ng_port, echo.port), DIR,
                      name="monolake-survivor")
    old.wait_ready()
    control = socket.socket(socket.AF_UNIX)
    control.settimeout(10)
    control.connect(os.path.join(SHORT, "monolake.ctl"))
    control.sendall(b"upgrade\n")
    text = b""
    while not text.endswith(b"end\n"):
        text += control.recv(1)
    counts = [int(l.split()[1]) for l in text.decode().splitlines() if l.startswith("listener ")]
    assert sum(counts) == 2 + 2 + 2, text  # three addresses, one socket per worker each
    fds = array.array("i")
    got = 0
    while got < sum(counts):
        msg, ancdata, flags, addr = control.recvmsg(1, socket.CMSG_SPACE(200 * fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                received = array.array("i")
                received.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
                got += len(received)
                fds.extend(received)
    for fd in fds:
        os.close(fd)
    control.close()  # dies without "ready"
    time.sleep(0.5)
    assert old.running(), old.err()
    assert "did not get ready" in old.err(), old.err()
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
    conn.request("GET", "/small.txt")
    assert conn.getresponse().status == 200
    conn.close()
    # A real upgrade afterwards works.
    new = upgrade(old.config_path, "monolake-after-crash")
    assert old.wait(15) == 0, old.err()
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
    conn.request("GET", "/small.txt")
    assert conn.getresponse().status == 200
    conn.close()
    assert new.stop() == 0
    ng.stop()


def test_long_upload_completes_across_an_upgrade():
    # An upstream that reads a body slowly and answers with its size.
    received = {}

    def upstream(sock):
        conn, _ = sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int([l for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length:")][0].split(b":")[1])
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            received["size"] = len(body)
            answer = b"%d" % len(body)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer),
                                                                               answer))

    up = socket.socket()
    up.bind(("127.0.0.1", 0))
    up.listen(4)
    threading.Thread(target=upstream, args=(up,), daemon=True).start()
    echo = pt.EchoServer()
    http_port, https_port, tcp_port = pt.free_ports(3)
    text = config(http_port, https_port, tcp_port, up.getsockname()[1], echo.port)
    old = pt.Monolake(MONOLAKE, text, DIR, name="monolake-upload")
    old.wait_ready()
    size = 4 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", http_port), timeout=20)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    piece = b"u" * 65536
    sent = 0
    new = None
    while sent < size:
        s.sendall(piece)
        sent += len(piece)
        if sent == size // 2:
            new = upgrade(old.config_path, "monolake-after-upload")  # mid-upload
        time.sleep(0.01)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    assert received.get("size") == size, received
    s.close()
    assert old.wait(15) == 0, old.err()
    assert new.stop() == 0
    up.close()


if __name__ == "__main__":
    try:
        pt.main([(name, fn) for name, fn in list(globals().items()) if name.startswith("test_")])
    finally:
        shutil.rmtree(SHORT, ignore_errors=True)
