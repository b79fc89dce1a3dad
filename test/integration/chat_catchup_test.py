#!/usr/bin/python3
"""/chat with --redis: an instance whose own link to Redis breaks catches up (issue 16).

A redis-server on a free loopback port (missing: the test FAILS), instance A connected to it
directly and instance C (--threads 2) through a proxy the test can cut. a1 on A and c1 on C are
in one room. While C's link is cut (shorter than the presence TTL, so nobody is taken for dead)
a1 keeps sending, and A accepts the lines: they are in the room's log. When the link is back, c1
must receive every one of them, in the room's order, once, before and between the lines sent
after it:

    1. A quiet room: a1 sends during the cut only; c1 gets the lines as soon as the link is
       back, with nothing else sent (C reads the room's stream when its link returns).
    2. A busy room: a1 sends every few milliseconds before, during and after the cut; c1's
       lines are exactly a1's, in the same order, ids strictly increasing (C holds the lines
       that arrive after a gap until the missing ones are read back). --chat-history 1000:
       the stream, which keeps about that many lines, holds every line of the cut.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/chat_catchup_test.py -v
"""
import asyncio
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
sys.path.insert(0, HERE)
from chat_cluster_test import ClusterCase  # noqa: E402
from chat_presence_test import start_cut_pair  # noqa: E402
from redis_test import Client  # noqa: E402

SLOW = 10 if os.environ.get("UVWS_SANITIZED") else 1
ROOM = "gap"


def is_status(state):
    return lambda m: m.get("type") == "status" and m.get("redis") == state


class CatchUpTest(ClusterCase):
    def with_cut_instance(self, scenario, *args):
        """Runs scenario(a1, c1, cutter) with A direct and C behind the cutter (both with args)."""
        loop = asyncio.new_event_loop()
        try:
            cutter, A, C = start_cut_pair(self, loop, args, ("--threads", "2") + args)
            with A, C:

                async def run():
                    a1 = await Client.open(A, "a1", "A")
                    c1 = await Client.open(C, "c1", "C")
                    for c in (a1, c1):
                        await c.send(type="join", room=ROOM, nick=c.nick)
                        await c.until(lambda m: m.get("type") == "joined", what="joined")
                    await scenario(a1, c1, cutter)
                    for c in (a1, c1):
                        await c.close()

                loop.run_until_complete(asyncio.wait_for(run(), 60 * SLOW))
                loop.run_until_complete(cutter.cut())
                loop.run_until_complete(asyncio.sleep(0.2))  # the pipes see their sockets closed
                self.assertRegex(C.log_text(), "redis: connected")
        finally:
            loop.close()

    def assert_same_lines(self, a1, c1, n):
        sent = [(m["id"], m["text"]) for m in a1.messages]
        got = [(m["id"], m["text"]) for m in c1.messages]
        self.assertEqual(len(sent), n, "a1 saw %d of its %d lines" % (len(sent), n))
        ids = [i for i, _ in got]
        self.assertEqual(ids, sorted(set(ids)), "c1's ids are not strictly increasing")
        missing = sorted(set(sent) - set(got))
        self.assertEqual(got, sent, "c1 got %d lines, %d missing (first %r), %d extra"
                         % (len(got), len(missing), missing[:3], len(set(got) - set(sent))))

    def test_quiet_room_gets_the_lines_sent_while_its_link_was_cut(self):
        async def scenario(a1, c1, cutter):
            for i in range(3):
                await a1.say(ROOM, "before %d" % i)
            await c1.until_messages(3, timeout=10 * SLOW)
            await cutter.cut()
            await c1.until(is_status("down"), what="status down")
            for i in range(20):
                await a1.say(ROOM, "during %d" % i)
            await a1.until_messages(23, timeout=10 * SLOW)
            await cutter.heal()
            t0 = time.monotonic()
            await c1.until(is_status("up"), timeout=10 * SLOW, what="status up")
            await c1.until_messages(23, timeout=10 * SLOW)
            print("\n  catch-up: 20 lines sent while C's link was cut reached c1 %.2f s after the "
                  "link was healed" % (time.monotonic() - t0), file=sys.stderr)
            await a1.say(ROOM, "after")
            await a1.until_messages(24, timeout=10 * SLOW)
            await c1.until_messages(24, timeout=10 * SLOW)
            await c1.drain(0.3)
            self.assert_same_lines(a1, c1, 24)

        self.with_cut_instance(scenario)

    def test_busy_room_keeps_one_order_across_the_gap(self):
        async def scenario(a1, c1, cutter):
            stop = asyncio.Event()

            async def sender():
                i = 0
                while not stop.is_set():
                    await a1.say(ROOM, "line %d" % i)
                    i += 1
                    await asyncio.sleep(0.005)
                return i

            task = asyncio.create_task(sender())
            await asyncio.sleep(0.5)
            await cutter.cut()
            await asyncio.sleep(1.0)
            await cutter.heal()
            await asyncio.sleep(1.0)
            stop.set()
            n = await task
            await a1.until_messages(n, timeout=10 * SLOW)
            await c1.until_messages(n, timeout=10 * SLOW)
            await c1.drain(0.3)
            print("\n  catch-up: %d lines sent around a 1 s cut of C's link, c1 got them all in "
                  "order" % n, file=sys.stderr)
            self.assert_same_lines(a1, c1, n)

        # The room's stream keeps about --chat-history lines, and what C can read back is
        # what the stream still has: 1000 is more than a1 sends in the 1 s cut.
        self.with_cut_instance(scenario, "--chat-history", "1000")


if __name__ == "__main__":
    unittest.main(verbosity=2)
