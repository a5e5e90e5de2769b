"""Helpers for the proxy's integration tests: start real processes on loopback ports the test
picks, wait for them, talk to them, and stop every one of them by PID.

Run by /usr/bin/python3 (Debian's), standard library only.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

_started = []  # every process a test started, stopped at exit whatever happens


def tmpdir():
    base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
    return tempfile.mkdtemp(prefix="ml-", dir=base)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """n distinct free ports (each held until all are picked, so none repeats)."""
    held = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Process:
    """A child process with its stdout and stderr in files."""

    def __init__(self, argv, name, directory, env=None, graceful_signal=None):
        self.name = name
        # Sent first by stop_all() (then SIGKILL after 5 s) to a process with children of its own.
        self.graceful_signal = graceful_signal
        self.out_path = os.path.join(directory, name + ".out")
        self.err_path = os.path.join(directory, name + ".err")
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.popen = subprocess.Popen(argv, stdout=self._out, stderr=self._err, env=full_env,
                                      stdin=subprocess.DEVNULL)
        self.pid = self.popen.pid
        _started.append(self)

    def out(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def err(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def running(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.pid, sig)

    def wait(self, timeout=30.0):
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit status."""
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait()


def stop_all():
    for p in reversed(_started):
        if p.running():
            try:
                if p.graceful_signal is not None:
                    os.kill(p.pid, p.graceful_signal)
                    try:
                        p.popen.wait(timeout=5)
                        continue
                    except subprocess.TimeoutExpired:
                        pass
                p.popen.kill()
                p.popen.wait(timeout=5)
            except Exception:  # best effort at exit
                pass


class Monolake(Process):
    """monolake -c FILE, with helpers to rewrite the file and reload."""

    def __init__(self, binary, config_text, directory, name="monolake", env=None,
                 log_level="info", extra_args=(), wrapper=()):
        self.config_path = os.path.join(directory, name + ".toml")
        self.write_config(config_text)
        argv = list(wrapper) + [binary, "-c", self.config_path, "--log-level", log_level] + \
            list(extra_args)
        super().__init__(argv, name, directory, env=env)
        self.reloads = 0

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)  # a reload never reads half a file

    def wait_ready(self, timeout=10.0):
        wait_until(lambda: "listening:" in self.out() or not self.running(), timeout,
                   "monolake banner")
        if not self.running():
            raise AssertionError("monolake exited %s:\n%s" % (self.popen.returncode, self.err()))

    def reload(self, text=None, timeout=10.0):
        """Rewrites the config (if given), sends SIGHUP, waits for the verdict. True if applied.
        Only the log written after the signal is read (access logs can make it long)."""
        if text is not None:
            self.write_config(text)
        offset = os.path.getsize(self.err_path)

        def verdict():
            with open(self.err_path, "rb") as f:
                f.seek(offset)
                tail = f.read().decode(errors="replace")
            if "reload failed" in tail:
                return False
            if " applied\n" in tail:
                return True
            return None

        self.signal(signal.SIGHUP)
        wait_until(lambda: verdict() is not None, timeout, "reload verdict")
        self.reloads += 1
        return verdict()


def nginx(directory, servers, name="nginx"):
    """Starts nginx in the foreground with `servers` (a list of `server { ... }` blocks)."""
    conf_dir = os.path.join(directory, name)
    os.makedirs(conf_dir, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = """%sworker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  default_type text/plain;
  %s
}
""" % ((user,) + (conf_dir,) * 7 + ("\n".join(servers),))
    path = os.path.join(conf_dir, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    # SIGKILL would stop the master only and leave its worker serving the port, orphaned; its
    # fast shutdown (SIGTERM) stops the worker too.
    return Process([binary, "-c", path, "-p", conf_dir, "-e", conf_dir + "/error.log"], name,
                   directory, graceful_signal=signal.SIGTERM)


def haproxy(directory, sections, name="haproxy"):
    """Starts HAProxy in the foreground (-db) with `sections` (frontend/backend/listen blocks,
    one string) after a tcp-mode defaults section."""
    conf_dir = os.path.join(directory, name)
    os.makedirs(conf_dir, exist_ok=True)
    conf = """global
  maxconn 200
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
%s
""" % sections
    path = os.path.join(conf_dir, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(conf)
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return Process([binary, "-db", "-f", path], name, directory)


class EchoServer:
    """A threaded echo server in this process (an upstream that answers with what it gets,
    prefixed by `tag` once per connection so tests can tell upstreams apart). With
    after_eof=True it answers only once the client has half-closed (a half-close test)."""

    def __init__(self, tag=b"", after_eof=False):
        self.tag = tag
        self.after_eof = after_eof
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn):
        with conn:
            try:
                if self.tag:
                    conn.sendall(self.tag)
                held = b""
                while True:
                    data = conn.recv(65536)
                    if not data:
                        conn.sendall(held)
                        conn.shutdown(socket.SHUT_WR)
                        return
                    if self.after_eof:
                        held += data
                    else:
                        conn.sendall(data)
            except OSError:
                return

    def close(self):
        self._stop = True
        self.sock.close()


def test_certs(make_certs, directory):
    """The test CA and certificates (tls/testing/make_test_certs.sh) in DIRECTORY/certs, made
    on first use."""
    path = os.path.join(directory, "certs")
    if not os.path.exists(os.path.join(path, "a.pem")):
        subprocess.run([make_certs, path], check=True, timeout=60, capture_output=True)
    return path


def no_quarantine():
    """Environment for a process whose RSS a test watches: under AddressSanitizer
    (--config=asan) freed buffers wait in its quarantine and count as resident; without one,
    RSS shows what the proxy holds. (Ignored by other builds.)"""
    return {"ASAN_OPTIONS": ":".join(o for o in (os.environ.get("ASAN_OPTIONS"),
                                                  "quarantine_size_mb=0") if o)}


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect_from(source, port, timeout=10):
    """A TCP connection to 127.0.0.1:PORT from the loopback address SOURCE (127.0.0.2...)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_all(s):
    """Everything `s` receives until the peer closes (a reset ends it too)."""
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data


def exchange(port, payload, host="127.0.0.1", timeout=10.0, half_close=True):
    """Connects, sends `payload`, half-closes, returns everything received until EOF."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(payload)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got
            got += chunk


def admin_request(path, method="GET", unix=None, port=None):
    """(status, body) of one request to the admin API, over a Unix socket or a TCP port."""
    if unix:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(unix)
    else:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    with s:
        s.sendall(("%s %s HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                   % (method, path)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def tcp_config(listen, upstreams, name="t", extra_server="", runtime="worker_threads = 2",
               balancer=None):
    ups = ", ".join('{ endpoint = { type = "socket", value = "%s" } }' % u for u in upstreams)
    lb = '\nload_balancer = "%s"' % balancer if balancer else ""
    return """[runtime]
%s

[servers.%s]
proxy_type = "tcp"
listener = { type = "socket", value = "%s" }
%s

[[servers.%s.routes]]
upstreams = [%s]%s
""" % (runtime, name, listen, extra_server, name, ups, lb)


def main(tests):
    """Runs each (name, function) in order; prints PASS/FAIL; exits non-zero on any failure."""
    failed = 0
    try:
        for name, fn in tests:
            start = time.monotonic()
            try:
                fn()
                print("PASS %s (%.1f s)" % (name, time.monotonic() - start), flush=True)
            except Exception as e:  # report and go on with the next test
                failed += 1
                import traceback
                traceback.print_exc()
                print("FAIL %s: %s" % (name, e), flush=True)
            finally:
                stop_all()
    finally:
        stop_all()
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    sys.exit(1 if failed else 0)
