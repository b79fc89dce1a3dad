#!/usr/bin/python3
"""Integration: deflate bombs. A small compressed frame that inflates far past
--max-message must be closed with 1009 while inflating, and the server's memory
must stay bounded: its VmHWM (peak resident set, from /proc/PID/status) may grow
by much less than the inflated size, also with many bombs in flight at once.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/deflate_bomb_test.py -v
"""
import os
import sys
import time
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
from uvwsproc import UvwsServer  # noqa: E402
import conformance as C  # noqa: E402  (raw-socket framing and the zlib client)

# Under AddressSanitizer freed memory sits in a quarantine instead of being
# reused, so every buffer the server frees while refusing bombs would count as
# growth: measure with the quarantine off (no effect on other builds).
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                    "quarantine_size_mb=0",
                                                    "thread_local_quarantine_size_kb=0"]))

KiB, MiB = 1024, 1024 * 1024
LIMIT = "1M"
GROWTH_LIMIT = 8 * MiB     # allowed VmHWM growth over the whole test
PARALLEL = 40


def proc_status(pid):
    """{'VmHWM': bytes, 'VmRSS': bytes} of the process."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0]) * 1024
    if set(out) != {"VmHWM", "VmRSS"}:
        raise AssertionError("no VmHWM/VmRSS in /proc/%d/status" % pid)
    return out


def zeros_bomb(inflated, level=9):
    """`inflated` bytes of zeros as one permessage-deflate payload (Z_SYNC_FLUSH,
    tail stripped)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    chunk = bytes(MiB)
    parts = [c.compress(chunk) for _ in range(inflated // MiB)]
    parts.append(c.compress(bytes(inflated % MiB)))
    z = b"".join(parts) + c.flush(zlib.Z_SYNC_FLUSH)
    assert z.endswith(C.PMD_TAIL)
    return z[:-4]


class DeflateBombTest(unittest.TestCase):
    def setUp(self):
        self.srv = UvwsServer("--max-message", LIMIT).start()
        self.ctxs = []

    def tearDown(self):
        for c in self.ctxs:
            c.cleanup()
        alive = self.srv.alive()
        log = self.srv.log_text()
        self.srv.stop()
        if not alive:
            raise AssertionError("uvws died during the test:\n" + log)

    def ws(self, offer="permessage-deflate"):
        ctx = C.Ctx("127.0.0.1", self.srv.port, None, True)
        ctx.deadline = time.monotonic() + 60
        self.ctxs.append(ctx)
        return C.pmd_ws(ctx, offer, C.SRV_DEFAULT, expect=C.pmd_expected(offer, ()))

    def warm_up(self):
        """One normal compressed echo of almost the limit, so that buffers the
        server keeps anyway are counted in the baseline."""
        ws = self.ws()
        m = C.compressible_binary(MiB - 1)
        ws.echo_c(C.OP_BINARY, m)
        ws.send(C.frame(C.OP_CLOSE, C.close_payload(1000)))
        ws.expect_close(1000, reply=False)
        time.sleep(0.2)
        return proc_status(self.srv.proc.pid)

    def check_growth(self, before, what, inflated):
        after = proc_status(self.srv.proc.pid)
        growth = after["VmHWM"] - before["VmHWM"]
        sys.stderr.write("\n  %s: VmHWM %.1f -> %.1f MiB, VmRSS %.1f -> %.1f MiB (inflated total "
                         "%d MiB)\n" % (what, before["VmHWM"] / MiB, after["VmHWM"] / MiB,
                                        before["VmRSS"] / MiB, after["VmRSS"] / MiB,
                                        inflated // MiB))
        self.assertLess(growth, GROWTH_LIMIT,
                        "%s: the server's peak RSS grew by %.1f MiB (limit %d MiB) while "
                        "refusing %d MiB of inflated data" % (what, growth / MiB,
                                                               GROWTH_LIMIT // MiB, inflated // MiB))

    def test_single_bomb_16m(self):
        before = self.warm_up()
        z = zeros_bomb(16 * MiB)
        self.assertLess(len(z), 32 * KiB)
        ws = self.ws()
        ws.send(C.frame(C.OP_BINARY, z, rsv=4))
        ws.expect_close(1009)
        self.check_growth(before, "one 16 MiB bomb (%d compressed bytes)" % len(z), 16 * MiB)
        self.srv.wait_log(r"code=1009")

    def test_bomb_text_and_fragmented(self):
        before = self.warm_up()
        z = zeros_bomb(64 * MiB)
        ws = self.ws("permessage-deflate; client_no_context_takeover")
        ws.send(b"".join(C.cfragments(C.OP_TEXT, C.chunks_of(z, 4 * KiB))))
        ws.expect_close(1009)
        # a bomb after an ordinary message, with context takeover
        ws = self.ws()
        ws.echo_c(C.OP_TEXT, C.compressible_text(5000, 1))
        ws.send(C.frame(C.OP_TEXT, zeros_bomb(32 * MiB), rsv=4))
        ws.expect_close(1009)
        self.check_growth(before, "64 MiB fragmented + 32 MiB bombs", 96 * MiB)

    def test_many_bombs_in_parallel(self):
        before = self.warm_up()
        z = zeros_bomb(16 * MiB)
        conns = [self.ws() for _ in range(PARALLEL)]
        wire = C.frame(C.OP_BINARY, z, rsv=4)
        # every bomb but the last byte first, so all are in flight together
        for ws in conns:
            ws.send(wire[:-1])
        for ws in conns:
            ws.send(wire[-1:])
        for i, ws in enumerate(conns):
            try:
                ws.expect_close(1009)
            except C.CaseFail as e:
                self.fail("connection %d: %s" % (i, e))
        self.check_growth(before, "%d parallel 16 MiB bombs" % PARALLEL, PARALLEL * 16 * MiB)
        # the server still works
        ws = self.ws()
        ws.echo_c(C.OP_TEXT, C.compressible_text(100000, 3))

    def test_limit_exactly(self):
        """Inflating to exactly --max-message is fine; one byte more is 1009."""
        ws = self.ws()
        ws.send(C.frame(C.OP_BINARY, zeros_bomb(MiB), rsv=4))
        ws.expect_cmessage(C.OP_BINARY, bytes(MiB))
        ws = self.ws()
        ws.send(C.frame(C.OP_BINARY, zeros_bomb(MiB + 1), rsv=4))
        ws.expect_close(1009)


if __name__ == "__main__":
    unittest.main()
