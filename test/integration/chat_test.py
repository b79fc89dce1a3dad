"""The /chat route: the JSON protocol in the README, on publish/subscribe.

Protocol cases with Python websockets, then the fan-out case the issue asks
for: 200 clients across 4 event loops (--threads 4) in one room each send
50 messages; every client receives all 10 000, in per-sender order, none
twice; and the exactly-once rule for newcomers (history or live, not both)
while other threads keep publishing."""
import asyncio
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402
from chatjson import receiver, send  # noqa: E402

from wsimport import need_websockets, websockets  # noqa: E402

need_websockets()  # a missing python3-websockets fails the tests, it does not skip

T = 10


async def connect(port):
    return await websockets.connect("ws://127.0.0.1:%d/chat" % port, open_timeout=T, close_timeout=T,
                                    ping_interval=None, max_queue=None)


recv = receiver(T)


class ChatProtocolTest(unittest.TestCase):
    def run_with(self, fn, *args):
        with UvwsServer("--chat-history", "3", *args) as srv:
            asyncio.run(asyncio.wait_for(fn(srv.port), 60))

    def test_join_send_presence_history_leave(self):
        async def go(port):
            a, b = await connect(port), await connect(port)
            await send(a, type="join", room="lobby", nick="ada")
            j = await recv(a)
            self.assertEqual((j["type"], j["room"], j["nick"], j["members"], j["history"]),
                             ("joined", "lobby", "ada", ["ada"], []))
            for i in range(5):
                await send(a, type="send", room="lobby", text="m%d" % i)
                m = await recv(a)
                self.assertEqual((m["type"], m["nick"], m["text"], m["id"]), ("message", "ada", "m%d" % i, i + 1))
                self.assertLess(abs(m["ts"] - time.time() * 1000), 60000)
            await send(b, type="join", room="lobby", nick="bob")
            j = await recv(b)
            self.assertEqual(sorted(j["members"]), ["ada", "bob"])
            self.assertEqual([h["text"] for h in j["history"]], ["m2", "m3", "m4"])  # --chat-history 3
            self.assertEqual(await recv(a), {"type": "presence", "room": "lobby", "nick": "bob", "event": "join"})
            await send(b, type="send", room="lobby", text="héllo 𝄞")
            for ws in (a, b):
                m = await recv(ws)
                self.assertEqual((m["nick"], m["text"], m["id"]), ("bob", "héllo 𝄞", 6))
            await send(b, type="leave", room="lobby")
            self.assertEqual(await recv(a), {"type": "presence", "room": "lobby", "nick": "bob", "event": "leave"})
            await send(b, type="send", room="lobby", text="not a member")
            self.assertEqual((await recv(b))["code"], "not_joined")
            await b.close()
            await a.close()
        self.run_with(go)

    def test_disconnect_announces_leave_and_rooms_are_separate(self):
        async def go(port):
            a, b, c = await connect(port), await connect(port), await connect(port)
            await send(a, type="join", room="r1", nick="ada")
            await recv(a)
            await send(b, type="join", room="r1", nick="bob")
            await recv(b)
            await recv(a)  # presence bob
            await send(c, type="join", room="r2", nick="cy")
            await recv(c)
            await send(c, type="send", room="r2", text="only r2")
            await recv(c)
            await b.close()
            self.assertEqual(await recv(a), {"type": "presence", "room": "r1", "nick": "bob", "event": "leave"})
            await send(a, type="send", room="r1", text="r1 only")
            self.assertEqual((await recv(a))["text"], "r1 only")
            with self.assertRaises(asyncio.TimeoutError):  # c never hears r1
                await asyncio.wait_for(c.recv(), 0.5)
            await a.close()
            await c.close()
        self.run_with(go)

    def test_errors_and_abuse(self):
        async def go(port):
            a, b = await connect(port), await connect(port)
            await send(a, type="join", room="lobby", nick="ada")
            await recv(a)
            cases = [("{not json", "bad_json"), ('"a string"', "bad_json"), ('{"room":"x"}', "bad_request"),
                     ('{"type":"dance"}', "unknown_type"),
                     ('{"type":"join","room":"bad room","nick":"x"}', "invalid_name"),
                     ('{"type":"join","room":"lobby","nick":"%s"}' % ("n" * 33), "invalid_name"),
                     ('{"type":"join","room":"lobby","nick":"ada"}', "nick_taken"),
                     ('{"type":"send","room":"lobby","text":"x"}', "not_joined")]
            for raw, code in cases:
                await b.send(raw)
                e = await recv(b)
                self.assertEqual((e["type"], e["code"]), ("error", code), raw)
                self.assertIsInstance(e["message"], str)
            await b.send(b"\x00binary")
            self.assertEqual((await recv(b))["code"], "bad_request")
            # the tenth error closes with 1008; the connection was not dropped before
            await b.send("nope")
            self.assertEqual((await recv(b))["code"], "bad_json")
            with self.assertRaises(websockets.ConnectionClosed) as cm:
                await recv(b)
            self.assertEqual(cm.exception.rcvd.code, 1008)
            # nobody else noticed
            await send(a, type="send", room="lobby", text="still here")
            self.assertEqual((await recv(a))["text"], "still here")
            await a.close()
        self.run_with(go)


