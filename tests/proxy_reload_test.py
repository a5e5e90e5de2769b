"""Live update of monolake (SIGHUP) under load: the chain is replaced while traffic flows.

- 20 reloads swapping the upstream between two servers while a bounded loop of client
  connections runs: zero failed connections, connections made after a reload reach the new
  upstream, long-lived connections opened before the reloads keep working on their upstream.
- Listeners added and removed by a reload are opened and closed.
- A config that fails validation leaves the running one in force; [runtime] changes are logged
  as needing a restart.

Usage: proxy_reload_test.py MONOLAKE
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import proxytest as pt  # noqa: E402

MONOLAKE = os.path.abspath(sys.argv[1])
DIR = pt.tmpdir()

TAG_A = b"[A]"
TAG_B = b"[B]"


class Load:
    """Client threads making one connection per request until stopped (bounded by count and
    time): each sends a payload, half-closes, and expects TAG + payload back."""

    def __init__(self, port, threads=4, max_connections=200000, max_seconds=120):
        self.port = port
        self.ok = 0
        self.failures = []
        self.tags = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._budget = max_connections
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self, index):
        n = 0
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            with self._lock:
                if self._budget == 0:
                    return
                self._budget -= 1
            payload = b"load %d/%d" % (index, n)
            n += 1
            try:
                got = pt.exchange(self.port, payload, timeout=10)
                tag, rest = got[:3], got[3:]
                if rest != payload or tag not in (TAG_A, TAG_B):
                    raise AssertionError("bad reply %r" % got)
                with self._lock:
                    self.ok += 1
                    self.tags[tag] = self.tags.get(tag, 0) + 1
            except Exception as e:  # recorded: the test asserts there are none
                with self._lock:
                    self.failures.append(repr(e))

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)


def config(port, upstream_port, extra=""):
    return pt.tcp_config("127.0.0.1:%d" % port, ["127.0.0.1:%d" % upstream_port]) + extra


def tag_of_new_connection(port):
    return pt.exchange(port, b"probe")[:3]


def test_twenty_reloads_under_load():
    a = pt.EchoServer(tag=TAG_A)
    b = pt.EchoServer(tag=TAG_B)
    port = pt.free_port()
    ml = pt.Monolake(MONOLAKE, config(port, a.port), DIR)
    ml.wait_ready()
    # Long-lived connections opened before any reload: they stay on upstream A.
    long_lived = []
    for i in range(4):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert s.recv(3) == TAG_A
        long_lived.append(s)
    load = Load(port)
    try:
        for i in range(20):
            upstream, tag = (b, TAG_B) if i % 2 == 0 else (a, TAG_A)
            assert ml.reload(config(port, upstream.port)), ml.err()
            # Every connection made after the reload took effect reaches the new upstream.
            for _ in range(3):
                assert tag_of_new_connection(port) == tag
            for j, s in enumerate(long_lived):
                msg = b"still here %d/%d" % (i, j)
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(len(msg) - len(got))
                    assert chunk, "long-lived connection closed by reload %d" % i
                    got += chunk
                assert got == msg
            time.sleep(0.05)  # let the load run on this configuration
    finally:
        load.stop()
    for s in long_lived:
        s.close()
    assert not load.failures, "%d failed connections, e.g. %s" % (len(load.failures),
                                                                 load.failures[:3])
    assert load.ok > 100, load.ok
    assert load.tags.get(TAG_A, 0) > 0 and load.tags.get(TAG_B, 0) > 0, load.tags
    assert "reload failed" not in ml.err(), ml.err()
    print("  %d connections over 20 reloads, none failed (A: %d, B: %d)" %
          (load.ok, load.tags.get(TAG_A, 0), load.tags.get(TAG_B, 0)))
    assert ml.stop() == 0


def test_listeners_added_and_removed():
    a = pt.EchoServer(tag=TAG_A)
    b = pt.EchoServer(tag=TAG_B)
    port, port2 = pt.free_port(), pt.free_port()
    base = config(port, a.port)
    second = """
[servers.second]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
[[servers.second.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % (port2, b.port)
    ml = pt.Monolake(MONOLAKE, base, DIR, name="monolake-listeners")
    ml.wait_ready()
    assert not pt.port_open(port2)
    assert ml.reload(base + second), ml.err()
    assert tag_of_new_connection(port2) == TAG_B
    assert tag_of_new_connection(port) == TAG_A
    # A connection on the second listener outlives the listener's removal.
    s = socket.create_connection(("127.0.0.1", port2), timeout=5)
    assert s.recv(3) == TAG_B
    assert ml.reload(base), ml.err()
    pt.wait_until(lambda: not pt.port_open(port2), 5, "removed listener closed")
    assert tag_of_new_connection(port) == TAG_A
    s.sendall(b"after removal")
    assert s.recv(100) == b"after removal"
    s.close()
    # The server moves to another address under the same key: the old port closes.
    port3 = pt.free_port()
    assert ml.reload(config(port3, a.port)), ml.err()
    assert tag_of_new_connection(port3) == TAG_A
    pt.wait_until(lambda: not pt.port_open(port), 5, "old address closed")
    assert ml.stop() == 0


def test_bad_reload_keeps_running_config():
    a = pt.EchoServer(tag=TAG_A)
    b = pt.EchoServer(tag=TAG_B)
    port = pt.free_port()
    ml = pt.Monolake(MONOLAKE, config(port, a.port), DIR, name="monolake-bad")
    ml.wait_ready()
    # An unknown key, and an upstream list that is empty: both reported, nothing changes.
    bad = config(port, b.port).replace('proxy_type = "tcp"', 'proxy_type = "tcp"\nbogus = 1')
    bad = bad.replace("upstreams = [", "upstreams = []\n#")
    assert not ml.reload(bad)
    err = ml.err()
    assert "reload failed; the running configuration stays in force" in err, err
    assert ml.config_path + ": servers.t.bogus: unknown key" in err, err
    assert ml.config_path + ": servers.t.routes[0].upstreams: " in err, err
    assert tag_of_new_connection(port) == TAG_A
    # A TLS certificate that cannot be read: refused too.
    tls_bad = config(port, b.port).replace(
        'proxy_type = "tcp"', 'proxy_type = "tcp"\ntls = { chain = "nope.pem", key = "nope.key" }')
    assert not ml.reload(tls_bad)
    assert ": servers.t.tls.chain: cannot open " in ml.err() and "nope.pem" in ml.err(), ml.err()
    assert tag_of_new_connection(port) == TAG_A
    # A listener that cannot be bound (the port is taken by someone else): refused.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    bind_bad = config(port, b.port) + """
[servers.other]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:%d" }
[[servers.other.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % (taken.getsockname()[1], b.port)
    assert not ml.reload(bind_bad)
    assert ": servers.other.listener: " in ml.err(), ml.err()
    assert tag_of_new_connection(port) == TAG_A
    taken.close()
    # A good config with a [runtime] change: applied, the runtime change logged and ignored.
    changed = config(port, b.port).replace("worker_threads = 2", "worker_threads = 3")
    assert ml.reload(changed), ml.err()
    assert "[runtime] worker_threads: 2 -> 3 needs a restart; ignored" in ml.err(), ml.err()
    assert tag_of_new_connection(port) == TAG_B
    assert ml.stop() == 0


if __name__ == "__main__":
    pt.main([(name, fn) for name, fn in list(globals().items()) if name.startswith("test_")])
