"""Streaming routes (on_fragment): pieces arrive unassembled, in order,
with fin on the last; compressed and plain; the size limit still holds."""
import asyncio
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402

from wsimport import need_websockets, websockets  # noqa: E402

need_websockets()  # a missing python3-websockets fails the tests, it does not skip


class StreamServer(UvwsServer):
    def start(self):
        import subprocess, threading
        self.proc = subprocess.Popen([os.environ["UVWS_STREAM_BIN"]] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        if not self._listening.wait(10) or self.port is None:
            self.proc.kill()
            raise RuntimeError("stream server did not start:\n" + self.log_text())
        return self


async def with_ws(port, fn, compression=None):
    async with websockets.connect("ws://127.0.0.1:%d/stream" % port, compression=compression,
                                  max_size=None, open_timeout=5, close_timeout=5) as ws:
        return await asyncio.wait_for(fn(ws), 20)


class StreamTest(unittest.TestCase):
    def test_fragments_are_not_reassembled(self):
        async def go(ws):
            # websockets sends three fragments and then an empty final
            # frame: the three pieces, and fin on an empty fourth
            await ws.send(["ab", "cd", "ef"])
            self.assertEqual(await ws.recv(), "pieces=4 bytes=6 op=1")
            await ws.send(b"x" * 100)                    # one frame
            self.assertEqual(await ws.recv(), "pieces=1 bytes=100 op=2")
            await ws.send("")                            # empty message: one call, fin
            self.assertEqual(await ws.recv(), "pieces=1 bytes=0 op=1")
            await ws.send([b"", b"12", b""])             # empty fragments are not reported
            self.assertEqual(await ws.recv(), "pieces=2 bytes=2 op=2")
        with StreamServer() as srv:
            asyncio.run(with_ws(srv.port, go))

    def test_compressed_pieces_carry_inflated_bytes(self):
        async def go(ws):
            await ws.send("z" * 200000)
            reply = await ws.recv()
            self.assertRegex(reply, r"^pieces=\d+ bytes=200000 op=1$")
            self.assertGreater(int(reply.split()[0].split("=")[1]), 1)  # inflated in chunks
        with StreamServer() as srv:
            asyncio.run(with_ws(srv.port, go, compression="deflate"))

    def test_limit_applies_to_streams(self):
        async def go(ws):
            await ws.send([b"a" * 600, b"b" * 600])
            with self.assertRaises(websockets.ConnectionClosed) as cm:
                await ws.recv()
            self.assertEqual(cm.exception.rcvd.code, 1009)
        with StreamServer("1000") as srv:
            asyncio.run(with_ws(srv.port, go))


class BackpressureTest(unittest.TestCase):
    """max_backpressure: a reader that does not keep up is closed with 1013
    (default policy) or loses messages (drop_on_backpressure); either way the
    server's queue for it stays bounded and other clients are unaffected."""

    @staticmethod
    async def ask_and_stall(ws, count, size):
        """Asks for the flood, then reads nothing for a second. Reading at once
        let a fast client (or a slow sanitized server) drain the queue as fast
        as it filled, so whether the limit was ever reached was up to timing."""
        await ws.send("%d %d" % (count, size))
        ws.transport.pause_reading()
        await asyncio.sleep(1.0)
        ws.transport.resume_reading()

    def flood(self, port, path, count, size):
        async def go():
            async with websockets.connect("ws://127.0.0.1:%d%s" % (port, path), max_size=None,
                                          compression=None, open_timeout=5, close_timeout=5) as ws:
                await self.ask_and_stall(ws, count, size)
                got = 0
                try:
                    while True:
                        m = await asyncio.wait_for(ws.recv(), 10)
                        if isinstance(m, str):
                            return got, m, None
                        self.assertEqual(len(m), size)
                        got += 1
                except websockets.ConnectionClosed as e:
                    return got, None, e.rcvd.code if e.rcvd else None
        return asyncio.run(go())

    def metric(self, port, name):
        import urllib.request
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        raise AssertionError("no %s in /metrics" % name)

    def test_close_with_1013(self):
        # 1024 x 64 KiB = 64 MiB at once against a 1 MiB limit: the sends
        # run inside one callback, so only the kernel's socket buffers (a few
        # MiB on loopback) drain in between.
        with StreamServer(str(1 << 20), str(1 << 20)) as srv:
            got, reply, code = self.flood(srv.port, "/flood", 1024, 65536)
            self.assertIsNone(reply)
            self.assertEqual(code, 1013)
            self.assertLess(got, 1024 - 16)
            self.assertGreater(got, 0)
            self.assertEqual(self.metric(srv.port, "uvws_backpressure_closes_total"), 1)
            # the server is fine and serves others
            self.assertEqual(self.flood(srv.port, "/flood", 2, 10)[1], "sent=2 dropped=0")

    def test_drop_policy(self):
        with StreamServer(str(1 << 20), str(1 << 20)) as srv:
            got, reply, code = self.flood(srv.port, "/flood-drop", 1024, 65536)
            self.assertIsNone(code)
            sent, dropped = [int(x.split("=")[1]) for x in reply.split()]
            self.assertEqual(sent + dropped, 1024)
            self.assertGreater(dropped, 0)
            self.assertEqual(got, sent)  # everything not dropped arrives, in order
            self.assertEqual(self.metric(srv.port, "uvws_backpressure_drops_total"), dropped)

    def test_drain_callback(self):
        """on_drain fires once the full queue has gone out to the reader."""
        async def next_text(ws, seen):
            while True:
                try:
                    m = await asyncio.wait_for(ws.recv(), 30)
                except asyncio.TimeoutError:
                    raise AssertionError("nothing for 30 s; text messages so far: %r" % seen)
                if isinstance(m, str):
                    seen.append(m)
                    return m

        async def go(ws):
            await self.ask_and_stall(ws, 256, 65536)
            seen = []
            report = await next_text(ws, seen)
            m = re.fullmatch(r"sent=(\d+) dropped=(\d+)", report)
            self.assertIsNotNone(m, report)
            self.assertGreater(int(m.group(2)), 0, "the queue never filled: %s" % report)
            self.assertEqual(await next_text(ws, seen), "drained")
            return seen
        with StreamServer(str(1 << 20), str(1 << 20)) as srv:
            async def run_it():
                async with websockets.connect("ws://127.0.0.1:%d/flood-drop" % srv.port, max_size=None,
                                              compression=None, open_timeout=5, close_timeout=5) as ws:
                    return await go(ws)
            self.assertEqual(len(asyncio.run(run_it())), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
