#!/usr/bin/python3
"""Writes the seed corpus of //http/h2:server_fuzz into fuzz_corpus/ next to this script.

Run with Debian's python (it has python3-hyperframe and python3-hpack):
    /usr/bin/python3 http/h2/testdata/make_corpus.py

Each file is what server_fuzz.cc takes: one flags byte for the harness (0x00: the harness sends
the client preface and an empty SETTINGS frame first; see the top of server_fuzz.cc for the
other bits), then the client's frames. Valid frames are built with hyperframe, header blocks
with hpack (one encoder per connection, so later requests use its dynamic table); broken
frames are written byte by byte. Paths like /trailers or /big choose what the fuzz handler
answers. Every file stays under 4 KiB.

It writes the seed_* files only; found_* (reproducers of bugs the fuzzer found) and fuzzer_*
(small inputs it found that add coverage) come from fuzzing runs and are kept as they are.
"""

import os
import struct
import sys

import hpack
from hyperframe import frame as hf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_corpus")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Flag bits of the harness (server_fuzz.cc).
RAW, SMALL, CLOSE_AT_ONCE, PENDING = 0x01, 0x02, 0x04, 0x08
SPLIT9, SPLIT3, SPLIT1000 = 0x10, 0x20, 0x30
LINGER = 0xC4

