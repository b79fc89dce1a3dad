#!/usr/bin/python3
"""Integration: the real uvws server driven by Python's `websockets` library (Debian's
python3-websockets 10.x, asyncio client).

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/python_websockets_test.py -v
"""
import asyncio
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402
from wsimport import connector, need_websockets, websockets  # noqa: E402
from aiohelp import runner, stepper  # noqa: E402

STEP = 10.0  # seconds: the bound on every single await


step = stepper(STEP)
connect = connector(STEP)
run = runner(60.0)  # one test coroutine


def utf8_text(n, seed=1):
    """A str whose UTF-8 encoding is exactly n bytes, mixing 1-4 byte sequences."""
    pieces = ["a", "Z", "~", "é", "ж", "€", "中", "😀", "𝄞"]
    out = []
    left = n
    x = seed
    while left > 0:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        p = pieces[x % len(pieces)]
        if len(p.encode()) > left:
            p = "b"
        out.append(p)
        left -= len(p.encode())
    s = "".join(out)
    assert len(s.encode()) == n
    return s


class ServerCase(unittest.TestCase):
    """setUpClass starts cls.srv on the web root cls.web; tearDownClass stops it (raises unless
    exit status 0 within 10 s of SIGTERM) and fails if it died during the tests."""

    @classmethod
    def tearDownClass(cls):
        try:
            alive = cls.srv.alive()
            log = cls.srv.log_text()
            cls.srv.stop()
            if not alive:
                raise AssertionError("uvws died during the tests:\n" + log)
        finally:
            shutil.rmtree(cls.web, ignore_errors=True)


class PythonWebsocketsTest(ServerCase):
    @classmethod
    def setUpClass(cls):
        need_websockets()
        cls.web = tempfile.mkdtemp(prefix="uvws-it-web-")
        with open(os.path.join(cls.web, "index.html"), "w") as f:
            f.write("<!doctype html><title>uvws</title>\n")
        cls.srv = UvwsServer(web=cls.web).start()
        cls.url = cls.srv.url("ws", "/echo")

    def test_text_echo_sizes(self):
        async def go():
            async with connect(self.url) as ws:
                for n in (0, 1, 125, 126, 65535, 65536, 1 << 20):
                    text = utf8_text(n, seed=n + 3)
                    await step(ws.send(text))
                    got = await step(ws.recv())
                    self.assertIsInstance(got, str, "echo of text must be text (n=%d)" % n)
                    self.assertEqual(got.encode(), text.encode(), "n=%d" % n)
        run(go())

    def test_binary_echo_sizes(self):
        async def go():
            async with connect(self.url) as ws:
                for n in (0, 1, 125, 126, 65535, 65536, 1 << 20):
                    data = os.urandom(n)
                    await step(ws.send(data))
                    got = await step(ws.recv())
                    self.assertIsInstance(got, bytes, "echo of binary must be binary (n=%d)" % n)
                    self.assertEqual(got, data, "n=%d" % n)
        run(go())

    def test_fragmented_text_reassembled(self):
        async def go():
            parts = ["frag-one ", "ünï", "cødé ", "", "😀 end"]

            async def fragments():
                for p in parts:
                    yield p

            async with connect(self.url) as ws:
                await step(ws.send(fragments()))
                got = await step(ws.recv())
                self.assertEqual(got, "".join(parts))
        run(go())

    def test_fragmented_binary_reassembled(self):
        async def go():
            parts = [os.urandom(n) for n in (1, 0, 125, 126, 70000, 3)]

            async def fragments():
                for p in parts:
                    yield p

            async with connect(self.url) as ws:
                await step(ws.send(fragments()))
                got = await step(ws.recv())
                self.assertEqual(got, b"".join(parts))
        run(go())

    def test_fragmented_with_sync_iterable(self):
        async def go():
            async with connect(self.url) as ws:
                await step(ws.send([b"ab", b"cd", b"ef"]))
                self.assertEqual(await step(ws.recv()), b"abcdef")
        run(go())

    def test_ping_pong(self):
        async def go():
            async with connect(self.url) as ws:
                for payload in (b"", b"py-ping", os.urandom(125)):
                    waiter = await step(ws.ping(payload))
                    latency = await step(waiter)  # resolves when the pong with this payload arrives
                    self.assertIsInstance(latency, float)
                # Still usable afterwards.
                await step(ws.send("after ping"))
                self.assertEqual(await step(ws.recv()), "after ping")
        run(go())

    def test_close_code_propagation(self):
        async def go():
            for code, reason in ((1000, ""), (1001, "going"), (3000, "app"), (4999, "ünïcode")):
                ws = await step(connect(self.url))
                await step(ws.close(code=code, reason=reason))
                self.assertEqual(ws.close_code, code, "server's close code for %d" % code)
        run(go())

    def test_close_logged_by_client(self):
        async def go():
            ws = await step(connect(self.url))
            await step(ws.close(code=4321, reason="py"))
            self.assertEqual(ws.close_code, 4321)
        run(go())
        self.srv.wait_log(r"ws close \S+ /echo code=4321 by=client")

    def test_subprotocols(self):
        async def go():
            cases = [(["foo", "echo"], "echo"), (["uvws-echo", "echo"], "uvws-echo"),
                     (["echo", "uvws-echo"], "echo"), (["foo", "bar"], None)]
            for offer, expected in cases:
                try:
                    ws = await step(connect(self.url, subprotocols=offer))
                except websockets.exceptions.InvalidHandshake as e:
                    self.fail("offer %r: handshake failed: %r" % (offer, e))
                try:
                    self.assertEqual(ws.subprotocol, expected, "offer %r" % offer)
                    await step(ws.send("p"))
                    self.assertEqual(await step(ws.recv()), "p")
                finally:
                    await step(ws.close())
        run(go())

    def test_deflate_negotiated(self):
        async def go():
            # websockets offers permessage-deflate by default; uvws accepts it.
            async with connect(self.url, compression="deflate") as ws:
                self.assertEqual([e.name for e in ws.extensions], ["permessage-deflate"])
                data = "z" * 10000
                await step(ws.send(data))
                self.assertEqual(await step(ws.recv()), data)
        run(go())

    def test_interleaved_send_recv_many(self):
        async def go():
            async with connect(self.url) as ws:
                sent = []
                for i in range(300):
                    m = os.urandom(i * 7) if i % 2 else utf8_text(i * 5, i)
                    sent.append(m)
                    await step(ws.send(m))
                for i, m in enumerate(sent):
                    self.assertEqual(await step(ws.recv()), m, "message %d" % i)
        run(go())

    def test_concurrent_clients(self):
        async def client(i):
            async with connect(self.url) as ws:
                for r in range(20):
                    m = "c%d-r%d-%s" % (i, r, utf8_text(r * 13, i))
                    await step(ws.send(m))
                    self.assertEqual(await step(ws.recv()), m)

        async def go():
            await asyncio.gather(*(client(i) for i in range(20)))
        run(go())

    def test_default_max_message_16mib(self):
        # The default --max-message is 16 MiB: exactly 16 MiB is echoed, one byte more is 1009.
        async def go():
            async with connect(self.url) as ws:
                data = os.urandom(16 << 20)
                await step(ws.send(data), 30)
                got = await step(ws.recv(), 30)
                self.assertTrue(got == data, "16 MiB echo differs")
            ws = await step(connect(self.url))
            try:
                await step(ws.send(os.urandom((16 << 20) + 1)), 30)
            except websockets.exceptions.ConnectionClosed:
                pass
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                await step(ws.recv())
            self.assertEqual(cm.exception.rcvd.code if cm.exception.rcvd else None, 1009)
        run(go(), 90)

    def test_unknown_path_404(self):
        async def go():
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                await step(connect(self.srv.url("ws", "/nowhere")))
            self.assertEqual(cm.exception.status_code, 404)
        run(go())


