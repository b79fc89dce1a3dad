#!/usr/bin/python3
"""/chat presence that heals across instances (issue 16): an instance that dies without a word.

A redis-server on a free loopback port (missing: the test FAILS) and three instances with
--chat-presence-ttl 2: A on one loop, B and C with --threads 2. Members on each join one room.

    1. Before the kill, Redis holds every member's presence entry (uvws:pres:<topic>, field
       "<instance id> <nick>", value the leave event published should that instance die).
    2. B is SIGKILLed: within 2 * TTL + 2 s every member left on A and C receives one leave event
       (exactly one) for each of B's members, and a fresh join on A and on C lists nobody of B.
    3. B restarted on the same port comes back with a fresh instance id: a newcomer there is not
       shown B's old members, the dead id is gone from Redis, and A's and C's members are not
       told that B's old members left again.
    4. An instance cut off from Redis (through a proxy the test closes) longer than the TTL is
       taken for dead: its members leave on the other within the bound; when the link is back
       they join again there, once, and a fresh join lists them.
    5. An instance started after members joined on the others lists them in its `joined` reply
       (on either of its threads), and not those who left before it started; a nick held on
       another instance is refused there (nick_taken) though it never heard that member join.
    6. A member who leaves right before its instance is SIGKILLed (well within a heartbeat) is
       announced leaving exactly once on the other instance, and so is the one who stayed;
       nothing of the dead instance is left in Redis.
    7. A member who leaves while its instance is cut off from Redis (shorter than the TTL) is
       told leaving on the other instance once the link is back, and is no longer listed there;
       its neighbour who stayed is not announced again.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/chat_presence_test.py -v
"""
import asyncio
import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
sys.path.insert(0, HERE)
from chat_cluster_test import ClusterCase  # noqa: E402
from redis_test import (Client, RespReader, connected_rx, free_port, is_presence,  # noqa: E402
                        resp_command, wait_lines)
from uvwsproc import UvwsServer  # noqa: E402

SLOW = 10 if os.environ.get("UVWS_SANITIZED") else 1
TTL = 2
ROOM = "pres"
NICKS = {"A": ["a1", "a2"], "B": ["b1", "b2", "b3"], "C": ["c1", "c2"]}


def redis_call(port, *args):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(5)
        s.sendall(resp_command(*args))
        return RespReader(s).read()


def presence_of_everyone(port):
    """Every stored presence entry, as (instance id, topic, nick, leave text)."""
    out = []
    for key in redis_call(port, "KEYS", "uvws:pres:*"):
        items = redis_call(port, "HGETALL", key)
        for i in range(0, len(items), 2):
            inst, nick = items[i].decode().split(" ", 1)
            out.append((inst, key.decode()[len("uvws:pres:"):], nick, items[i + 1].decode()))
    return out


def leave_text(nick):
    return '{"type":"presence","room":"%s","nick":"%s","event":"leave"}' % (ROOM, nick)


class Cutter:
    """A TCP proxy to Redis that can be cut (every connection closed, the port refusing) and
    healed (listening again on the same port). Runs on the test's asyncio loop."""

    def __init__(self, redis_port):
        self.redis_port, self.port = redis_port, free_port()
        self.server, self.pipes = None, []

    async def _pipe(self, r, w):
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def _client(self, cr, cw):
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.redis_port)
        except OSError:
            cw.close()
            return
        self.pipes += [cw, uw]
        await asyncio.gather(self._pipe(cr, uw), self._pipe(ur, cw))

    async def heal(self):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self):
        self.server.close()
        await self.server.wait_closed()
        for w in self.pipes:
            w.transport.abort()
        self.pipes = []


def start_cut_pair(case, loop, a_args, c_args):
    """(cutter, A, C): A on case's Redis directly, C through a Cutter running on `loop` (which C's
    start must not block), both started and connected. The caller stops both (`with A, C:`)."""
    cutter = Cutter(case.redis.port)
    loop.run_until_complete(cutter.heal())
    C = UvwsServer("--redis", "redis://127.0.0.1:%d" % cutter.port, *c_args)
    A = ClusterCase.instance(case, *a_args).start()
    try:
        loop.run_until_complete(loop.run_in_executor(None, C.start))
        loop.run_until_complete(loop.run_in_executor(None, case.connected, A))
        loop.run_until_complete(loop.run_in_executor(None, wait_lines, C, connected_rx(cutter.port), 1, 15))
    except BaseException:
        for s in (A, C):
            if s.proc is not None:
                s.proc.kill()
                s.proc.wait()
        raise
    return cutter, A, C


