#!/usr/bin/python3
"""Integration: permessage-deflate (RFC 7692) between uvws and Python's `websockets`
(Debian's python3-websockets 10.x, compression on by default, and its
ClientPerMessageDeflateFactory with explicit parameters), plus a raw-socket
client (zlib) for what websockets cannot show: RSV1 on the server's frames,
and the server's answers to malformed and multiple offers.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/deflate_python_test.py -v
"""
import json
import os
import random
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
from uvwsproc import UvwsServer  # noqa: E402
import conformance as C  # noqa: E402  (raw-socket framing and the zlib client)
from wsimport import connector, need_websockets, websockets  # noqa: E402
from aiohelp import runner, stepper  # noqa: E402

if websockets is not None:
    from websockets.extensions.permessage_deflate import (ClientPerMessageDeflateFactory,
                                                          PerMessageDeflate)

STEP = 20.0  # seconds: the bound on every single await (1 MiB messages under ASan)
MiB = 1 << 20

TAKEOVER_OFF = ()
TAKEOVER_ON = ("--deflate-takeover", "on")
BITS10 = ("--deflate-window-bits", "10")
BITS12_TAKEOVER = ("--deflate-window-bits", "12", "--deflate-takeover", "on")
CONFIGS = (TAKEOVER_OFF, TAKEOVER_ON, BITS10, BITS12_TAKEOVER)


step = stepper(STEP)
run = runner(120.0)
connect = connector(STEP)


def chat_text(n, seed):
    rnd = random.Random(seed)
    out, size = [], 0
    while size < n:
        s = '{"user":"u%d","room":"général","text":"%s"}\n' % (
            rnd.randrange(50), " ".join(rnd.choice(["hi", "ok", "déjà", "😀", "uvws", "zlib"])
                                        for _ in range(rnd.randrange(2, 9))))
        out.append(s)
        size += len(s.encode())
    b = "".join(out).encode()[:n]
    while True:
        try:
            return b.decode() + "x" * (n - len(b))
        except UnicodeDecodeError as e:
            b = b[:e.start]


# A mix of text and binary, small and 1 MiB, compressible and random.
def message_mix(seed):
    rnd = random.Random(seed)
    return [chat_text(10, seed), chat_text(300, seed + 1), rnd.randbytes(100),
            chat_text(70000, seed + 2), bytes(range(256)) * 256,
            chat_text(MiB, seed + 3), rnd.randbytes(MiB), bytes(MiB), "", b""]


def expected_params(offer, srv_args):
    return C.pmd_expected(offer, srv_args)


def factory_offer(snct, cnct, smwb, cmwb):
    """The offer string websockets sends for these factory parameters."""
    parts = ["permessage-deflate"]
    if snct:
        parts.append("server_no_context_takeover")
    if cnct:
        parts.append("client_no_context_takeover")
    if smwb:
        parts.append("server_max_window_bits=%d" % smwb)
    if cmwb is True:
        parts.append("client_max_window_bits")
    elif cmwb:
        parts.append("client_max_window_bits=%d" % cmwb)
    return "; ".join(parts)


class DeflatePythonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_websockets()
        cls.servers = {}
        for args in CONFIGS + (("--deflate", "off"),):
            cls.servers[args] = UvwsServer(*args).start()

    @classmethod
    def tearDownClass(cls):
        problems = []
        for args, srv in cls.servers.items():
            alive = srv.alive()
            log = srv.log_text()
            try:
                srv.stop()
            except AssertionError as e:
                problems.append(str(e))
            if not alive:
                problems.append("uvws %s died during the tests:\n%s" % (" ".join(args), log))
        if problems:
            raise AssertionError("\n".join(problems))

    def url(self, args, path="/echo"):
        return self.servers[args].url("ws", path)

    async def echo_all(self, ws, msgs, what):
        for i, m in enumerate(msgs):
            await step(ws.send(m))
            got = await step(ws.recv())
            self.assertIs(type(got), type(m), "%s: message %d: type" % (what, i))
            if got != m:
                self.fail("%s: message %d (%s of %d bytes) differs" % (
                    what, i, type(m).__name__, len(m)))

    def check_negotiated(self, ws, offer, args, what):
        hdrs = ws.response_headers.get_all("Sec-WebSocket-Extensions")
        self.assertEqual(len(hdrs), 1, "%s: response extensions %r" % (what, hdrs))
        got = C.pmd_parse(hdrs[0])
        want = expected_params(offer, args)
        self.assertEqual(got, want, "%s: offer %r -> response %r" % (what, offer, hdrs[0]))
        self.assertEqual(len(ws.extensions), 1, what)
        ext = ws.extensions[0]
        self.assertIsInstance(ext, PerMessageDeflate, what)
        self.assertEqual(ext.remote_no_context_takeover, want["snct"], what)
        self.assertEqual(ext.local_no_context_takeover, want["cnct"], what)
        self.assertEqual(ext.remote_max_window_bits, want["smwb"] or 15, what)
        self.assertEqual(ext.local_max_window_bits, want["cmwb"] or 15, what)

    # ---- websockets with its defaults ---------------------------------------------

    def test_default_client_compression(self):
        """websockets offers 'permessage-deflate; client_max_window_bits' by default."""
        async def go():
            for args in CONFIGS:
                what = "server %s, websockets defaults" % (" ".join(args) or "(defaults)")
                async with connect(self.url(args)) as ws:
                    self.check_negotiated(ws, "permessage-deflate; client_max_window_bits",
                                          args, what)
                    await self.echo_all(ws, message_mix(len(args)), what)
        run(go())

    def test_explicit_factories(self):
        combos = []
        for smwb in (None, 9, 10, 11, 12, 13, 14, 15):
            for k, cmwb in enumerate((True, None, 9, 15)):
                snct = (k + (smwb or 0)) % 2 == 1
                cnct = (k // 2 + (smwb or 0)) % 2 == 0
                combos.append((snct, cnct, smwb, cmwb))
        for snct in (False, True):
            for cnct in (False, True):
                combos.append((snct, cnct, None, 12))

        async def go():
            for args in CONFIGS:
                for n, (snct, cnct, smwb, cmwb) in enumerate(combos):
                    offer = factory_offer(snct, cnct, smwb, cmwb)
                    what = "server %s, offer %r" % (" ".join(args) or "(defaults)", offer)
                    fac = ClientPerMessageDeflateFactory(
                        server_no_context_takeover=snct, client_no_context_takeover=cnct,
                        server_max_window_bits=smwb,
                        client_max_window_bits=cmwb,
                        compress_settings={"memLevel": 5})
                    async with connect(self.url(args), extensions=[fac], compression=None) as ws:
                        self.check_negotiated(ws, offer, args, what)
                        msgs = message_mix(n)
                        if n % 4:  # the 1 MiB ones on a quarter of the combinations only
                            msgs = [m for m in msgs if len(m) < MiB]
                        await self.echo_all(ws, msgs, what)

                        async def frags():
                            for p in ("frag ", chat_text(5000, n), "", "😀 end"):
                                yield p
                        await step(ws.send(frags()))
                        got = await step(ws.recv())
                        self.assertEqual(got, "frag " + chat_text(5000, n) + "😀 end", what)
        run(go(), timeout=240)

    def test_deflate_off_no_extension(self):
        async def go():
            async with connect(self.url(("--deflate", "off"))) as ws:
                self.assertEqual(ws.response_headers.get_all("Sec-WebSocket-Extensions"), [])
                self.assertEqual(ws.extensions, [])
                await self.echo_all(ws, message_mix(5)[:5], "--deflate off")
        run(go())

    def test_inspect_reports_rsv1(self):
        """The /inspect route's trace says rsv1 on the compressed frames it sent."""
        async def go():
            async with connect(self.url(TAKEOVER_OFF, "/inspect")) as ws:
                big, small = chat_text(4000, 1), "tiny"
                for m in (big, small):
                    await step(ws.send(m))
                outs = []
                echoes = []
                while len(echoes) < 2:
                    got = await step(ws.recv())
                    try:
                        j = json.loads(got)
                    except ValueError:
                        j = None
                    if isinstance(j, dict) and j.get("uvws") == "frame":
                        if j["dir"] == "out":
                            outs.append(j)
                    elif isinstance(j, dict) and j.get("uvws") == "handshake":
                        pass
                    else:
                        echoes.append(got)
                self.assertEqual(echoes, [big, small])
                while len(outs) < 2:
                    j = json.loads(await step(ws.recv()))
                    if j.get("uvws") == "frame" and j["dir"] == "out":
                        outs.append(j)
                self.assertTrue(outs[0]["rsv1"], "4000-byte echo sent without RSV1: %r" % outs[0])
                self.assertLess(outs[0]["len"], 4000, outs[0])
                self.assertFalse(outs[1]["rsv1"], "4-byte echo (under --deflate-min-size) "
                                 "sent with RSV1: %r" % outs[1])
                self.assertEqual(outs[1]["len"], 4)
        run(go())

    # ---- raw socket: RSV1 and the offers ------------------------------------------

    def raw(self, args, offer, expect=None):
        srv = self.servers[args]
        ctx = C.Ctx("127.0.0.1", srv.port, None, True)
        self._ctxs.append(ctx)
        if expect is None and offer is not None:
            expect = C.pmd_expected(offer, args)
        return C.pmd_ws(ctx, offer, C.SRV_DEFAULT, expect=expect)

    def setUp(self):
        self._ctxs = []

    def tearDown(self):
        for c in self._ctxs:
            c.cleanup()

    def test_raw_rsv1_on_compressed_frames(self):
        for args in CONFIGS:
            ws = self.raw(args, "permessage-deflate; client_max_window_bits")
            for n in (0, 10, 63, 64, 65, 1000, 100000, MiB):
                m = C.compressible_text(n, 2)
                try:
                    ws.send_compressed(C.OP_TEXT, m)
                    ws.expect_cmessage(C.OP_TEXT, m, want_compressed=n >= 64)
                    ws.send(C.frame(C.OP_BINARY, m))  # uncompressed in, compressed out
                    ws.expect_cmessage(C.OP_BINARY, m, want_compressed=n >= 64)
                except C.CaseFail as e:
                    self.fail("server %s, %d bytes: %s" % (" ".join(args), n, e))
            self.assertGreater(ws.compressed_seen, 0)
            # about 2.2 MiB of compressible echoes came back: far fewer bytes on the wire
            self.assertLess(ws.wire_bytes, MiB, "compressible echoes did not shrink")

    MALFORMED = [
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate;",
        "permessage-deflate; ; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=yes",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=-9",
        "permessage-deflate; server_max_window_bits=9.5",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits=",
        'permessage-deflate; client_max_window_bits="1"',
        "permessage-deflate; server_max_window_bits=8",   # legal, but zlib cannot: declined
        "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
        "x-webkit-deflate-frame",
        "permessage-deflate-x",
        "deflate-frame; no_context_takeover",
    ]

    def test_raw_malformed_offers_declined(self):
        for args in (TAKEOVER_OFF, TAKEOVER_ON):
            for offer in self.MALFORMED:
                try:
                    ws = self.raw(args, offer, expect=False)
                    ws.echo(C.OP_TEXT, "plain after %s" % offer)
                    ws.echo(C.OP_BINARY, bytes(5000))
                    # no extension: RSV1 is a protocol error
                    ws.send(C.frame(C.OP_TEXT, b"\x00", rsv=4))
                    ws.expect_close(1002)
                except C.CaseFail as e:
                    self.fail("server %s, offer %r: %s" % (" ".join(args), offer, e))

    LISTS = [
        # (header lines, the offer that must be accepted)
        (["permessage-deflate; foo, permessage-deflate; client_no_context_takeover"],
         "permessage-deflate; client_no_context_takeover"),
        (["permessage-deflate; server_max_window_bits=8, permessage-deflate; "
          "server_max_window_bits=10"], "permessage-deflate; server_max_window_bits=10"),
        (["permessage-deflate; server_max_window_bits=16, permessage-deflate; "
          "client_max_window_bits=9, permessage-deflate"],
         "permessage-deflate; client_max_window_bits=9"),
        (["x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover"],
         "permessage-deflate; server_no_context_takeover"),
        (["permessage-deflate; client_max_window_bits=12, permessage-deflate"],
         "permessage-deflate; client_max_window_bits=12"),
        (['permessage-deflate; foo="a,b", permessage-deflate; server_max_window_bits=11'],
         "permessage-deflate; server_max_window_bits=11"),
        (["permessage-deflate; foo", "permessage-deflate; server_max_window_bits=12"],
         "permessage-deflate; server_max_window_bits=12"),
        (["foo", "permessage-deflate"], "permessage-deflate"),
        (["PerMessage-Deflate; Client_Max_Window_Bits"],
         "permessage-deflate; client_max_window_bits"),
        (["permessage-deflate ;  server_max_window_bits = 9 ; client_no_context_takeover "],
         "permessage-deflate; server_max_window_bits=9; client_no_context_takeover"),
    ]

    def test_raw_offer_lists(self):
        for args in (TAKEOVER_OFF, TAKEOVER_ON, BITS10):
            for lines, accepted in self.LISTS:
                srv = self.servers[args]
                ctx = C.Ctx("127.0.0.1", srv.port, None, True)
                self._ctxs.append(ctx)
                try:
                    ws = C.pmd_ws(ctx, None, C.SRV_DEFAULT, expect=C.pmd_expected(accepted, args),
                                  extra=["Sec-WebSocket-Extensions: %s" % v for v in lines])
                    for n in (10, 3000, 200000):
                        ws.echo_c(C.OP_TEXT, C.compressible_text(n, n))
                except C.CaseFail as e:
                    self.fail("server %s, offers %r (must accept %r): %s"
                              % (" ".join(args), lines, accepted, e))

    def test_raw_deflate_off(self):
        for offer in ("permessage-deflate", "permessage-deflate; client_max_window_bits",
                      "permessage-deflate; server_no_context_takeover; "
                      "client_no_context_takeover; server_max_window_bits=10"):
            ws = self.raw(("--deflate", "off"), offer, expect=False)
            try:
                ws.echo(C.OP_TEXT, "x" * 1000)
                ws.send(C.frame(C.OP_TEXT, b"\x00", rsv=4))
                ws.expect_close(1002)
            except C.CaseFail as e:
                self.fail("--deflate off, offer %r: %s" % (offer, e))


if __name__ == "__main__":
    unittest.main()
