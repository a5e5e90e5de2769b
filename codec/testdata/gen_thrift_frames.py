#!/usr/bin/python3
"""Writes real Thrift frames, made by Apache Thrift's Python library (Debian's python3-thrift),
into codec/testdata/real/ for codec/thrift_test.cc, and a copy into the fuzz seed corpus.

Run from the repository root:  /usr/bin/python3 codec/testdata/gen_thrift_frames.py
(with an argument DIR, writes DIR/real and DIR/fuzz_corpus instead: the up-to-date test).
Each file is one frame; its name says transport_protocol_method_type_seqid.
"""
import os

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.TProtocol import TType
from thrift.Thrift import TMessageType
from thrift.transport import TTransport
from thrift.transport.THeaderTransport import THeaderSubprotocolID, THeaderTransport

import sys

HERE = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
TYPES = {TMessageType.CALL: "call", TMessageType.REPLY: "reply",
         TMessageType.EXCEPTION: "exception", TMessageType.ONEWAY: "oneway"}


def write_args(proto):
    # struct { 1: string text; 2: i32 n } — a payload the codec must skip, not read.
    proto.writeStructBegin("args")
    proto.writeFieldBegin("text", TType.STRING, 1)
    proto.writeString("hello thrift")
    proto.writeFieldEnd()
    proto.writeFieldBegin("n", TType.I32, 2)
    proto.writeI32(42)
    proto.writeFieldEnd()
    proto.writeFieldStop()
    proto.writeStructEnd()


def framed(make_proto, method, mtype, seqid):
    mem = TTransport.TMemoryBuffer()
    trans = TTransport.TFramedTransport(mem)
    proto = make_proto(trans)
    proto.writeMessageBegin(method, mtype, seqid)
    write_args(proto)
    proto.writeMessageEnd()
    trans.flush()
    return mem.getvalue()


def header(sub, make_proto, method, mtype, seqid, headers):
    mem = TTransport.TMemoryBuffer()
    trans = THeaderTransport(mem, [], default_protocol=sub)
    for k, v in headers:
        trans.set_header(k.encode(), v.encode())
    proto = make_proto(trans)
    trans.sequence_id = seqid  # what THeaderProtocol.writeMessageBegin does
    proto.writeMessageBegin(method, mtype, seqid)
    write_args(proto)
    proto.writeMessageEnd()
    trans.flush()
    return mem.getvalue()


def main():
    binary = TBinaryProtocol.TBinaryProtocol
    old_binary = lambda t: TBinaryProtocol.TBinaryProtocol(t, strict_write=False)
    compact = TCompactProtocol.TCompactProtocol
    frames = {
        "framed_binary_echo_call_1": framed(binary, "echo", TMessageType.CALL, 1),
        "framed_binary_getUser_reply_70000": framed(binary, "getUser", TMessageType.REPLY, 70000),
        "framed_oldbinary_ping_oneway_5": framed(old_binary, "ping", TMessageType.ONEWAY, 5),
        "framed_compact_echo_call_300": framed(compact, "echo", TMessageType.CALL, 300),
        "framed_compact_fail_exception_-2": framed(compact, "fail", TMessageType.EXCEPTION, -2),
        "header_binary_echo_call_7": header(
            THeaderSubprotocolID.BINARY, binary, "echo", TMessageType.CALL, 7,
            [("trace-id", "abc123"), ("caller", "svc-a")]),
        "header_compact_echo_reply_127": header(
            THeaderSubprotocolID.COMPACT, compact, "echo", TMessageType.REPLY, 127, []),
        "header_compact_notify_oneway_128": header(
            THeaderSubprotocolID.COMPACT, compact, "notify", TMessageType.ONEWAY, 128,
            [("k", "")]),
    }
    real = os.path.join(HERE, "real")
    corpus = os.path.join(HERE, "fuzz_corpus")
    os.makedirs(real, exist_ok=True)
    os.makedirs(corpus, exist_ok=True)
    for name, data in frames.items():
        for d in (real, corpus):
            with open(os.path.join(d, name + ".bin"), "wb") as f:
                f.write(data)
    # Two pipelined frames in one input, for the corpus.
    with open(os.path.join(corpus, "pipelined_framed_binary.bin"), "wb") as f:
        f.write(frames["framed_binary_echo_call_1"] + frames["framed_binary_getUser_reply_70000"])


if __name__ == "__main__":
    main()
