#!/usr/bin/python3
"""Integration: what the learning page asks of /echo and /inspect, checked with Python's
`websockets` (Debian's python3-websockets 10.x, which offers permessage-deflate) and a
raw socket where a library would hide what crossed the wire:

- "?deflate=off" on the URL of /echo or /inspect declines permessage-deflate for that
  connection (without it, the offer is accepted);

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/inspect_scenarios_test.py -v
"""
import json
import os
import sys
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


class DeflateSwitch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_websockets()
        cls.srv = UvwsServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

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


if __name__ == "__main__":
    unittest.main()
