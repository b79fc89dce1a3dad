"""--exec-shared: one program for every client of a route.

A Python bot: "ID<TAB>whoami" answers "@ID<TAB>you are ID" (that connection alone), "kill"
makes it SIGKILL itself, "bad" prints a line that is not UTF-8, anything else is broadcast
as "ID: TEXT"; it prints "started PID" when it starts. Cases: 50 clients on --threads 2 (ids
distinct, targeted lines reach only their connection, broadcasts reach all 50, a bad line is
dropped and logged with every connection left open); the program killed, restarted with
backoff (100 then 200 ms), the clients still connected; and two uvws instances on a real
redis-server: broadcasts cross instances, "@1" reaches connection 1 of its own instance only.
No redis-server: FAILS."""
import asyncio
import os
import re
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
sys.path.insert(0, HERE)
from hardening_util import SLACK  # noqa: E402
from redis_test import RedisServer, free_port, need_redis  # noqa: E402
from uvwsproc import UvwsServer  # noqa: E402
from wsimport import connector, need_websockets, websockets  # noqa: E402

need_websockets()

T = 10 * SLACK
ws_connect = connector(T)

BOT = r"""
import os, signal, sys
print("started %d" % os.getpid())
for line in sys.stdin:
    cid, text = line.rstrip("\n").split("\t", 1)
    if text == "whoami":
        print("@%s\tyou are %s" % (cid, cid))
    elif text == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif text == "bad":
        sys.stdout.buffer.write(b"\xff\xfe\n")
        sys.stdout.flush()
    else:
        print("%s: %s" % (cid, text))
"""


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout * SLACK))


async def recv_until(ws, pred):
    """Messages up to and including the first for which pred() holds."""
    got = []
    while True:
        m = await asyncio.wait_for(ws.recv(), T)
        got.append(m)
        if pred(m):
            return got


async def whoami(ws):
    await ws.send("whoami")
    got = await recv_until(ws, lambda m: m.startswith("you are "))
    return got[-1][len("you are "):]


class ExecSharedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="uvws-exec-shared-")
        cls.bot = os.path.join(cls.tmp, "bot.py")
        with open(cls.bot, "w") as f:
            f.write(BOT)

    def test_50_clients_two_threads_targeted_and_broadcast(self):
        async def go(srv):
            clients = [await ws_connect(srv.url("ws", "/bot")) for _ in range(50)]
            ids = await asyncio.gather(*(whoami(c) for c in clients))
            self.assertEqual(len(set(ids)), 50)
            await clients[0].send("bad")  # dropped: nobody gets it, nobody is closed
            await clients[0].send("hello all")
            marker = "%s: hello all" % ids[0]
            got = await asyncio.gather(*(recv_until(c, lambda m: m == marker) for c in clients))
            for i, msgs in enumerate(got):
                # no one else's "you are", no bad line, nothing but startup lines before the marker
                self.assertEqual([m for m in msgs if not m.startswith("started ")], [marker], (i, msgs))
            for c in clients:
                self.assertEqual(c.close_code, None)
                await c.close()
        with UvwsServer("--threads", "2", "--exec-shared", "/bot=python3 " + self.bot) as srv:
            run(go(srv))
            srv.wait_log(r"exec shared /bot: pid \d+ wrote a line that is not UTF-8; dropped")

    def test_killed_and_restarted_with_backoff(self):
        async def go(srv):
            a, b = await ws_connect(srv.url("ws", "/bot")), await ws_connect(srv.url("ws", "/bot"))
            first = int(srv.wait_log(r"exec shared /bot: started python3 as pid (\d+)").group(1))
            ida = await whoami(a)
            pids = [first]
            for delay in (100, 200):
                await a.send("kill")
                srv.wait_log(r"exec shared /bot: pid %d killed by signal 9; restarting in %d ms"
                             % (pids[-1], delay), T)
                t0 = time.monotonic()
                got = await recv_until(b, lambda m: m.startswith("started ") and int(m[8:]) != pids[-1])
                took = time.monotonic() - t0
                pids.append(int(got[-1][8:]))
                self.assertGreater(took, delay / 1000.0 * 0.8)
                await recv_until(a, lambda m: m == got[-1])
            self.assertEqual(len(set(pids)), 3)
            self.assertEqual(await whoami(a), ida)  # same connection, new program
            await b.send("still here")
            await recv_until(a, lambda m: m.endswith(": still here"))
            await a.close()
            await b.close()
            return pids
        with UvwsServer("--threads", "2", "--exec-shared", "/bot=python3 " + self.bot) as srv:
            pids = run(go(srv))
        for p in pids:
            self.assertFalse(os.path.exists("/proc/%d" % p), "program %d outlived uvws" % p)

    def test_two_instances_through_redis(self):
        need_redis()
        redis = RedisServer(free_port(), self.tmp).start()
        try:
            args = ("--redis", redis.url, "--exec-shared", "/bot=python3 " + self.bot)
            with UvwsServer(*args) as a_srv, UvwsServer(*args) as b_srv:
                async def go():
                    a = await ws_connect(a_srv.url("ws", "/bot"))
                    b = await ws_connect(b_srv.url("ws", "/bot"))
                    # both are connection 1 of their instance
                    self.assertEqual(await whoami(a), "1")
                    self.assertEqual(await whoami(b), "1")
                    await a.send("from A")
                    for c in (a, b):
                        got = await recv_until(c, lambda m: m == "1: from A")
                        self.assertNotIn("you are 1", got)
                    await b.send("from B")
                    for c in (a, b):
                        got = await recv_until(c, lambda m: m == "1: from B")
                        self.assertNotIn("you are 1", got)
                    await a.close()
                    await b.close()
                # the subscriptions through Redis take a moment to be in place
                a_srv.wait_log(r"redis.*(subscribed|connected)", T)
                b_srv.wait_log(r"redis.*(subscribed|connected)", T)
                time.sleep(0.3)
                run(go())
        finally:
            redis.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
