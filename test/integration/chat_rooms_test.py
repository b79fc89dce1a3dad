"""/chat's rooms under load (issue 16), one instance, no Redis.

1. 30 000 refused joins (too_many_rooms with a fresh room name each time, and
   nick_taken) leave no room behind: the server's RSS (/proc/PID/status) after
   them is within a few MiB of what it was after the first 3 000. A refused
   join that kept its room (the bug) costs ~1 KiB each with --chat-history
   100, ~27 MiB here.
2. A room keeps answering while another room on the same server (--threads 2)
   is flooded by raw-socket senders (chat_flood.py, a process of its own): a member's send -> own echo latency in
   the quiet room is measured before and during the flood, with bounds, and
   the flood is checked to be real (lines per second a flood member got)."""
import asyncio
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402
from chatjson import receiver, send  # noqa: E402
from wsimport import need_websockets, websockets  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hardening_util import rss_kib  # noqa: E402

need_websockets()

T = 10
# Sanitizer builds (UVWS_SANITIZED, set by CMake) run several times slower.
SLOW = 10 if os.environ.get("UVWS_SANITIZED") else 1
recv = receiver(T)
MiB = 1024


async def connect(port):
    return await websockets.connect("ws://127.0.0.1:%d/chat" % port, open_timeout=T, close_timeout=T,
                                    ping_interval=None, max_queue=None)


class RefusedJoinsTest(unittest.TestCase):
    REFUSALS = 30000
    PER_CONN = 9  # the tenth error would close the connection (1008)

    def test_refused_joins_leave_no_room(self):
        async def one_conn(port, base, nick_taken):
            """One connection, PER_CONN refusals; returns how many it got."""
            ws = await connect(port)
            if nick_taken:  # the resident holds nick "res" in rooms k0..k8
                reqs = [dict(type="join", room="k%d" % i, nick="res") for i in range(self.PER_CONN)]
                want = "nick_taken"
            else:  # 16 rooms, then joins of never-seen rooms
                for i in range(16):
                    await send(ws, type="join", room="k%d" % i, nick="c%d" % base)
                reqs = [dict(type="join", room="new%d_%d" % (base, i), nick="x") for i in range(self.PER_CONN)]
                want = "too_many_rooms"
            for r in reqs:
                await send(ws, **r)
            got = 0
            while got < self.PER_CONN:
                m = await recv(ws)
                if m["type"] == "error":
                    self.assertEqual(m["code"], want)
                    got += 1
                else:
                    self.assertIn(m["type"], ("joined", "presence"))
            await ws.close()
            return got

        async def batch(port, start, refusals):
            done, k = 0, start
            while done < refusals:
                group = [one_conn(port, k + j, (k + j) % 3 == 0) for j in range(8)]
                done += sum(await asyncio.gather(*group))
                k += 8
            return k

        async def go(srv):
            port = srv.port
            resident = await connect(port)
            for i in range(16):
                await send(resident, type="join", room="k%d" % i, nick="res")
                self.assertEqual((await recv(resident))["type"], "joined")
            k = await batch(port, 0, 3000)
            await asyncio.sleep(0.3)
            warm = rss_kib(srv.proc.pid)
            t0 = time.monotonic()
            await batch(port, k, self.REFUSALS - 3000)
            took = time.monotonic() - t0
            await asyncio.sleep(0.3)
            after = rss_kib(srv.proc.pid)
            sys.stderr.write("\n  %d refused joins: RSS %.1f MiB after 3 000, %.1f MiB after %d (%.1f s)\n"
                             % (self.REFUSALS, warm / MiB, after / MiB, self.REFUSALS, took))
            self.assertLess(after - warm, 4 * MiB, "refused joins grew the server's memory")
            # The rooms still work.
            await send(resident, type="send", room="k0", text="still")
            while True:
                m = await recv(resident)
                if m["type"] == "message":
                    break
            self.assertEqual(m["text"], "still")
            await resident.close()

        if SLOW > 1:  # ASan keeps freed blocks in quarantine, which is not a leak
            os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=1"
        with UvwsServer("--chat-history", "100") as srv:
            asyncio.run(asyncio.wait_for(go(srv), 240))


