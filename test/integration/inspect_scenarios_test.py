#!/usr/bin/python3
"""Integration: what the learning page asks of /echo and /inspect, checked with Python's
`websockets` (Debian's python3-websockets 10.x, which offers permessage-deflate) and a
raw socket where a library would hide what crossed the wire:

- "?deflate=off" on the URL of /echo or /inspect declines permessage-deflate for that
  connection (without it, the offer is accepted);
- the inspector's frame traces name each data frame's message and give a message's size
  before compression on its last frame ("message", "message_len");
- the /inspect commands (README, "The inspector"): ping, close with a code and reason,
  drop, fragments with a ping between them, an invalid frame; their refusals; their bound
  (5 a second); and /echo, which only echoes them.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/inspect_scenarios_test.py -v
"""
import asyncio
import base64
import json
import os
import socket
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402
from wsimport import connector, need_websockets, websockets  # noqa: E402
from aiohelp import runner, stepper  # noqa: E402

STEP = 10.0  # seconds: the bound on every single await

step = stepper(STEP)
run = runner(60.0)
connect = connector(STEP)


def offered_and_answered(ws):
    """The Sec-WebSocket-Extensions the client offered and the server answered."""
    return (ws.request_headers.get_all("Sec-WebSocket-Extensions"),
            ws.response_headers.get_all("Sec-WebSocket-Extensions"))


async def next_trace(ws, kind="frame", want=None):
    """The next {"uvws": kind} message (matching want(j) if given), skipping others."""
    while True:
        got = await step(ws.recv())
        if isinstance(got, str) and got.startswith('{"uvws":'):
            j = json.loads(got)
            if j.get("uvws") == kind and (want is None or want(j)):
                return j


class ServerCase(unittest.TestCase):
    """One uvws (default options) for the tests of a class."""
    @classmethod
    def setUpClass(cls):
        need_websockets()
        cls.srv = UvwsServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()


class DeflateSwitch(ServerCase):

    def test_deflate_off_declines_on_both_routes(self):
        async def go():
            for path in ("/echo", "/inspect"):
                for query, negotiated in (("", True), ("?deflate=off", False),
                                          ("?x=1&deflate=off", False), ("?deflate=offf", True),
                                          ("?nodeflate=off", True), ("?deflate=on", True)):
                    what = path + query
                    async with connect(self.srv.url("ws", what)) as ws:
                        offered, answered = offered_and_answered(ws)
                        self.assertEqual(len(offered), 1, "%s: websockets offered %r" % (what, offered))
                        self.assertIn("permessage-deflate", offered[0], what)
                        if negotiated:
                            self.assertEqual(len(answered), 1, "%s: answered %r" % (what, answered))
                            self.assertTrue(answered[0].startswith("permessage-deflate"), what)
                            self.assertEqual(len(ws.extensions), 1, what)
                        else:
                            self.assertEqual(answered, [], what)
                            self.assertEqual(ws.extensions, [], what)
                        text = "z" * 5000
                        await step(ws.send(text))
                        echo, out = False, None
                        while not echo or (path == "/inspect" and out is None):
                            got = await step(ws.recv())
                            if got == text:
                                echo = True
                            elif path == "/inspect":
                                j = json.loads(got)
                                if j["uvws"] == "frame" and j["dir"] == "out" and j["op"] == "text":
                                    out = j
                        if path == "/inspect":
                            self.assertEqual(out["rsv1"], negotiated, "%s: %r" % (what, out))
                            self.assertEqual(out["len"] < 5000, negotiated, "%s: %r" % (what, out))
        run(go())



def command(what, **kw):
    kw.update({"uvws": "command", "do": what})
    return json.dumps(kw)


