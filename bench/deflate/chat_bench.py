#!/usr/bin/python3
"""permessage-deflate benchmark: a JSON chat workload echoed through uvws on loopback.

For each server configuration (compression off; on with the default shared
deflater and no context takeover; on with --deflate-takeover on) it runs
--seconds of traffic: --conns connections, each sending batches of realistic
chat messages (JSON, 100-400 bytes, repeated keys) and reading the echoes. It
prints, per configuration:

  ratio     server wire bytes (frame headers + payloads of the echoes, as read
            from the socket) / payload bytes of those messages
  msg/s     echoed messages per second (client and server share the machine)
  srv us/msg  the server's CPU time (utime+stime from /proc/PID/stat) per echoed
            message: one inflate + one deflate when compression is on

The client is written here with the standard library only: raw sockets and
zlib (raw deflate, Z_SYNC_FLUSH, tail stripped, context kept like a browser);
it masks with the all-zero key (legal, and it keeps client CPU low) and checks
every echo byte for byte.

Usage: chat_bench.py [--bin PATH] [--seconds S] [--conns N] [--batch N]
The binary is --bin, else $UVWS_BIN, else build/release/uvws, else build/default/uvws.
"""
import argparse
import base64
import json
import os
import random
import socket
import struct
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402

TAIL = b"\x00\x00\xff\xff"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def chat_messages(n, seed=1):
    """n chat events as JSON text, 100-400 bytes each, with the usual repeated keys."""
    rnd = random.Random(seed)
    users = [("u%04d" % i, rnd.choice(["alice", "bob", "carol", "dave", "erin", "frank",
                                       "grace", "heidi", "ivan", "judy"]) + str(i))
             for i in range(40)]
    rooms = ["#general", "#random", "#dev", "#ops", "#design"]
    words = ("the a to is it that deploy build test merge review lunch today tomorrow "
             "please thanks ok sure looks good ship it bug fix release server client "
             "latency memory websocket compression").split()
    out = []
    while len(out) < n:
        uid, name = rnd.choice(users)
        ev = {"type": "message", "id": "m%08d" % rnd.randrange(10 ** 8),
              "room": rnd.choice(rooms), "ts": 1700000000000 + rnd.randrange(10 ** 9),
              "user": {"id": uid, "name": name, "avatar": "https://cdn.example.com/a/%s.png" % uid},
              "text": " ".join(rnd.choice(words) for _ in range(rnd.randrange(3, 40)))}
        if rnd.random() < 0.3:
            ev["reactions"] = [{"emoji": rnd.choice([":+1:", ":tada:", ":eyes:"]),
                                "count": rnd.randrange(1, 9)}]
        if rnd.random() < 0.2:
            ev["reply_to"] = "m%08d" % rnd.randrange(10 ** 8)
        s = json.dumps(ev, separators=(",", ":")).encode()
        if 100 <= len(s) <= 400:
            out.append(s)
    return out


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def frame(opcode, payload, rsv1=False):
    b0 = 0x80 | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return hdr + b"\0\0\0\0" + payload  # all-zero mask key: payload unchanged


class Client:
    def __init__(self, port, offer):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               % (port, key))
        if offer:
            req += "Sec-WebSocket-Extensions: %s\r\n" % offer
        self.sock.sendall((req + "\r\n").encode())
        self.buf = bytearray()
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise RuntimeError("connection closed during the handshake")
            self.buf += d
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise RuntimeError("handshake failed: %s" % lines[0])
        ext = [l.split(":", 1)[1].strip() for l in lines[1:]
               if l.lower().startswith("sec-websocket-extensions:")]
        self.pmd = bool(ext)
        self.ext = ext[0] if ext else "-"
        if offer and not ext:
            raise RuntimeError("permessage-deflate was not accepted")
        snct = self.pmd and "server_no_context_takeover" in self.ext
        self.snct = snct
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)
        self.wire = 0
        self.payload = 0
        self.compressed = 0

    def send_batch(self, msgs):
        out = []
        for m in msgs:
            if self.pmd:
                z = self.comp.compress(m) + self.comp.flush(zlib.Z_SYNC_FLUSH)
                out.append(frame(1, z[:-4], True))
            else:
                out.append(frame(1, m))
        self.sock.sendall(b"".join(out))

    def read_batch(self, msgs):
        i = 0
        buf = self.buf
        while i < len(msgs):
            while True:
                if len(buf) >= 2:
                    n = buf[1] & 0x7F
                    off = 2
                    if n == 126 and len(buf) >= 4:
                        n, off = struct.unpack_from("!H", buf, 2)[0], 4
                    elif n == 127 and len(buf) >= 10:
                        n, off = struct.unpack_from("!Q", buf, 2)[0], 10
                    if n < 126 or off > 2:
                        if len(buf) >= off + n:
                            break
                d = self.sock.recv(1 << 20)
                if not d:
                    raise RuntimeError("server closed the connection")
                buf += d
            b0 = buf[0]
            payload = bytes(buf[off:off + n])
            del buf[:off + n]
            if b0 & 0x0F != 1 or not b0 & 0x80:
                raise RuntimeError("unexpected frame 0x%02x" % b0)
            self.wire += off + n
            if b0 & 0x40:
                self.compressed += 1
                if self.snct:
                    self.decomp = zlib.decompressobj(-15)
                payload = self.decomp.decompress(payload + TAIL)
            if payload != msgs[i]:
                raise RuntimeError("echo %d differs" % i)
            self.payload += len(payload)
            i += 1


