#!/usr/bin/python3
"""/chat across three uvws instances on one real Redis (issue 16): one order everywhere.

A redis-server on a free loopback port (persistence off; missing: the tests FAIL) and three
instances: A on one loop, B and C with --threads 2.

    1. 60 clients (20 per instance) in one room send 30 lines each, all at once: every client
       receives all 1 800, in one and the same order, with ids strictly increasing; meanwhile
       2 newcomers join on each instance and get each line exactly once, in their history or
       live, never both, never neither, in that same order.
    2. History that survives: an instance SIGKILLed and restarted, and one started after the
       lines were sent, give their newcomers every line (from the room's Redis stream) once.
    3. The cost of the ordered path: a lone member's send -> own echo latency on loopback,
       with Redis (the line goes to Redis and back before it is shown) and on an instance
       without --redis; printed for the README, bounded.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/chat_cluster_test.py -v
"""
import asyncio
import os
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
sys.path.insert(0, HERE)
from uvwsproc import UvwsServer  # noqa: E402
from redis_test import (Client, RedisServer, connected_rx, free_port, need_redis,  # noqa: E402
                        wait_lines)

SLOW = 10 if os.environ.get("UVWS_SANITIZED") else 1


class ClusterCase(unittest.TestCase):
    def setUp(self):
        need_redis()
        self.folder = tempfile.mkdtemp(prefix="uvws-cluster-test-")
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.redis = RedisServer(free_port(), self.folder)
        self.addCleanup(self.redis.stop)
        self.redis.start()

    def instance(self, *args):
        return UvwsServer("--redis", self.redis.url, *args)

    def connected(self, *servers):
        for s in servers:
            wait_lines(s, connected_rx(self.redis.port), 1, timeout=15)


class OneOrderTest(ClusterCase):
    CLIENTS, LINES, NEWCOMERS = 60, 30, 2  # per instance: 20 clients, 2 newcomers

    def test_60_clients_30_lines_three_instances(self):
        room, total = "big", self.CLIENTS * self.LINES
        with self.instance("--chat-history", "5000") as A, \
                self.instance("--chat-history", "5000", "--threads", "2") as B, \
                self.instance("--chat-history", "5000", "--threads", "2") as C:
            servers = (A, B, C)
            self.connected(*servers)

            async def go():
                clients = []
                for i in range(self.CLIENTS):
                    s = servers[i % 3]
                    c = await Client.open(s, "u%d" % i, "ABC"[i % 3])
                    await c.send(type="join", room=room, nick=c.nick)
                    j = await c.until(lambda m: m.get("type") in ("joined", "error"), what="joined")
                    self.assertEqual(j["type"], "joined", j)
                    clients.append(c)
                await asyncio.sleep(0.5)  # presence crosses the instances on its own time

                async def sender(c):
                    for k in range(self.LINES):  # ~1 s in all, so the newcomers land mid-stream
                        await c.say(room, "%s:%d" % (c.nick, k))
                        await asyncio.sleep(0.03)

                async def newcomer(s, nick, delay):
                    await asyncio.sleep(delay)
                    n = await Client.open(s, nick, "new")
                    await n.send(type="join", room=room, nick=nick)
                    j = await n.until(lambda m: m.get("type") in ("joined", "error"), what="joined")
                    self.assertEqual(j["type"], "joined", j)
                    return n, j["history"]

                joins = [newcomer(servers[k % 3], "n%d" % k, 0.1 + 0.12 * k)
                         for k in range(3 * self.NEWCOMERS)]
                results = await asyncio.gather(*[sender(c) for c in clients], *joins,
                                               *[c.until_messages(total, timeout=120 * SLOW) for c in clients])
                newcomers = results[self.CLIENTS:self.CLIENTS + len(joins)]
                for c in clients:
                    await c.drain(0.3)

                order = [(m["nick"], m["text"], m["id"]) for m in clients[0].messages]
                self.assertEqual(len(order), total)
                self.assertEqual(len(set(order)), total, "a line came twice")
                for c in clients:
                    got = [(m["nick"], m["text"], m["id"]) for m in c.messages]
                    self.assertEqual(len(got), total, "%r: %d lines" % (c, len(got)))
                    self.assertEqual(got, order, "%r saw another order" % c)
                ids = [i for _, _, i in order]
                self.assertTrue(all(a < b for a, b in zip(ids, ids[1:])), "ids not strictly increasing")
                per = {}
                for nick, text, _ in order:  # each sender's lines in its sending order
                    per.setdefault(nick, []).append(int(text.split(":")[1]))
                for nick, ks in per.items():
                    self.assertEqual(ks, list(range(self.LINES)), nick)

                histories = []
                for n, hist in newcomers:
                    while len(hist) + len(n.messages) < total:
                        await n.recv(10 * SLOW)
                    await n.drain(0.3)
                    seen = [(h["nick"], h["text"], h["id"]) for h in hist] + \
                           [(m["nick"], m["text"], m["id"]) for m in n.messages]
                    self.assertEqual(seen, order, "%r: history + live is not every line once, in order"
                                     % n)
                    histories.append(len(hist))
                print("\n  newcomers' history lengths (the rest came live): %s" % histories, file=sys.stderr)
                self.assertTrue(any(0 < h < total for h in histories), "no newcomer joined mid-stream")
                for c in clients + [n for n, _ in newcomers]:
                    await c.close()

            asyncio.run(asyncio.wait_for(go(), 240 * SLOW))


