"""Connection layers (proxy/connection) in a user's proxy binary (connection_layers_proxy.cc),
with real clients in front of a real nginx:

- client_line before TLS on a plain http server: the client's first write carries its line and
  its request, so the layer reads past the line; the request is still served, nginx sees the
  announced client in X-Forwarded-For, the access log prints it. The same for HTTP/2 with prior
  knowledge (the preface arrives inside the read-ahead bytes).
- On TLS listeners (both TLS stacks): the line and the ClientHello in one write; the handshake
  starts from the read-ahead bytes; sni_allow after TLS serves a.test and closes b.test.
- A tcp server: the read-ahead request reaches nginx through TcpForward.
- subject_allow after TLS on mTLS servers: the client certificate's subject decides.
- A malformed line, a silent client (timeout_ms): closed, counted in /stats per layer.
- Bad connection_filters tables are refused at reload with FILE: KEY.PATH: reason; the running
  configuration stays in force.

Usage: connection_layers_test.py PROXY_BINARY MAKE_TEST_CERTS
"""

import os
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import proxytest as pt  # noqa: E402

BINARY = os.path.abspath(sys.argv[1])
MAKE_CERTS = os.path.abspath(sys.argv[2])
DIR = pt.tmpdir()
CERTS = os.path.join(DIR, "certs")

LINE = """[[servers.%s.connection_filters]]
name = "client_line"
timeout_ms = 500
"""
SNI = """[[servers.%s.connection_filters]]
name = "sni_allow"
names = ["a.test"]
"""


def start_nginx():
    port = pt.free_port()
    block = """server {
    listen 127.0.0.1:%d;
    location / { return 200 "xff=[$http_x_forwarded_for]\\n"; }
  }""" % port
    process = pt.nginx(DIR, [block])
    pt.wait_until(lambda: pt.port_open(port), 10, "nginx")
    return process, port


def server(key, port, upstream, kind="http", extra=""):
    path = 'path = "/{*rest}"\n' if kind == "http" else ""
    return """[servers.%s]
proxy_type = "%s"
listener = { type = "socket", value = "127.0.0.1:%d" }
%s
[[servers.%s.routes]]
%supstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:%d" } }]
""" % (key, kind, port, extra, key, path, upstream)


def config(admin, servers):
    return '[admin]\nlisten = "127.0.0.1:%d"\n[runtime]\nworker_threads = 1\n%s' % (
        admin, "\n".join(servers))


def read_all(sock, limit=5.0):
    sock.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def plain_exchange(port, first_write):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(first_write)
        return read_all(sock)