class RawClient:
    """A WebSocket client on a plain socket that reports every frame as it came, reserved
    opcodes included (a library would hide pings and fragments, or refuse the frame)."""

    def __init__(self, port, path="/inspect?deflate=off", timeout=STEP):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.port = self.sock.getsockname()[1]  # as the server's log names the peer
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buf += data

    def _need(self, n):
        while len(self.buf) < n:
            self._more()

    def frame(self):
        """(fin, rsv, opcode, payload) of the next frame."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, payload

    def send(self, opcode, payload, fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        key = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload)))

    def frames_until(self, stop):
        """Frames (fin, rsv, opcode, payload), trace messages parsed as JSON, until stop(f)."""
        out = []
        while True:
            fin, rsv, op, payload = self.frame()
            if op == 1 and fin and payload.startswith(b'{"uvws":'):
                f = (fin, rsv, op, json.loads(payload))
            else:
                f = (fin, rsv, op, payload)
            out.append(f)
            if stop(f):
                return out

    def eof(self, timeout=STEP):
        """True once the server closed the TCP connection (data before it is discarded)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self):
        self.sock.close()


def is_trace(f, **want):
    return isinstance(f[3], dict) and all(f[3].get(k) == v for k, v in want.items())


class InspectorMessages(ServerCase):

    def test_message_len_before_compression(self):
        async def go():
            for query, compressed in (("", True), ("?deflate=off", False)):
                async with connect(self.srv.url("ws", "/inspect" + query)) as ws:
                    sizes = (70000, 200)
                    for n in sizes:
                        await step(ws.send("a" * n))
                    frames, echoes = {"in": [], "out": []}, 0
                    while echoes < 2 or len(frames["out"]) < 2 or len(frames["in"]) < 2:
                        got = await step(ws.recv())
                        if got.startswith('{"uvws":"frame"'):
                            j = json.loads(got)
                            frames[j["dir"]].append(j)
                        elif not got.startswith('{"uvws":'):
                            echoes += 1
                    for d in ("in", "out"):
                        for k, (j, n) in enumerate(zip(frames[d], sizes)):
                            what = "%s %s frame of the %d-byte message: %r" % (query, d, n, j)
                            self.assertEqual(j["message"], k + 1, what)
                            self.assertEqual(j["message_len"], n, what)
                            self.assertEqual(j["rsv1"], compressed, what)
                            if compressed:
                                self.assertLess(j["len"], n // 10, what)
                            else:
                                self.assertEqual(j["len"], n, what)
        run(go())

    def test_fragmented_message_frames_share_their_message(self):
        c = RawClient(self.srv.port)
        try:
            c.frames_until(lambda f: is_trace(f, uvws="handshake"))
            c.send(2, b"abc", fin=False)
            c.send(9, b"p")
            c.send(0, b"defg", fin=True)
            fs = c.frames_until(lambda f: f[2] == 2)  # the echo
            traces = [f[3] for f in fs if is_trace(f, uvws="frame")]
            ins = [t for t in traces if t["dir"] == "in"]
            self.assertEqual([(t["op"], t.get("message"), t.get("message_len")) for t in ins],
                             [("binary", 1, None), ("ping", None, None), ("continuation", 1, 7)])
            self.assertEqual(fs[-1][3], b"abcdefg")
        finally:
            c.close()


class Commands(ServerCase):

    def raw(self, path="/inspect?deflate=off"):
        c = RawClient(self.srv.port, path)
        self.addCleanup(c.close)
        if path.startswith("/inspect"):
            c.frames_until(lambda f: is_trace(f, uvws="handshake"))
        return c

    def test_ping(self):
        c = self.raw()
        c.send(1, command("ping"))
        fs = c.frames_until(lambda f: f[2] == 9)
        answer = [f[3] for f in fs if is_trace(f, uvws="command")]
        self.assertEqual(len(answer), 1, fs)
        self.assertEqual((answer[0]["do"], answer[0]["ok"]), ("ping", True))
        self.assertEqual(fs[-1][3], b"uvws ping")
        self.assertTrue(any(is_trace(f, uvws="frame", dir="out", op="ping") for f in fs), fs)
        self.assertFalse(any(f[2] == 1 and f[3] == command("ping").encode() for f in fs),
                         "a command is not echoed")
        c.send(10, b"uvws ping")  # the pong: traced as an "in" frame
        c.frames_until(lambda f: is_trace(f, uvws="frame", dir="in", op="pong"))

    def test_close_with_code_and_reason(self):
        async def go():
            async with connect(self.srv.url("ws", "/inspect")) as ws:
                await step(ws.send(command("close", code=4321, reason="see you, ünïcode")))
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    while True:
                        await step(ws.recv())
                self.assertEqual(ws.close_code, 4321)
                self.assertEqual(ws.close_reason, "see you, ünïcode")
        run(go())
        self.srv.wait_log(r"ws close 127\.0\.0\.1:\d+ /inspect code=4321 by=server")

    def test_close_refusals_keep_the_connection(self):
        async def go():
            async with connect(self.srv.url("ws", "/inspect")) as ws:
                for bad in (dict(code=1005), dict(code=1006), dict(code=1004), dict(code=1015),
                            dict(code=999), dict(code=5000), dict(code="1000"), dict(),
                            dict(code=1000, reason="é" * 62), dict(code=1000, reason=7),
                            dict(code=1000, reason="a\u0000b")):
                    await step(ws.send(command("close", **bad)))
                    j = await next_trace(ws, "command")
                    self.assertEqual((j["do"], j["ok"]), ("close", False), "%r: %r" % (bad, j))
                    self.assertTrue(j["error"], j)
                    await step(ws.send("still open"))
                    while await step(ws.recv()) != "still open":
                        pass
                    await asyncio.sleep(0.21)  # under the 5 a second
                await step(ws.send(command("close", code=1000, reason="é" * 61)))  # 122 bytes
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    while True:
                        await step(ws.recv())
                self.assertEqual((ws.close_code, ws.close_reason), (1000, "é" * 61))
        run(go())

    def test_drop_without_close_frame(self):
        c = self.raw()
        c.send(1, command("drop"))
        fs = c.frames_until(lambda f: is_trace(f, uvws="command"))
        self.assertTrue(fs[-1][3]["ok"], fs[-1])
        t0 = time.monotonic()
        rest = []
        try:
            while True:
                rest.append(c.frame())
        except EOFError:
            pass
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertFalse([f for f in rest if f[2] == 8], "no close frame before the drop: %r" % rest)
        self.srv.wait_log(r"ws close 127\.0\.0\.1:%d /inspect code=1006 by=server" % c.port)

    def test_drop_seen_by_websockets_as_1006(self):
        async def go():
            async with connect(self.srv.url("ws", "/inspect")) as ws:
                await step(ws.send(command("drop")))
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    while True:
                        await step(ws.recv())
                self.assertEqual(ws.close_code, 1006)
        run(go())

    def test_fragments_with_a_ping_between(self):
        c = self.raw()
        c.send(1, command("fragments"))
        # the traces of the frames after the first one follow the message: no message may go
        # between the fragments of another
        fs = c.frames_until(lambda f: is_trace(f, uvws="frame", op="continuation", fin=True))
        wire = [(f[0], f[2], f[3]) for f in fs if not isinstance(f[3], dict)]
        last_wire = max(i for i, f in enumerate(fs) if not isinstance(f[3], dict))
        first_later = min(i for i, f in enumerate(fs) if is_trace(f, uvws="frame", op="ping"))
        self.assertLess(last_wire, first_later, fs)
        self.assertEqual(wire, [(False, 1, b"Fragmented: "), (True, 9, b"between fragments"),
                                (False, 0, b"three frames, "), (True, 0, b"one message")])
        outs = [f[3] for f in fs if is_trace(f, uvws="frame", dir="out")]
        self.assertEqual([(t["op"], t["fin"], t.get("message"), t.get("message_len")) for t in outs],
                         [("text", False, 1, None), ("ping", True, None, None),
                          ("continuation", False, 1, None), ("continuation", True, 1, 37)])

    def test_fragments_reach_websockets_as_one_message(self):
        async def go():
            async with connect(self.srv.url("ws", "/inspect")) as ws:
                await step(ws.send(command("fragments")))
                while True:
                    got = await step(ws.recv())
                    if not got.startswith('{"uvws":'):
                        break
                self.assertEqual(got, "Fragmented: three frames, one message")
                await step(ws.send("after"))
                while await step(ws.recv()) != "after":
                    pass
        run(go())

    def test_invalid_frame(self):
        c = self.raw()
        c.send(1, command("invalid"))
        fs = c.frames_until(lambda f: f[2] == 3)
        self.assertEqual(fs[-1], (True, 0, 3, b"teaching"))
        raw = [f[3] for f in fs if is_trace(f, uvws="frame", raw=True)]
        self.assertEqual(len(raw), 1, fs)
        self.assertEqual((raw[0]["opcode"], raw[0]["op"], raw[0]["header"]), (3, "reserved", "8308"))
        c.send(8, struct.pack("!H", 1002) + b"reserved opcode")  # what a client answers
        fs = c.frames_until(lambda f: f[2] == 8)
        self.assertEqual(fs[-1][3], struct.pack("!H", 1002) + b"reserved opcode")
        self.assertTrue(c.eof())
        c.close()  # the server's end of the closing handshake waits for ours
        self.srv.wait_log(r"ws close 127\.0\.0\.1:%d /inspect code=1002 by=client" % c.port)

    def test_invalid_frame_fails_websockets_with_1002(self):
        """websockets fails the connection: it sends close 1002 (and reports 1006 itself,
        having closed without waiting for the server's answer)."""
        port = []

        async def go():
            async with connect(self.srv.url("ws", "/inspect")) as ws:
                port.append(ws.local_address[1])
                await step(ws.send(command("invalid")))
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    while True:
                        await step(ws.recv())
        run(go())
        self.srv.wait_log(r"ws close 127\.0\.0\.1:%d /inspect code=1002 by=client" % port[0])

    def test_unknown_and_rate_limited(self):
        c = self.raw()
        c.send(1, command("explode"))
        fs = c.frames_until(lambda f: is_trace(f, uvws="command"))
        self.assertEqual((fs[-1][3]["ok"], fs[-1][3]["do"]), (False, "explode"))
        time.sleep(1.05)
        for _ in range(8):
            c.send(1, command("ping"))
        answers, pings = [], 0
        while len(answers) < 8:
            f = c.frame()
            if f[2] == 9:
                pings += 1
            elif f[2] == 1 and f[3].startswith(b'{"uvws":"command"'):
                answers.append(json.loads(f[3]))
        self.assertEqual([a["ok"] for a in answers], [True] * 5 + [False] * 3)
        self.assertIn("5 commands a second", answers[-1]["error"])
        while pings < 5:
            if c.frame()[2] == 9:
                pings += 1
        time.sleep(1.05)
        c.send(1, command("ping"))
        fs = c.frames_until(lambda f: f[2] == 9)
        self.assertTrue([f for f in fs if is_trace(f, uvws="command")][0][3]["ok"])

    def test_not_a_command_is_echoed(self):
        c = self.raw()
        for text in ('{"uvws":"frame","do":"ping"}', '{"uvws":"command"', '["uvws","command"]',
                     '{"uvws":"command","do":"ping"}' + " " * 600):
            c.send(1, text)
            fs = []
            while not fs or fs[-1][2:] != (1, text.encode()):
                fs.append(c.frame())
            self.assertFalse([f for f in fs[:-1] if f[2] == 9 or f[3].startswith(b'{"uvws":"command","do"')], fs)

    def test_echo_route_only_echoes_commands(self):
        c = self.raw("/echo")
        for what in ("ping", "drop", "invalid", "fragments"):
            c.send(1, command(what))
            self.assertEqual(c.frame(), (True, 0, 1, command(what).encode()))
        c.send(8, struct.pack("!H", 1000))
        self.assertEqual(c.frame()[2], 8)


if __name__ == "__main__":
    unittest.main()