class PythonWebsocketsLimitsTest(ServerCase):
    """A server with a small --max-message."""

    @classmethod
    def setUpClass(cls):
        need_websockets()
        cls.web = tempfile.mkdtemp(prefix="uvws-it-web-")
        cls.srv = UvwsServer("--max-message", "4096", web=cls.web).start()
        cls.url = cls.srv.url("ws", "/echo")

    def test_limit_exact_is_echoed(self):
        async def go():
            async with connect(self.url) as ws:
                data = os.urandom(4096)
                await step(ws.send(data))
                self.assertEqual(await step(ws.recv()), data)
        run(go())

    def test_over_limit_closes_1009(self):
        async def go():
            ws = await step(connect(self.url))
            try:
                await step(ws.send(os.urandom(4097)))
            except websockets.exceptions.ConnectionClosed:
                pass  # the server may close before the write finishes
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                await step(ws.recv())
            self.assertEqual(cm.exception.rcvd.code if cm.exception.rcvd else None, 1009)
            await step(ws.wait_closed())
        run(go())

    def test_over_limit_fragmented_closes_1009(self):
        async def go():
            ws = await step(connect(self.url))

            async def fragments():
                for _ in range(5):
                    yield os.urandom(1000)

            try:
                await step(ws.send(fragments()))
            except websockets.exceptions.ConnectionClosed:
                pass
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                await step(ws.recv())
            self.assertEqual(cm.exception.rcvd.code if cm.exception.rcvd else None, 1009)
        run(go())


class PythonWebsocketsShutdownTest(unittest.TestCase):
    def test_sigterm_closes_with_1001(self):
        need_websockets()
        web = tempfile.mkdtemp(prefix="uvws-it-web-")
        srv = UvwsServer(web=web).start()
        try:
            async def go():
                ws = await step(connect(srv.url("ws", "/echo")))
                await step(ws.send("hi"))
                self.assertEqual(await step(ws.recv()), "hi")
                loop = asyncio.get_running_loop()
                stopping = loop.run_in_executor(None, srv.stop)  # SIGTERM; raises unless exit 0
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await step(ws.recv(), 12)
                self.assertEqual(ws.close_code, 1001)
                self.assertEqual(await step(stopping, 12), 0)
            run(go())
        finally:
            if srv.alive():
                srv.proc.kill()
                srv.proc.wait()
            shutil.rmtree(web, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