class Flood:
    """chat_flood.py's flooders in a process of their own (see there why)."""

    def __init__(self, port, room, count):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "chat_flood.py"), str(port), room,
                                      str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def poll(self):
        """(message lines the flooders received so far, each one's state)."""
        try:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError:
            line = ""
        if not line:
            raise AssertionError("the flood process ended: %s" % self.proc.stderr.read()[-2000:])
        lines, states = line.rstrip("\n").split(" ", 1)
        return int(lines), states

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


class FloodedNeighbourTest(unittest.TestCase):
    ROUNDS = 300
    # The round trips beside the flood last at least this long, so that the
    # flood rate is measured over a window, not over a lucky 50 ms.
    WINDOW = 2.0

    def test_quiet_room_while_another_is_flooded(self):
        async def round_trips(ws, n, least=0.0):
            lat = []
            t_end = time.monotonic() + least
            i = 0
            while i < n or time.monotonic() < t_end:
                i += 1
                t0 = time.perf_counter()
                await send(ws, type="send", room="quiet", text="q%d" % i)
                while True:
                    m = await recv(ws)
                    if m["type"] == "message":
                        break
                self.assertEqual(m["text"], "q%d" % i)
                lat.append(time.perf_counter() - t0)
            return lat

        def stats(lat):
            s = sorted(lat)
            return s[len(s) // 2] * 1000, s[int(len(s) * 0.99)] * 1000, len(s) / sum(s)

        async def go(srv):
            port = srv.port
            q = await connect(port)
            await send(q, type="join", room="quiet", nick="q")
            self.assertEqual((await recv(q))["type"], "joined")
            base = stats(await round_trips(q, self.ROUNDS))
            flood = Flood(port, "flood", 4)
            try:
                deadline = time.monotonic() + 10 * SLOW  # the flood flows before measuring
                while (await asyncio.to_thread(flood.poll))[0] < 1000 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)
                before = (await asyncio.to_thread(flood.poll))[0]
                t0 = time.monotonic()
                flooded = stats(await round_trips(q, self.ROUNDS, self.WINDOW))
                after, states = await asyncio.to_thread(flood.poll)
                rate = (after - before) / (time.monotonic() - t0)
            finally:
                await asyncio.to_thread(flood.close)
            sys.stderr.write("\n  quiet room send->echo: alone p50 %.2f ms p99 %.2f ms (%.0f/s); "
                             "beside a flood of %.0f lines/s delivered: p50 %.2f ms p99 %.2f ms (%.0f/s)\n"
                             % (base[0], base[1], base[2], rate, flooded[0], flooded[1], flooded[2]))
            self.assertGreater(rate, 2000 / SLOW, "the flood was not a flood (%s)\nserver log:\n%s"
                               % (states, "\n".join(srv.log_text().splitlines()[-30:])))
            self.assertLess(flooded[0], 20.0 * SLOW, "the quiet room's median latency under a neighbour's flood")
            # The flood starves the scheduling tail of a shared 2-core machine far more than
            # the median (p99 13-150 ms seen, 380-860 ms with ASan): the tail bound only
            # catches a room that stalls.
            self.assertLess(flooded[1], 500.0 * (6 if SLOW > 1 else 1),
                            "the quiet room's p99 latency under a neighbour's flood")
            self.assertGreater(flooded[2], 50 / SLOW, "the quiet room's round trips per second under the flood")
            await q.close()

        with UvwsServer("--chat-history", "50", "--threads", "2") as srv:
            asyncio.run(asyncio.wait_for(go(srv), 120))


if __name__ == "__main__":
    unittest.main(verbosity=2)