class PresenceHealsTest(ClusterCase):
    def instance(self, *args):
        return super().instance("--chat-presence-ttl", str(TTL), *args)

    def wait_stored(self, nicks, timeout):
        """Until Redis holds exactly these members' entries, each with its leave event."""
        deadline = time.monotonic() + timeout
        while True:
            entries = presence_of_everyone(self.redis.port)
            got = sorted((e[2], e[3]) for e in entries)
            want = sorted((n, leave_text(n)) for n in nicks)
            if got == want and all(e[1] == "chat:" + ROOM for e in entries):
                return entries
            if time.monotonic() > deadline:
                self.fail("the presence in Redis is %r, not %r" % (got, want))
            time.sleep(0.1)

    async def join(self, srv, nick, where):
        c = await Client.open(srv, nick, where)
        await c.send(type="join", room=ROOM, nick=nick)
        j = await c.until(lambda m: m.get("type") == "joined", what="joined")
        return c, j

    def test_sigkilled_instance_members_leave_everywhere(self):
        bound = 2 * TTL + 2
        with self.instance() as A, self.instance("--threads", "2") as B, \
                self.instance("--threads", "2") as C:
            self.connected(A, B, C)
            servers = {"A": A, "B": B, "C": C}
            B.expect_exit = None  # SIGKILLed below
            b_port = B.port

            async def run():
                members = {}
                everyone = [n for w in "ABC" for n in NICKS[w]]
                for where in "ABC":
                    for nick in NICKS[where]:
                        members[nick], _ = await self.join(servers[where], nick, where)
                # every member has heard every later join: the lists are complete everywhere
                for i, nick in enumerate(everyone):
                    for later in everyone[i + 1:]:
                        await members[nick].until(is_presence(later), what="join of " + later)
                await asyncio.get_running_loop().run_in_executor(
                    None, self.wait_stored, everyone, 5 * SLOW)

                t0 = time.monotonic()
                B.proc.kill()  # no goodbye
                B.proc.wait(10)
                for nick in NICKS["B"]:
                    members[nick].ws.transport.abort()
                survivors = NICKS["A"] + NICKS["C"]
                worst = 0.0
                for nick in survivors:
                    for gone in NICKS["B"]:
                        left = bound - (time.monotonic() - t0)
                        await members[nick].until(is_presence(gone, "leave"), timeout=max(left, 0.01) * SLOW,
                                                  what="leave of " + gone)
                    worst = max(worst, time.monotonic() - t0)
                print("\n  presence: B's 3 members gone from A and C %.2f s after SIGKILL "
                      "(TTL %d s, bound %d s)" % (worst, TTL, bound), file=sys.stderr)

                for where, srv in (("A", A), ("C", C)):
                    c, j = await self.join(srv, "new" + where.lower(), where)
                    listed = set(j["members"])
                    self.assertFalse(listed & set(NICKS["B"]), "%s lists %r" % (where, j["members"]))
                    self.assertTrue(set(survivors) <= listed, "%s lists %r" % (where, j["members"]))
                    await c.close()
                return members, survivors

            loop = asyncio.new_event_loop()
            try:
                members, survivors = loop.run_until_complete(asyncio.wait_for(run(), 60 * SLOW))
                ids = set(x.decode() for x in redis_call(self.redis.port, "SMEMBERS", "uvws:insts"))
                self.assertEqual(len(ids), 2, "the dead instance is still known: %r" % ids)

                B2 = self.instance("--threads", "2", "--port", str(b_port))
                with B2:
                    self.connected(B2)
                    self.assertEqual(B2.port, b_port)

                    async def after_restart():
                        c, j = await self.join(B2, "nb", "B2")
                        self.assertFalse(set(j["members"]) & set(NICKS["B"]),
                                         "B restarted lists %r" % j["members"])
                        # a beat of every instance later, nobody was told B's members left again
                        await asyncio.sleep(TTL)
                        for nick in survivors:
                            await members[nick].drain(0.3)
                            for gone in NICKS["B"]:
                                n = sum(1 for m in members[nick].presence if is_presence(gone, "leave")(m))
                                self.assertEqual(n, 1, "%s heard %s leave %d times" % (nick, gone, n))
                        await c.close()
                        for nick in survivors:
                            await members[nick].close()

                    loop.run_until_complete(asyncio.wait_for(after_restart(), 60 * SLOW))
                    ids2 = set(x.decode() for x in redis_call(self.redis.port, "SMEMBERS", "uvws:insts"))
                    self.assertEqual(len(ids2), 3, "instances known: %r" % ids2)
                    self.assertTrue(ids <= ids2)
            finally:
                loop.close()

    def test_instance_cut_off_longer_than_ttl_joins_again(self):
        bound = 2 * TTL + 2
        loop = asyncio.new_event_loop()
        try:
            cutter, A, C = start_cut_pair(self, loop, ("--chat-presence-ttl", str(TTL)),
                                          ("--chat-presence-ttl", str(TTL), "--threads", "2"))
            with A, C:

                async def run():
                    a1, _ = await self.join(A, "a1", "A")
                    c1, _ = await self.join(C, "c1", "C")
                    await a1.until(is_presence("c1"), what="join of c1")
                    await asyncio.get_running_loop().run_in_executor(None, self.wait_stored, ["a1", "c1"], 5 * SLOW)
                    await cutter.cut()
                    t0 = time.monotonic()
                    await a1.until(is_presence("c1", "leave"), timeout=bound * SLOW, what="leave of c1")
                    gone = time.monotonic() - t0
                    await c1.until(lambda m: m.get("type") == "status" and m.get("redis") == "down",
                                   what="status down")
                    await cutter.heal()
                    await c1.until(lambda m: m.get("type") == "status" and m.get("redis") == "up",
                                   timeout=10 * SLOW, what="status up")
                    await a1.until(lambda m: sum(1 for x in a1.presence if is_presence("c1")(x)) == 2,
                                   timeout=bound * SLOW, what="c1 joining again")
                    print("\n  presence: c1 gone from A %.2f s after its instance was cut off; back after "
                          "the link returned" % gone, file=sys.stderr)
                    n, _ = await self.join(A, "na", "A")
                    self.assertIn("c1", _["members"])
                    await a1.drain(0.3)
                    joins = [m for m in a1.presence if is_presence("c1")(m)]
                    self.assertEqual(len(joins), 2, "a1 heard c1 join %d times" % len(joins))
                    for x in (a1, c1, n):
                        await x.close()

                loop.run_until_complete(asyncio.wait_for(run(), 60 * SLOW))
                loop.run_until_complete(cutter.cut())
                loop.run_until_complete(asyncio.sleep(0.2))  # the pipes see their sockets closed
        finally:
            loop.close()

    def test_instance_started_later_lists_earlier_members(self):
        with self.instance() as A, self.instance("--threads", "2") as B:
            self.connected(A, B)

            async def before():
                a1, _ = await self.join(A, "a1", "A")
                a2, _ = await self.join(A, "a2", "A")
                b1, _ = await self.join(B, "b1", "B")
                gone, _ = await self.join(B, "gone", "B")
                await gone.send(type="leave", room=ROOM)
                await a1.until(is_presence("gone", "leave"), what="leave of gone")
                await gone.close()
                await asyncio.get_running_loop().run_in_executor(
                    None, self.wait_stored, ["a1", "a2", "b1"], 5 * SLOW)
                return [a1, a2, b1]

            loop = asyncio.new_event_loop()
            try:
                early = loop.run_until_complete(asyncio.wait_for(before(), 30 * SLOW))
                with self.instance("--threads", "2") as C:  # knew nothing of the room until now
                    self.connected(C)

                    async def after():
                        # several newcomers, so that both of C's threads answer some
                        newcomers = []
                        for i in range(6):
                            c, j = await self.join(C, "c%d" % i, "C")
                            want = {"a1", "a2", "b1"} | {"c%d" % k for k in range(i + 1)}
                            self.assertEqual(sorted(j["members"]), sorted(want), "c%d's joined" % i)
                            self.assertEqual(len(j["members"]), len(set(j["members"])), j["members"])
                            newcomers.append(c)
                        # and the others hear them: a join on C is stored and published once
                        for e in early:
                            for i in range(6):
                                await e.until(is_presence("c%d" % i), what="join of c%d" % i)
                        # a nick held on another instance is taken here too, though C never
                        # heard it join; nobody hears of the refused join
                        dup = await Client.open(C, "a1", "C")
                        await dup.send(type="join", room=ROOM, nick="a1")
                        e = await dup.until(lambda m: m.get("type") in ("joined", "error"), what="reply")
                        self.assertEqual((e["type"], e.get("code")), ("error", "nick_taken"), e)
                        await dup.send(type="join", room=ROOM, nick="a1x")  # the room is open to it
                        await dup.until(lambda m: m.get("type") == "joined", what="joined a1x")
                        for x in early:
                            await x.until(is_presence("a1x"), what="join of a1x")
                            await x.drain(0.2)
                            # a2 and b1 joined after a1: they listed it and heard no join of it
                            self.assertEqual(sum(1 for m in x.presence if is_presence("a1")(m)), 0,
                                             "%r: %r" % (x, x.presence))
                        newcomers.append(dup)
                        # what a join costs with the list from Redis (printed: README's figure)
                        lat = []
                        for i in range(100):
                            t0 = time.perf_counter()
                            await dup.send(type="join", room="lat%d" % (i % 10), nick="l%d" % i)
                            await dup.until(lambda m: m.get("type") == "joined" and m["nick"] == "l%d" % i,
                                            what="joined l%d" % i)
                            lat.append((time.perf_counter() - t0) * 1000)
                            await dup.send(type="leave", room="lat%d" % (i % 10))
                        lat.sort()
                        print("\n  presence: join to joined with --redis p50 %.2f ms, p99 %.2f ms (100 joins)"
                              % (lat[50], lat[98]), file=sys.stderr)
                        for x in early + newcomers:
                            await x.close()

                    loop.run_until_complete(asyncio.wait_for(after(), 30 * SLOW))
            finally:
                loop.close()

    def test_leave_right_before_sigkill_is_told_once(self):
        bound = 2 * TTL + 2
        with self.instance() as A, self.instance("--threads", "2") as B:
            self.connected(A, B)
            B.expect_exit = None  # SIGKILLed below

            async def run():
                a1, _ = await self.join(A, "a1", "A")
                b1, _ = await self.join(B, "b1", "B")
                b2, _ = await self.join(B, "b2", "B")
                for n in ("b1", "b2"):
                    await a1.until(is_presence(n), what="join of " + n)
                entries = await asyncio.get_running_loop().run_in_executor(
                    None, self.wait_stored, ["a1", "b1", "b2"], 5 * SLOW)
                b_id = [e[0] for e in entries if e[2] == "b1"][0]
                # b1 leaves; the moment A has heard it, B dies: well within one beat
                # (TTL/3), so a snapshot of B's members taken at its last beat still had b1.
                await b1.send(type="leave", room=ROOM)
                await a1.until(is_presence("b1", "leave"), what="leave of b1")
                B.proc.kill()
                B.proc.wait(10)
                for c in (b1, b2):
                    c.ws.transport.abort()
                await a1.until(is_presence("b2", "leave"), timeout=bound * SLOW, what="leave of b2")
                await asyncio.sleep(TTL)  # every beat that could tell it again has run
                await a1.drain(0.3)
                for n in ("b1", "b2"):
                    k = sum(1 for m in a1.presence if is_presence(n, "leave")(m))
                    self.assertEqual(k, 1, "a1 heard %s leave %d times: %r" % (n, k, a1.presence))
                left = presence_of_everyone(self.redis.port)
                self.assertEqual([(e[2]) for e in left], ["a1"], left)
                self.assertEqual(redis_call(self.redis.port, "EXISTS", "uvws:pres-of:" + b_id), 0)
                c, j = await self.join(A, "na", "A")
                self.assertEqual(sorted(j["members"]), ["a1", "na"])
                for x in (a1, c):
                    await x.close()

            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(asyncio.wait_for(run(), 60 * SLOW))
            finally:
                loop.close()

    def test_leave_while_cut_off_is_told_when_back(self):
        loop = asyncio.new_event_loop()
        try:
            # a TTL long enough that the cut below is no burial
            cutter, A, C = start_cut_pair(self, loop, ("--chat-presence-ttl", "30"),
                                          ("--chat-presence-ttl", "30", "--threads", "2"))
            with A, C:

                async def run():
                    a1, _ = await self.join(A, "a1", "A")
                    c1, _ = await self.join(C, "c1", "C")
                    c2, _ = await self.join(C, "c2", "C")
                    for n in ("c1", "c2"):
                        await a1.until(is_presence(n), what="join of " + n)
                    await asyncio.get_running_loop().run_in_executor(
                        None, self.wait_stored, ["a1", "c1", "c2"], 5 * SLOW)
                    await cutter.cut()
                    await c1.until(lambda m: m.get("type") == "status" and m.get("redis") == "down",
                                   what="status down")
                    await c1.send(type="leave", room=ROOM)  # while C cannot tell anyone else
                    await c2.until(is_presence("c1", "leave"), what="leave of c1 on C")
                    await cutter.heal()
                    await c2.until(lambda m: m.get("type") == "status" and m.get("redis") == "up",
                                   timeout=10 * SLOW, what="status up")
                    await a1.until(is_presence("c1", "leave"), timeout=5 * SLOW, what="leave of c1 on A")
                    await asyncio.get_running_loop().run_in_executor(
                        None, self.wait_stored, ["a1", "c2"], 5 * SLOW)
                    n, j = await self.join(A, "na", "A")
                    self.assertEqual(sorted(j["members"]), ["a1", "c2", "na"])
                    await a1.drain(0.3)
                    events = [(m["nick"], m["event"]) for m in a1.presence]
                    # c2 stayed: C stored it again on the link's return, silently
                    self.assertEqual(events, [("c1", "join"), ("c2", "join"), ("c1", "leave"), ("na", "join")],
                                     events)
                    for x in (a1, c1, c2, n):
                        await x.close()

                loop.run_until_complete(asyncio.wait_for(run(), 60 * SLOW))
                loop.run_until_complete(cutter.cut())
                loop.run_until_complete(asyncio.sleep(0.2))
        finally:
            loop.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
