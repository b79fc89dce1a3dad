#!/usr/bin/env python3
"""Frames a browser never lets you send, sent by hand to a local uvws.

    python3 docs/examples/frames_demo.py ws://127.0.0.1:8080/inspect fragments
    python3 docs/examples/frames_demo.py ws://127.0.0.1:8080/echo bad-utf8
    python3 docs/examples/frames_demo.py ws://127.0.0.1:8080/echo unmasked

fragments: one text message in two frames ("Hel", FIN 0; "lo", FIN 1 on a
           continuation frame) with a ping in between; the echo is one frame.
bad-utf8:  the first frame of a text message ends in the middle of "é"
           (fine: the next frame may complete it), the second frame's first
           byte cannot continue it: the server fails the connection with
           1007 at once, before the message is complete.
unmasked:  a client frame without a mask: the server fails with 1002.

Uses the helpers of raw_client.py (same folder); standard library only.
"""
import os
import socket
import struct
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raw_client import handshake, hexs, recv_frame, send_frame  # noqa: E402


def read_until_close(sock):
    """Prints frames until the server's close frame, answers it, waits for EOF."""
    while True:
        fin, opcode, payload = recv_frame(sock)
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            print("    close: code %d reason %r" % (code, payload[2:].decode()))
            return
        print("    %s: %s" % ("trace" if payload.startswith(b'{"uvws":') else "data",
                               payload.decode(errors="replace")))


DEMOS = ("fragments", "bad-utf8", "unmasked")


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in DEMOS or not sys.argv[1].startswith("ws://"):
        sys.stderr.write("usage: %s ws://HOST:PORT/PATH %s\n%s" % (
            os.path.basename(sys.argv[0]), "|".join(DEMOS), __doc__))
        sys.exit(2)
    url = urllib.parse.urlsplit(sys.argv[1])
    demo = sys.argv[2]
    sock = socket.create_connection((url.hostname, url.port or 80), timeout=10)
    handshake(sock, url.netloc, url.path or "/")
    if demo == "fragments":
        send_frame(sock, 0x1, b"Hel", fin=False)   # text, FIN 0: the message begins
        send_frame(sock, 0x9, b"mid")              # a ping between the fragments
        send_frame(sock, 0x0, b"lo", fin=True)     # continuation, FIN 1: it ends
        send_frame(sock, 0x8, struct.pack("!H", 1000))
        read_until_close(sock)
    elif demo == "bad-utf8":
        send_frame(sock, 0x1, b"caf\xc3", fin=False)  # "caf" + first byte of "é"
        send_frame(sock, 0x0, b"\x28!", fin=False)    # 0x28 cannot follow 0xc3
        read_until_close(sock)
    elif demo == "unmasked":
        frame = bytes([0x81, 0x02]) + b"hi"           # MASK bit 0
        print(">>> text frame without a mask: %s" % hexs(frame))
        sock.sendall(frame)
        read_until_close(sock)
    else:  # checked above: one of DEMOS
        raise AssertionError(demo)
    print("end of stream" if sock.recv(1) == b"" else "unexpected bytes after close")


if __name__ == "__main__":
    main()
