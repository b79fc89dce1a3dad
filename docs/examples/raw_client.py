#!/usr/bin/env python3
"""A WebSocket client in one page of Python, standard library only.

It does by hand what a browser does for you, and prints every byte:

    python3 docs/examples/raw_client.py ws://127.0.0.1:8080/echo hello

1. the HTTP upgrade request and the server's 101 answer, with the
   Sec-WebSocket-Accept check (RFC 6455 section 4);
2. for each MESSAGE argument, one masked text frame, then the server's
   frames until the echo comes back (section 5); on /inspect the server's
   JSON trace messages arrive too and are printed as they come;
3. the closing handshake: a close frame with code 1000, the server's close
   frame, then the end of the TCP stream (section 7).

It is a teaching tool, not a library: no fragmentation on send, no
extensions, no TLS.
"""
import base64
import hashlib
import os
import socket
import struct
import sys
import urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPS = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def hexs(b):
    return b.hex(" ") if b else "(empty)"


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("the server closed the connection")
        data += chunk
    return data


def handshake(sock, host, path):
    key = base64.b64encode(os.urandom(16)).decode()  # 16 random bytes, base64
    request = ("GET %s HTTP/1.1\r\n"
               "Host: %s\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "\r\n") % (path, host, key)
    print(">>> request")
    print(request.replace("\r\n", "\n"), end="")
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:  # the server sends nothing after the head
        head += recv_exact(sock, 1)  # until we speak, so this cannot overread
    print("<<< response")
    print(head.decode().replace("\r\n", "\n"), end="")
    status = head.split(b" ", 2)[1]
    if status != b"101":
        raise SystemExit("no upgrade: status " + status.decode())
    expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    got = [line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
           if line.lower().startswith(b"sec-websocket-accept:")]
    print("accept check: base64(sha1(key + GUID)) = %s -> %s"
          % (expected, "matches" if got == [expected] else "MISMATCH"))
    if got != [expected]:
        raise SystemExit(1)


def send_frame(sock, opcode, payload, fin=True):
    mask = os.urandom(4)  # a fresh key for every frame (section 5.3)
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", b0, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    print(">>> %s frame%s: header %s | mask %s | payload %s%s"
          % (OPS[opcode], "" if fin else " (FIN 0)", hexs(header), hexs(mask),
             hexs(masked[:16]), " ..." if n > 16 else ""))
    sock.sendall(header + mask + masked)


def recv_frame(sock):
    b0, b1 = recv_exact(sock, 2)
    fin, opcode, masked, n = b0 >> 7, b0 & 0x0F, b1 >> 7, b1 & 0x7F
    raw = bytes([b0, b1])
    if n == 126:
        ext = recv_exact(sock, 2)
        n = struct.unpack("!H", ext)[0]
        raw += ext
    elif n == 127:
        ext = recv_exact(sock, 8)
        n = struct.unpack("!Q", ext)[0]
        raw += ext
    if masked:
        raise SystemExit("a server must not mask its frames")
    payload = recv_exact(sock, n)
    print("<<< %s frame: header %s | payload %s%s"
          % (OPS.get(opcode, "reserved"), hexs(raw), hexs(payload[:16]),
             " ..." if n > 16 else ""))
    return fin, opcode, payload


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: raw_client.py ws://HOST:PORT/PATH [MESSAGE ...]")
    url = urllib.parse.urlsplit(sys.argv[1])
    sock = socket.create_connection((url.hostname, url.port or 80), timeout=10)
    handshake(sock, url.netloc, url.path or "/")
    for text in sys.argv[2:]:
        send_frame(sock, 0x1, text.encode())
        while True:
            fin, opcode, payload = recv_frame(sock)
            if opcode == 0x1 and payload.startswith(b'{"uvws":'):
                print("    trace:", payload.decode())
                continue
            text = payload.decode(errors="replace")
            print("    message:", text if len(text) <= 60 else "%s... (%d bytes)" % (text[:40], len(payload)))
            break
    send_frame(sock, 0x8, struct.pack("!H", 1000) + b"bye")
    while True:
        fin, opcode, payload = recv_frame(sock)
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            print("    close: code %d reason %r" % (code, payload[2:].decode()))
            break
        if payload.startswith(b'{"uvws":'):
            print("    trace:", payload.decode())
    # The server sends FIN after its close frame: recv returns b"" (EOF).
    rest = sock.recv(1)
    print("end of stream" if rest == b"" else "unexpected bytes after close")
    sock.close()


if __name__ == "__main__":
    main()
