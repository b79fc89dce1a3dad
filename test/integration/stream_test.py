"""Streaming routes (on_fragment): pieces arrive unassembled, in order,
with fin on the last; compressed and plain; the size limit still holds."""
import asyncio
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402

import websockets  # noqa: E402


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
