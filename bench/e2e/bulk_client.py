"""Bulk HTTP/1.1 load for bench/e2e/l4.sh: CONNS keep-alive connections each GET PATH again and
again for SECONDS; then every connection finishes the response it is reading and closes, so no
connection is cut in the middle of a body (wrk stops mid-body). Prints one line:

    RESULT <responses> <bytes read> <microseconds> <errors>

    bulk_client.py PORT PATH CONNS SECONDS
"""
import selectors
import socket
import sys
import time


def main():
    port, path, conns, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    responses = total = errors = 0

    class Conn:
        def __init__(self):
            self.sock = socket.create_connection(("127.0.0.1", port))
            self.sock.setblocking(False)
            self.head = b""
            self.body_left = None  # None: reading the head
            self.sock.send(request)
            sel.register(self.sock, selectors.EVENT_READ, self)

    start = time.monotonic()
    deadline = start + seconds
    for _ in range(conns):
        Conn()
    open_conns = conns
    while open_conns:
        for key, _ in sel.select(timeout=10):
            c = key.data
            try:
                n = c.sock.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError:
                n = -1
            if n <= 0:
                errors += 1
                sel.unregister(c.sock)
                c.sock.close()
                open_conns -= 1
                continue
            total += n
            pos = 0
            while pos < n:
                if c.body_left is None:
                    c.head += bytes(view[pos:n])
                    end = c.head.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    lines = c.head[:end].split(b"\r\n")
                    if b" 200 " not in lines[0]:
                        errors += 1
                    length = 0
                    for line in lines[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    consumed = len(c.head) - (end + 4)  # body bytes already read with the head
                    pos = n - consumed
                    c.head = b""
                    c.body_left = length
                take = min(c.body_left, n - pos)
                c.body_left -= take
                pos += take
                if c.body_left == 0:
                    c.body_left = None
                    responses += 1
                    if time.monotonic() >= deadline:
                        sel.unregister(c.sock)
                        c.sock.close()
                        open_conns -= 1
                        break
                    c.sock.send(request)
    elapsed = time.monotonic() - start
    print(f"RESULT {responses} {total} {int(elapsed * 1e6)} {errors}")


if __name__ == "__main__":
    main()