class HistoryThatSurvivesTest(ClusterCase):
    def test_restarted_and_new_instances_serve_the_log(self):
        """B (--threads 2) is SIGKILLed while A's members talk, then started again; C starts
        only after every line was sent. Newcomers on both get, in `history`, every line
        (those sent while they were down or not yet started) once, in the room's order,
        then the next line live, once."""
        room = "log"
        with self.instance("--chat-history", "100") as A:
            B = self.instance("--chat-history", "100", "--threads", "2")
            B.expect_exit = None  # SIGKILLed below
            with B:
                self.connected(A, B)

                async def before():
                    a1, b1 = await Client.open(A, "a1", "A"), await Client.open(B, "b1", "B")
                    for c in (a1, b1):
                        await c.send(type="join", room=room, nick=c.nick)
                        await c.until(lambda m: m.get("type") == "joined", what="joined")
                    for k in range(10):
                        await (a1 if k % 2 else b1).say(room, "x%d" % k)
                    await a1.until_messages(10, timeout=10 * SLOW)
                    await b1.until_messages(10, timeout=10 * SLOW)
                    return a1, b1

                async def run_all():
                    a1, b1 = await before()
                    B.proc.kill()  # no goodbye
                    B.proc.wait(10)
                    for k in range(10, 20):
                        await a1.say(room, "x%d" % k)
                    await a1.until_messages(20, timeout=10 * SLOW)
                    b1.ws.transport.abort()  # its server is gone
                    return a1

                loop = asyncio.new_event_loop()
                try:
                    a1 = loop.run_until_complete(asyncio.wait_for(run_all(), 60 * SLOW))
                    order = [(m["text"], m["id"]) for m in a1.messages]
                    self.assertEqual(sorted(int(t[1:]) for t, _ in order), list(range(20)))
                    self.assertEqual([t for t, _ in order[10:]], ["x%d" % k for k in range(10, 20)])
                    B2 = self.instance("--chat-history", "100", "--threads", "2")
                    C = self.instance("--chat-history", "100")
                    with B2, C:
                        self.connected(B2, C)

                        async def newcomers():
                            for s, nick in ((B2, "nb"), (C, "nc")):
                                n = await Client.open(s, nick, "new")
                                await n.send(type="join", room=room, nick=nick)
                                j = await n.until(lambda m: m.get("type") == "joined", what="joined")
                                self.assertEqual([(h["text"], h["id"]) for h in j["history"]], order,
                                                 "%s's history" % nick)
                                await a1.say(room, "after-" + nick)
                                m = await n.until(lambda m: m.get("type") == "message", what="live line")
                                self.assertEqual(m["text"], "after-" + nick)
                                self.assertGreater(m["id"], order[-1][1])
                                order.append((m["text"], m["id"]))
                                await n.drain(0.3)
                                self.assertEqual([x["text"] for x in n.messages], ["after-" + nick],
                                                 "a line came twice")
                                await n.close()
                            await a1.close()

                        loop.run_until_complete(asyncio.wait_for(newcomers(), 60 * SLOW))
                finally:
                    loop.close()


class LatencyTest(ClusterCase):
    ROUNDS = 400

    def test_ordered_path_latency(self):
        async def measure(srv, room):
            c = await Client.open(srv, "lat", "?")
            await c.send(type="join", room=room, nick="lat")
            await c.until(lambda m: m.get("type") == "joined", what="joined")
            lat = []
            for i in range(self.ROUNDS):
                t0 = time.perf_counter()
                await c.say(room, "t%d" % i)
                m = await c.until(lambda m, i=i: m.get("type") == "message" and m["text"] == "t%d" % i,
                                  what="own echo")
                lat.append(time.perf_counter() - t0)
            await c.close()
            s = sorted(lat[20:])  # the first rounds warm up both sides
            return s[len(s) // 2] * 1000, s[int(len(s) * 0.99)] * 1000

        with self.instance() as R, UvwsServer() as L:
            self.connected(R)
            with_redis = asyncio.run(asyncio.wait_for(measure(R, "lat"), 60 * SLOW))
            alone = asyncio.run(asyncio.wait_for(measure(L, "lat"), 60 * SLOW))
        print("\n  send -> own echo on loopback: without --redis p50 %.3f ms p99 %.3f ms; "
              "with --redis (ordered by Redis) p50 %.3f ms p99 %.3f ms"
              % (alone[0], alone[1], with_redis[0], with_redis[1]), file=sys.stderr)
        self.assertLess(with_redis[0], 5.0 * SLOW, "the ordered path's median")
        self.assertLess(with_redis[1], 50.0 * SLOW, "the ordered path's p99")


if __name__ == "__main__":
    unittest.main(verbosity=2)
