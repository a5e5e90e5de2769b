"""Short-connection HTTP/1.1 load for bench/e2e/l4.sh: CONNS connections in flight at a time,
each a new TCP connection that sends one "Connection: close" GET of PATH, reads the response
to end of stream and closes; for SECONDS, after which the connections in flight finish (none is
cut in the middle: wrk resets the ones in flight when it stops). Prints one line:

    RESULT <connections completed> <bytes read> <microseconds> <errors>

    short_client.py PORT PATH CONNS SECONDS
"""
import errno
import selectors
import socket
import sys
import time


def main():
    port, path, conns, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    address = ("127.0.0.1", port)
    sel = selectors.DefaultSelector()
    buf = bytearray(65536)
    done = total = errors = 0
    heads = {}  # socket -> first bytes of the response, to check the status line

    def start():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(address)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, "connect")
        heads[s] = b""
        sel.register(s, selectors.EVENT_WRITE)

    def finish(s, ok):
        nonlocal done, errors
        sel.unregister(s)
        head = heads.pop(s)
        s.close()
        if ok and head.startswith(b"HTTP/1.1 200 "):
            done += 1
        else:
            errors += 1

    t0 = time.monotonic()
    deadline = t0 + seconds
    for _ in range(conns):
        start()
    while heads:
        for key, events in sel.select(timeout=10):
            s = key.fileobj
            if events & selectors.EVENT_WRITE:
                try:
                    s.send(request)  # fails if the connect failed
                except OSError:
                    finish(s, False)
                else:
                    sel.modify(s, selectors.EVENT_READ)
                    continue
            else:
                try:
                    n = s.recv_into(buf)
                except BlockingIOError:
                    continue
                except OSError:
                    n = -1
                if n > 0:
                    total += n
                    if len(heads[s]) < 16:
                        heads[s] += bytes(buf[:min(n, 16)])
                    continue
                finish(s, n == 0)
            if time.monotonic() < deadline:
                start()
    elapsed = time.monotonic() - t0
    print(f"RESULT {done} {total} {int(elapsed * 1e6)} {errors}")


if __name__ == "__main__":
    main()