def tls_exchange(port, line, sni, client_cert=False):
    """The line and the ClientHello in one write, then an HTTP/1.1 request over TLS. The
    response bytes, or None when the connection closed without one."""
    context = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    if client_cert:
        context.load_cert_chain(os.path.join(CERTS, "client.pem"), os.path.join(CERTS, "client.key"))
    context.set_alpn_protocols(["http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        sock.sendall(line + outgoing.read())

        def pump():
            if outgoing.pending:
                sock.sendall(outgoing.read())
            data = sock.recv(65536)
            if not data:
                return False
            incoming.write(data)
            return True
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not pump():
                    return None
        tls.write(b"GET /x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        sock.sendall(outgoing.read())
        response = b""
        while True:
            try:
                chunk = tls.read(65536)
                if not chunk:
                    break
                response += chunk
            except ssl.SSLWantReadError:
                try:
                    if not pump():
                        break
                except ConnectionResetError:
                    break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
        return response or None


def closed_counts(admin):
    status, stats = pt.admin_request("/stats", port=admin)
    assert status == 200
    counts = {}
    for line in stats.splitlines():
        if line.startswith("monolake_connection_filter_closed_total{"):
            labels, value = line.rsplit(" ", 1)
            counts[labels[len("monolake_connection_filter_closed_total"):]] = int(value)
    return counts


def test_connection_layers():
    if not os.path.exists(os.path.join(CERTS, "a.pem")):
        subprocess.run([MAKE_CERTS, CERTS], check=True, timeout=60, capture_output=True)
    ng, nport = start_nginx()
    plain, tcp, tls_openssl, tls_gnutls, admin, mtls_ok, mtls_no = pt.free_ports(7)
    tls_keys = ('tls = { chain = "%s/a.pem", key = "%s/a.key", stack = "%%s", sni = [{ names = '
                '["b.test"], chain = "%s/b.pem", key = "%s/b.key" }] }' % ((CERTS,) * 4))
    servers = [
        server("plain", plain, nport, extra=LINE % "plain"),
        server("tcp", tcp, nport, kind="tcp", extra=LINE % "tcp"),
        server("s1", tls_openssl, nport,
               extra=tls_keys % "openssl" + "\n" + LINE % "s1" + SNI % "s1"),
        server("s2", tls_gnutls, nport,
               extra=tls_keys % "gnutls" + "\n" + LINE % "s2" + SNI % "s2"),
    ]
    mtls = ('tls = { chain = "%s/a.pem", key = "%s/a.key", stack = "%%s", client_ca = '
            '"%s/ca.pem" }' % ((CERTS,) * 3))
    subjects = '[[servers.%s.connection_filters]]\nname = "subject_allow"\nsubjects = ["%s"]\n'
    servers += [
        server("m1", mtls_ok, nport, extra=mtls % "openssl" + "\n" + subjects % ("m1", "CN=client")),
        server("m2", mtls_no, nport, extra=mtls % "gnutls" + "\n" + subjects % ("m2", "CN=other")),
    ]
    ml = pt.Monolake(BINARY, config(admin, servers), DIR, name="connection_layers")
    ml.wait_ready()

    # Plain HTTP/1.1: line and request in one write.
    got = plain_exchange(plain, b"CLIENT 10.1.2.3:4567\nGET /x HTTP/1.1\r\nHost: h\r\n"
                                b"Connection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200") and b"xff=[10.1.2.3]" in got, got
    # HTTP/2 with prior knowledge: the preface is in the read-ahead bytes; the server answers
    # with its SETTINGS frame (type 4) first.
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    with socket.create_connection(("127.0.0.1", plain), timeout=10) as sock:
        sock.sendall(b"CLIENT 10.1.2.4:1\n" + preface)
        sock.settimeout(5)
        head = sock.recv(9)
    assert len(head) == 9 and head[3] == 4, head
    # A tcp server: TcpForward sends the read-ahead request first.
    got = plain_exchange(tcp, b"CLIENT 10.9.9.9:99\nGET /t HTTP/1.0\r\nHost: h\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200") and b"xff=[]" in got, got

    # TLS on both stacks: the ClientHello arrives with the line; SNI decides after TLS.
    for port in (tls_openssl, tls_gnutls):
        got = tls_exchange(port, b"CLIENT 10.7.7.7:7\n", "a.test")
        assert got and got.startswith(b"HTTP/1.1 200") and b"xff=[10.7.7.7]" in got, (port, got)
        got = tls_exchange(port, b"CLIENT 10.7.7.8:7\n", "b.test")
        assert got is None, (port, got)

    # The client certificate's subject, after TLS (OpenSSL allows CN=client, GnuTLS only CN=other).
    got = tls_exchange(mtls_ok, b"", "a.test", client_cert=True)
    assert got and got.startswith(b"HTTP/1.1 200"), got
    assert tls_exchange(mtls_no, b"", "a.test", client_cert=True) is None

    # Refusals: a malformed line, a client that sends nothing (timeout_ms = 500).
    assert plain_exchange(plain, b"HELLO\nGET / HTTP/1.1\r\n\r\n") == b""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", plain), timeout=10) as sock:
        assert read_all(sock, 5.0) == b""
    assert time.monotonic() - start < 3.0

    counts = closed_counts(admin)
    assert counts.get('{server="plain",filter="filter:client_line"}') == 2, counts
    assert counts.get('{server="s1",filter="filter:sni_allow"}') == 1, counts
    assert counts.get('{server="s2",filter="filter:sni_allow"}') == 1, counts
    assert counts.get('{server="tcp",filter="filter:client_line"}') == 0, counts
    assert counts.get('{server="m1",filter="filter:subject_allow"}') == 0, counts
    assert counts.get('{server="m2",filter="filter:subject_allow"}') == 1, counts

    # The access logs print the announced client (the l4 line is written as its task ends, just
    # after the socket closed).
    pt.wait_until(lambda: "client=10.9.9.9:99" in ml.err(), 5, "the l4 access-log line")
    assert "client=10.1.2.3:4567" in ml.err(), ml.err()

    # Bad tables: refused with the key path; what runs stays.
    bad = [
        ('[[servers.plain.connection_filters]]\nname = "sni_allow"\n',
         "servers.plain.connection_filters[0].names: missing"),
        ('[[servers.plain.connection_filters]]\nname = "sni_allow"\nnames = []\n',
         "servers.plain.connection_filters[0]: names: empty"),
        ('[[servers.plain.connection_filters]]\nname = "client_line"\nmax_line = 1\n',
         "servers.plain.connection_filters[0].max_line: must be at least 16, got 1"),
        ('[[servers.plain.connection_filters]]\nname = "proxy"\n',
         "servers.plain.connection_filters[0].name: unknown connection filter 'proxy' "
         "(expected one of: client_line, sni_allow, subject_allow)"),
    ]
    for table, expected in bad:
        text = config(admin, [server("plain", plain, nport, extra=table)] + servers[1:])
        offset = os.path.getsize(ml.err_path)
        assert ml.reload(text) is False, table
        with open(ml.err_path) as f:
            f.seek(offset)
            tail = f.read()
        assert ml.config_path + ": " + expected in tail, (expected, tail)
    got = plain_exchange(plain, b"CLIENT 10.1.2.5:1\nGET /x HTTP/1.1\r\nHost: h\r\n"
                                b"Connection: close\r\n\r\n")
    assert b"xff=[10.1.2.5]" in got, got

    # A reload that drops the layers: plain clients are served as they come.
    assert ml.reload(config(admin, [server("plain", plain, nport)] + servers[1:])) is True
    got = plain_exchange(plain, b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200") and b"xff=[127.0.0.1]" in got, got
    assert ml.stop() == 0
    ng.stop()


if __name__ == "__main__":
    pt.main([("connection layers", test_connection_layers)])