class ChatFanOutTest(unittest.TestCase):
    def test_200_clients_50_messages_on_4_threads(self):
        """The issue's case: 200 clients across 4 event loops in one room."""
        clients, per, threads = 200, 50, 4

        async def go(srv):
            port = srv.port
            socks = []
            for i in range(clients):
                ws = await connect(port)
                await send(ws, type="join", room="big", nick="u%d" % i)
                # Joins in a known order: client i then hears of exactly the later ones.
                self.assertEqual((await recv(ws))["type"], "joined")
                socks.append(ws)
            spread = await asyncio.to_thread(thread_connections, port)
            print("connections per thread:", spread, file=sys.stderr)
            self.assertEqual(len(spread), threads)
            self.assertEqual(sum(spread), clients + 1)  # + the /metrics request itself
            for n in spread:  # SO_REUSEPORT hashes source ports: ~50 each
                self.assertGreaterEqual(n, 20, spread)
            for i, ws in enumerate(socks):
                for _ in range(clients - 1 - i):
                    p = await recv(ws)
                    self.assertEqual((p["type"], p["event"]), ("presence", "join"))

            async def sender(i, ws):
                for k in range(per):
                    await send(ws, type="send", room="big", text="%d:%d" % (i, k))

            async def receiver(ws):
                last = {}
                count, last_id = 0, 0
                while count < clients * per:
                    m = await recv(ws)
                    self.assertEqual(m["type"], "message")
                    who, k = map(int, m["text"].split(":"))
                    self.assertEqual(k, last.get(who, -1) + 1, "out of order or duplicate")
                    # One order for the whole room, on every loop: ids only grow.
                    self.assertGreater(m["id"], last_id)
                    last[who], last_id = k, m["id"]
                    count += 1
                return count

            results = await asyncio.gather(*[receiver(ws) for ws in socks],
                                           *[sender(i, ws) for i, ws in enumerate(socks)])
            self.assertEqual(results[:clients], [clients * per] * clients)
            for ws in socks:
                await ws.close()

        with UvwsServer("--chat-history", "0", "--threads", str(threads)) as srv:
            asyncio.run(asyncio.wait_for(go(srv), 240))

    def test_history_and_live_exactly_once_across_threads(self):
        """Senders on other threads keep sending while newcomers join: each
        message reaches a newcomer once, in its history or live, never both."""
        async def go(port):
            senders = []
            for i in range(4):
                ws = await connect(port)
                await send(ws, type="join", room="r", nick="s%d" % i)
                await recv(ws)
                senders.append(ws)
            stop = asyncio.Event()

            async def keep_sending(i, ws):
                k = 0
                while not stop.is_set():
                    await send(ws, type="send", room="r", text="%d:%d" % (i, k))
                    k += 1
                    await asyncio.sleep(0.001)
                return k

            tasks = [asyncio.create_task(keep_sending(i, ws)) for i, ws in enumerate(senders)]
            newcomers = []
            for j in range(20):
                ws = await connect(port)
                await send(ws, type="join", room="r", nick="n%d" % j)
                while True:
                    m = await recv(ws)
                    if m["type"] == "joined":
                        break
                newcomers.append((ws, [h["id"] for h in m["history"]]))
                await asyncio.sleep(0.01)
            stop.set()
            sent = sum(await asyncio.gather(*tasks))
            # A last message from each sender marks the end of its stream.
            for i, ws in enumerate(senders):
                await send(ws, type="send", room="r", text="%d:end" % i)
            for ws, ids in newcomers:
                ends = 0
                while ends < len(senders):
                    m = await recv(ws)
                    if m["type"] != "message":
                        continue
                    if m["text"].endswith(":end"):
                        ends += 1
                    ids.append(m["id"])
                self.assertEqual(len(ids), len(set(ids)), "a message came twice")
                self.assertEqual(ids, sorted(ids), "history, then live, in id order")
                # Nothing missing: every id from the first in the history to the last.
                self.assertEqual(sorted(ids), list(range(min(ids), max(ids) + 1)))
            self.assertGreater(sent, 50)
            for ws in senders + [w for w, _ in newcomers]:
                await ws.close()

        with UvwsServer("--chat-history", "100000", "--threads", "4") as srv:
            asyncio.run(asyncio.wait_for(go(srv.port), 120))


def thread_connections(port):
    """uvws_thread_connections{thread="N"} from /metrics, in thread order."""
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=T).read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith('uvws_thread_connections{thread="'):
            name, value = line.rsplit(" ", 1)
            found[int(name.split('"')[1])] = int(value)
    return [found[k] for k in sorted(found)]


if __name__ == "__main__":
    unittest.main(verbosity=2)