def run_config(name, args, offer, opts, msgs):
    with UvwsServer(*args) as srv:
        clients = [Client(srv.port, offer) for _ in range(opts.conns)]
        ext = clients[0].ext
        pid = srv.proc.pid
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        count = 0
        k = 0
        while time.monotonic() - t0 < opts.seconds:
            for c in clients:
                batch = [msgs[(k + j) % len(msgs)] for j in range(opts.batch)]
                k += opts.batch
                c.send_batch(batch)
                c.read_batch(batch)
                count += len(batch)
        dt = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        wire = sum(c.wire for c in clients)
        payload = sum(c.payload for c in clients)
        compressed = sum(c.compressed for c in clients)
        for c in clients:
            c.sock.close()
    return {"name": name, "ext": ext, "msgs": count, "secs": dt, "ratio": wire / payload,
            "rate": count / dt, "us_per_msg": cpu / count * 1e6, "compressed": compressed,
            "avg_payload": payload / count, "avg_wire": wire / count}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", help="the uvws binary")
    ap.add_argument("--seconds", type=float, default=3.0, help="per configuration (default 3)")
    ap.add_argument("--conns", type=int, default=4, help="connections (default 4)")
    ap.add_argument("--batch", type=int, default=50,
                    help="messages written per connection before reading their echoes")
    opts = ap.parse_args()
    if opts.bin:
        os.environ["UVWS_BIN"] = opts.bin
    elif not os.environ.get("UVWS_BIN"):
        for cand in ("release", "default"):
            p = os.path.join(ROOT, "build", cand, "uvws")
            if os.path.exists(p):
                os.environ["UVWS_BIN"] = p
                break
    if not os.path.exists(os.environ.get("UVWS_BIN", "")):
        sys.exit("uvws binary not found: build it (see bench/README.md) or pass --bin")

    msgs = chat_messages(5000)
    avg = sum(map(len, msgs)) / len(msgs)
    print("uvws %s; %d distinct chat messages, %.0f bytes on average; %d connections, "
          "batches of %d, %.1f s per configuration"
          % (os.environ["UVWS_BIN"], len(msgs), avg, opts.conns, opts.batch, opts.seconds))
    configs = [
        ("off", ("--deflate", "off"), None),
        ("on, shared deflater", (), "permessage-deflate; client_max_window_bits"),
        ("on, --deflate-takeover on", ("--deflate-takeover", "on"),
         "permessage-deflate; client_max_window_bits"),
    ]
    rows = [run_config(n, a, o, opts, msgs) for n, a, o in configs]
    print()
    print("%-27s %9s %10s %10s %8s %11s %10s" % ("configuration", "messages", "wire B/msg",
                                                   "ratio", "msg/s", "srv us/msg", "RSV1 msgs"))
    for r in rows:
        print("%-27s %9d %10.1f %10.3f %8.0f %11.2f %10d" % (
            r["name"], r["msgs"], r["avg_wire"], r["ratio"], r["rate"], r["us_per_msg"],
            r["compressed"]))
    print()
    for r in rows:
        print("%-27s negotiated: %s" % (r["name"], r["ext"]))


if __name__ == "__main__":
    main()