# Frame types and flags, for the hand-written frames.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def raw(ftype, flags, stream, payload=b"", length=None):
    """A frame as bytes; `length` may lie about the payload."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def ser(f):
    return f.serialize()


class Conn:
    """One client connection: its HPACK encoder and the frames built so far."""

    def __init__(self):
        self.enc = hpack.Encoder()
        self.out = b""

    def block(self, fields):
        return self.enc.encode(fields)

    def request(self, stream, method="GET", path="/", extra=(), end=True):
        fields = [(":method", method), (":scheme", "http"), (":path", path),
                  (":authority", "fuzz.test")] + list(extra)
        f = hf.HeadersFrame(stream, self.block(fields))
        f.flags.add("END_HEADERS")
        if end:
            f.flags.add("END_STREAM")
        self.out += ser(f)
        return self

    def data(self, stream, payload, end=False, pad=None):
        f = hf.DataFrame(stream, payload)
        if end:
            f.flags.add("END_STREAM")
        if pad is not None:
            f.flags.add("PADDED")
            f.pad_length = pad
        self.out += ser(f)
        return self

    def trailers(self, stream, fields):
        f = hf.HeadersFrame(stream, self.block(fields))
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        self.out += ser(f)
        return self

    def add(self, b):
        self.out += b
        return self


def ping(ack=False, opaque=b"12345678"):
    f = hf.PingFrame(0, opaque)
    if ack:
        f.flags.add("ACK")
    return ser(f)


def settings(entries, ack=False):
    f = hf.SettingsFrame(0, dict(entries))
    if ack:
        f.flags.add("ACK")
    return ser(f)


def window_update(stream, inc):
    return ser(hf.WindowUpdateFrame(stream, inc))


def rst(stream, code=8):
    return ser(hf.RstStreamFrame(stream, code))


def priority(stream, depends_on=0, weight=15, exclusive=False):
    return ser(hf.PriorityFrame(stream, depends_on=depends_on, stream_weight=weight,
                                exclusive=exclusive))


def goaway(last, code=0, debug=b""):
    return ser(hf.GoAwayFrame(0, last_stream_id=last, error_code=code, additional_data=debug))


def corpus():
    c = {}

    # --- requests and the handler's answers
    c["get_simple"] = (0, Conn().request(1).out)
    for path in ["/trailers", "/fail", "/short", "/long", "/empty", "/nobody", "/upgrade",
                 "/sleep"]:
        c["resp" + path.replace("/", "_")] = (0, Conn().request(1, path=path).out)
    c["resp_big_with_window_updates"] = (
        0, Conn().request(1, path="/big").add(window_update(0, 1 << 20) +
                                              window_update(1, 1 << 20)).out)
    c["resp_big_stuck_linger"] = (LINGER, Conn().request(1, path="/big").out)
    c["head_trailers"] = (0, Conn().request(1, "HEAD", "/trailers").out)
    c["post_data"] = (0, Conn().request(1, "POST", "/", [("content-length", "11")], end=False)
                      .data(1, b"hello world", end=True).out)
    c["post_no_length_3_frames"] = (0, Conn().request(1, "POST", "/echo", end=False)
                                    .data(1, b"a" * 100).data(1, b"b" * 50)
                                    .data(1, b"", end=True).out)
    c["post_trailers_echo"] = (0, Conn().request(1, "POST", "/echo", [("te", "trailers")], end=False)
                               .data(1, b"body").trailers(1, [("x-sum", "4"), ("x-b", "c")]).out)
    c["post_noread"] = (0, Conn().request(1, "POST", "/noread", end=False)
                        .data(1, b"x" * 500, end=True).out)
    c["post_length_mismatch"] = (0, Conn().request(1, "POST", "/", [("content-length", "5")],
                                                   end=False).data(1, b"0123456789", end=True).out)
    c["post_length_short"] = (0, Conn().request(1, "POST", "/", [("content-length", "50")],
                                                end=False).data(1, b"0123456789", end=True).out)
    c["post_unfinished_body"] = (0, Conn().request(1, "POST", "/", end=False)
                                 .data(1, b"partial").out)
    c["post_unfinished_linger"] = (LINGER, Conn().request(1, "POST", "/", end=False)
                                   .data(1, b"partial").out)
    c["idle_linger"] = (LINGER, ping())
    c["small_body_too_large_no_length"] = (SMALL, Conn().request(1, "POST", "/echo", end=False)
                                           .data(1, b"y" * 60).data(1, b"z" * 60, end=True).out)
    c["small_body_too_large_length"] = (SMALL, Conn().request(
        1, "POST", "/", [("content-length", "200")], end=False).data(1, b"q" * 200, end=True).out)
    c["small_window_post"] = (SMALL, Conn().request(1, "POST", "/", end=False)
                              .data(1, b"w" * 1024).data(1, b"v" * 10, end=True).out)

    # --- messaging rules (nghttp2's validation, our mapping)
    c["cookie_crumbs"] = (0, Conn().request(1, extra=[("cookie", "a=1"), ("cookie", "b=2"),
                                                      ("cookie", "c=3")]).out)
    c["connection_header"] = (0, Conn().request(1, extra=[("connection", "close")]).out)
    c["te_gzip"] = (0, Conn().request(1, extra=[("te", "gzip")]).out)
    c["connect_method"] = (0, Conn().add(ser(_headers(
        Conn(), 1, [(":method", "CONNECT"), (":authority", "a:443")]))).out)
    c["missing_path"] = (0, Conn().add(ser(_headers(
        Conn(), 1, [(":method", "GET"), (":scheme", "http"), (":authority", "a")]))).out)
    c["uppercase_name"] = (0, Conn().add(ser(_headers(
        Conn(), 1, [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("X-Up", "1")]))).out)

    # --- CONTINUATION
    conn = Conn()
    blk = conn.block([(":method", "GET"), (":scheme", "http"), (":path", "/trailers"),
                      (":authority", "fuzz.test"), ("x-long", "v" * 40)])
    third = len(blk) // 3
    c["continuation"] = (0, raw(HEADERS, END_STREAM, 1, blk[:third]) +
                         raw(CONTINUATION, 0, 1, blk[third:2 * third]) +
                         raw(CONTINUATION, END_HEADERS, 1, blk[2 * third:]))
    c["continuation_flood"] = (0, raw(HEADERS, END_STREAM, 1, blk[:1]) +
                               b"".join(raw(CONTINUATION, 0, 1, blk[i:i + 1])
                                        for i in range(1, len(blk) - 1)) +
                               raw(CONTINUATION, END_HEADERS, 1, blk[-1:]))
    c["continuation_interleaved"] = (0, raw(HEADERS, END_STREAM, 1, blk[:third]) + ping() +
                                     raw(CONTINUATION, END_HEADERS, 1, blk[third:]))
    c["continuation_other_stream"] = (0, raw(HEADERS, END_STREAM, 1, blk[:third]) +
                                      raw(CONTINUATION, END_HEADERS, 3, blk[third:]))
    c["continuation_alone"] = (0, raw(CONTINUATION, END_HEADERS, 1, blk))

    # --- control frames
    c["ping"] = (0, ping())
    c["ping_ack_unsolicited"] = (0, ping(ack=True))
    c["ping_bad_length"] = (0, raw(PING, 0, 0, b"1234567"))
    c["ping_on_stream"] = (0, raw(PING, 0, 1, b"12345678"))
    c["settings_variants"] = (0, settings([(1, 0), (2, 0), (3, 1), (4, 1), (5, 16384), (6, 100),
                                           (0x99, 7)]) + Conn().request(1, path="/big").out +
                              settings([(4, 70000)]) + window_update(0, 100000))
    c["settings_ack_payload"] = (0, raw(SETTINGS, ACK, 0, b"\x00\x01\x00\x00\x00\x00"))
    c["settings_bad_length"] = (0, raw(SETTINGS, 0, 0, b"\x00\x01\x00\x00\x00"))
    c["settings_bad_values"] = (0, raw(SETTINGS, 0, 0, struct.pack(">HI", 2, 2)) +
                                raw(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 31)) +
                                raw(SETTINGS, 0, 0, struct.pack(">HI", 5, 100)))
    c["settings_on_stream"] = (0, raw(SETTINGS, 0, 1, b""))
    c["window_update_zero"] = (0, Conn().request(1, path="/big").out + window_update(1, 0))
    c["window_update_overflow"] = (0, window_update(0, 0x7FFFFFFF) + window_update(0, 0x7FFFFFFF))
    c["window_update_bad_length"] = (0, raw(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))
    c["rst_after_headers"] = (0, Conn().request(1, "POST", "/sleep", end=False).out + rst(1))
    c["rst_idle_stream"] = (0, rst(5))
    c["rst_bad_length"] = (0, Conn().request(1, end=False).out + raw(RST_STREAM, 0, 1, b"\0\0\0"))
    c["priority"] = (0, priority(1, 0, 200) + Conn().request(1).out + priority(3, 1, 1, True))
    c["priority_self"] = (0, priority(1, 1))
    c["priority_bad_length"] = (0, raw(PRIORITY, 0, 1, b"\0\0\0\0"))
    c["goaway_then_request"] = (0, goaway(0, 0, b"bye") + Conn().request(1).out)
    c["goaway_bad_length"] = (0, raw(GOAWAY, 0, 0, b"\0\0\0"))

    # --- invalid frames
    c["data_stream0"] = (0, raw(DATA, END_STREAM, 0, b"x"))
    c["data_idle_stream"] = (0, raw(DATA, END_STREAM, 1, b"x"))
    c["headers_even_stream"] = (0, ser(_headers(Conn(), 2, _get("/"))))
    c["stream_id_backwards"] = (0, Conn().request(5).request(3).out)
    c["oversized_frame"] = (0, raw(DATA, 0, 1, b"", length=16385))
    c["unknown_frame_type"] = (0, raw(0xFA, 0xFF, 1, b"extension") + Conn().request(1).out)
    c["push_promise_from_client"] = (0, raw(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2\x82"))
    c["headers_bad_padding"] = (0, raw(HEADERS, END_HEADERS | PADDED, 1, b"\x30\x82\x84\x86"))
    c["data_after_end_stream"] = (0, Conn().request(1).out + raw(DATA, END_STREAM, 1, b"late"))

    # --- padding
    c["padded_data_and_headers"] = (0, raw(HEADERS, END_HEADERS | PADDED | PRIO, 1,
                                           b"\x05" + struct.pack(">IB", 0, 16) +
                                           Conn().block(_get("/echo", "POST")) + b"\0" * 5) +
                                    Conn().data(1, b"padded", end=True, pad=20).out)

    # --- HPACK
    conn = Conn().request(1, extra=[("x-custom", "value-one")])
    conn.request(3, extra=[("x-custom", "value-one")]).request(5, extra=[("x-custom", "v2")])
    c["hpack_dynamic_table"] = (0, conn.out)
    c["hpack_bad_index"] = (0, raw(HEADERS, END_HEADERS | END_STREAM, 1, b"\x82\x86\x84\xff\x7f"))
    c["hpack_table_size_update_too_big"] = (0, raw(HEADERS, END_HEADERS | END_STREAM, 1,
                                                   b"\x3f\xe1\xff\x03\x82\x86\x84"))
    c["hpack_bad_huffman"] = (0, raw(HEADERS, END_HEADERS | END_STREAM, 1,
                                     b"\x82\x86\x84\x40\x83\xff\xff\xff\x01a"))
    c["hpack_truncated"] = (0, raw(HEADERS, END_HEADERS | END_STREAM, 1, b"\x82\x86\x04\x05/ab"))
    # One 100-byte field put in the dynamic table, then referenced by index 700 times: a header
    # list of ~92 KB from ~800 bytes (over the 64 KiB limit: 431).
    field = b"\x40\x07x-bloat\x64" + b"B" * 100
    c["hpack_bomb"] = (0, raw(HEADERS, END_HEADERS | END_STREAM, 1,
                              b"\x82\x86\x84\x41\x09fuzz.test" + field + b"\xbe" * 700))
    big = Conn()
    c["huge_header_value"] = (SMALL, big.request(1, extra=[("x-huge", "h" * 3000)]).out)
    c["many_headers"] = (0, Conn().request(1, extra=[("x-h%d" % i, "v") for i in range(300)]).out)

    # --- many streams, floods
    conn = Conn()
    for i in range(150):
        conn.request(1 + 2 * i, path="/trailers" if i % 3 == 0 else "/")
    c["many_streams_over_limit"] = (0, conn.out)
    conn = Conn()
    for i in range(10):
        conn.request(1 + 2 * i, "POST", "/echo", end=False).data(1 + 2 * i, b"s" * 10)
    c["small_many_streams"] = (SMALL, conn.out)
    c["flood_ping"] = (0, ping() * 240)
    c["flood_ping_small"] = (SMALL, ping() * 50)
    c["flood_settings"] = (0, settings([]) * 450)
    c["flood_priority"] = (0, b"".join(priority(1 + 2 * (i % 50), 0, i % 256) for i in range(290)))
    c["flood_empty_data"] = (0, Conn().request(1, "POST", "/", end=False).out + raw(DATA, 0, 1) * 400)
    conn = Conn()
    for i in range(120):
        conn.request(1 + 2 * i, "POST", "/sleep", end=False).add(rst(1 + 2 * i))
    c["flood_rapid_reset"] = (0, conn.out)
    c["flood_rapid_reset_small"] = (SMALL, conn.out)
    c["flood_empty_headers"] = (0, Conn().request(1, "POST", "/", end=False).out +
                                raw(HEADERS, END_HEADERS, 1) * 40)

    # --- harness modes
    post = Conn().request(1, "POST", "/echo", end=False).data(1, b"split me " * 20, end=True).out
    c["split9_post"] = (SPLIT9, post)
    c["split3_post"] = (SPLIT3, post)
    c["split1000_post_pending"] = (SPLIT1000 | PENDING, post)
    c["close_at_once_requests"] = (CLOSE_AT_ONCE, Conn().request(1, path="/trailers")
                                   .request(3, path="/big").request(5, path="/sleep").out)
    c["raw_full_preface"] = (RAW | PENDING, PREFACE + settings([]) + Conn().request(1).out)
    c["raw_bad_preface"] = (RAW, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings([]))
    c["raw_http11"] = (RAW, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    c["raw_preface_no_settings"] = (RAW, PREFACE + Conn().request(1).out)
    return c


def _get(path, method="GET"):
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", "a")]


def _headers(conn, stream, fields):
    f = hf.HeadersFrame(stream, conn.block(fields))
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    return f


def main():
    os.makedirs(OUT, exist_ok=True)
    items = corpus()
    for name, (flags, body) in sorted(items.items()):
        data = bytes([flags]) + body
        if len(data) >= 4096:
            sys.exit("%s: %d bytes (the seeds stay under 4 KiB)" % (name, len(data)))
        with open(os.path.join(OUT, "seed_" + name), "wb") as f:
            f.write(data)
    print("wrote %d files to %s" % (len(items), OUT))


if __name__ == "__main__":
    main()
