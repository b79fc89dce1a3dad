#!/usr/bin/python3
"""Integration: /chat across uvws instances through a real Redis (`uvws --redis URL`).

A real redis-server (Debian's /usr/bin/redis-server) runs on a free loopback port with
persistence off; two uvws instances A and B point at it. Every uvws_publish is also published
to the Redis channel "uvws:<topic>" and each instance PSUBSCRIBEs "uvws:*", so chat rooms
(topics "chat:<room>") span the instances:

    1. cross-instance chat: presence and 4 x 25 messages cross both ways, in per-sender order,
       none twice; message ids unique and increasing per sender, and greater than every id the
       sending instance had seen; a joined reply lists remote members (and not one who left);
       history holds remote messages
    2. a raw RESP subscriber (PSUBSCRIBE uvws:*) sees uvws:chat:<room>; the
       uvws_redis_messages_total{dir} counters move (out on A; in on B, and on A too: a chat line
       is delivered only once it comes back from Redis, on every instance)
    3. Redis killed: both instances log "lost" and report uvws_redis_connected 0; every chat
       client gets {"type":"status","redis":"down"}, and a chat line sent meanwhile is refused
       (error redis_down) and reaches nobody; "up" once it is back; redis-server restarted
       on the same port (no persistence: the counters are gone): both reconnect, re-subscribe,
       and every client that stayed connected gets the same lines, none twice, ids still growing
    4. an instance started while Redis is down serves /chat joins locally (sends: redis_down),
       logs "unreachable" with a backoff of 100 ms doubling to 2000 ms, and connects once
       redis-server starts
    5. --threads 2 on both instances, 20 clients on each in one room, 10 messages each: every
       client receives all 400, in per-sender order, none twice
    6. AUTH: passwords (percent-encoded, with and without a user name) from the URL; a wrong
       one is logged as refused and local delivery goes on

The tests never assume timing between instances: each step waits (bounded) for the event that
makes the next one causal. Clients: Python websockets and raw sockets; loopback only. A missing
redis-server FAILS the tests. At the end each uvws gets SIGTERM and must exit 0; redis-server is
stopped by PID (SIGTERM, then SIGKILL).

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/redis_test.py -v
"""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402
from wsimport import need_websockets, websockets  # noqa: E402  (missing: the tests fail)

REDIS_SERVER = "/usr/bin/redis-server"
T = 10.0  # one reply
BACKOFF = [100, 200, 400, 800, 1600, 2000]


def need_redis():
    if not (os.path.isfile(REDIS_SERVER) and os.access(REDIS_SERVER, os.X_OK)):
        raise AssertionError("%s is not installed: these tests need Debian's redis-server "
                             "(apt-get install redis-server; deps/install.sh --test)" % REDIS_SERVER)
    need_websockets()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# RESP over a raw socket: just enough for PING and PSUBSCRIBE.

def resp_command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class RespReader:
    """Reads RESP2 values from a socket; every read is bounded by the socket's timeout."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return (kind, rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise AssertionError("bad RESP from redis: %r" % line)


def redis_ping(port, timeout=1.0, password=None):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            r = RespReader(s)
            if password:
                s.sendall(resp_command("AUTH", password))
                if r.read() != (b"+", "OK"):
                    return False
            s.sendall(resp_command("PING"))
            return r.read() == (b"+", "PONG")
    except (OSError, ConnectionError):
        return False


class RedisServer:
    """One redis-server on 127.0.0.1:port, no persistence, run from a temporary folder."""

    def __init__(self, port, folder, password=None):
        self.port = port
        self.folder = folder
        self.password = password
        self.proc = None
        self.starts = 0

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def log_text(self):
        try:
            with open(os.path.join(self.folder, "redis.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self, timeout=10.0):
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        log = open(os.path.join(self.folder, "redis.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.folder, "--daemonize", "no"]
                + (["--requirepass", self.password] if self.password else []),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited with %r at start:\n%s"
                                     % (self.proc.returncode, self.log_text()))
            if redis_ping(self.port, password=self.password):
                return self
            time.sleep(0.05)
        self.kill()
        raise AssertionError("redis-server did not answer PING on port %d within %.0f s:\n%s"
                             % (self.port, timeout, self.log_text()))

    def kill(self):
        """SIGKILL: the instances see the connection drop without a goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class RespSubscriber:
    """A raw socket that PSUBSCRIBEs a pattern and collects (channel, payload) pairs."""

    def __init__(self, port, pattern):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=T)
        self.sock.settimeout(T)
        self.reader = RespReader(self.sock)
        self.sock.sendall(resp_command("PSUBSCRIBE", pattern))
        reply = self.reader.read()
        if not (isinstance(reply, list) and reply[0] == b"psubscribe" and reply[1] == pattern.encode()):
            raise AssertionError("unexpected PSUBSCRIBE reply %r" % (reply,))
        self.messages = []

    def read_one(self, timeout):
        """Reads one value for at most `timeout` s; records it if it is a pmessage."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            msg = self.reader.read()
        except socket.timeout:
            return False
        if isinstance(msg, list) and msg[0] == b"pmessage":
            self.messages.append((msg[2].decode("utf-8", "replace"), msg[3]))
        return True

    def wait_for(self, pred, timeout, n=1):
        """Reads until n recorded pmessages satisfy pred(channel, payload); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [(ch, p) for ch, p in self.messages if pred(ch, p)]
            if len(hits) >= n:
                return hits
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%d of %d matching pmessages within %.1f s; got channels %r"
                                     % (len(hits), n, timeout, [c for c, _ in self.messages]))
            self.read_one(left)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# uvws helpers: metrics and log lines.

METRIC_RE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metrics(srv):
    with urllib.request.urlopen(srv.url("http", "/metrics"), timeout=T) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = METRIC_RE.match(line)
        if m and not line.startswith("#"):
            out[m.group(1) + (m.group(2) or "").replace(" ", "")] = float(m.group(3))
    return out


CONNECTED = "uvws_redis_connected"
OUT = 'uvws_redis_messages_total{dir="out"}'
IN = 'uvws_redis_messages_total{dir="in"}'
DROPPED = "uvws_redis_dropped_total"


def metric(srv, name):
    m = metrics(srv)
    if name not in m:
        raise AssertionError("/metrics has no %s:\n%s" % (name, "\n".join(sorted(m))))
    return m[name]


def wait_metric(srv, name, pred, timeout=10.0, what=""):
    deadline = time.monotonic() + timeout
    while True:
        v = metric(srv, name)
        if pred(v):
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s stayed %r for %.0f s (%s)\n%s" % (name, v, timeout, what, srv.log_text()))
        time.sleep(0.05)


def count_lines(srv, pattern):
    rx = re.compile(pattern)
    return sum(1 for line in srv.log_text().splitlines() if rx.search(line))


def wait_lines(srv, pattern, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while count_lines(srv, pattern) < n:
        if time.monotonic() > deadline:
            raise AssertionError("wanted %d log line(s) matching %r within %.0f s, have %d:\n%s"
                                 % (n, pattern, timeout, count_lines(srv, pattern), srv.log_text()))
        time.sleep(0.05)


def connected_rx(port):
    return r"\binfo\s+redis: connected to 127\.0\.0\.1:%d\b" % port


def lost_rx(port):
    return (r"\bwarn\s+redis: connection to 127\.0\.0\.1:%d lost \(.+\); local delivery continues, "
            r"retrying in (\d+) ms" % port)


def unreachable_rx(port, level="warn"):
    """The first failed attempt is a warning; later ones may be logged at debug level."""
    return (r"\b%s\s+redis: 127\.0\.0\.1:%d unreachable \(.+\); local delivery continues, "
            r"retrying in (\d+) ms" % (level, port))


def retry_delays(srv, port):
    """The "retrying in N ms" of every lost/unreachable line, in order."""
    rx = re.compile("(?:%s)|(?:%s)" % (lost_rx(port), unreachable_rx(port, r"(?:warn|info|debug)")))
    out = []
    for line in srv.log_text().splitlines():
        m = rx.search(line)
        if m:
            out.append(int(m.group(1) or m.group(2)))
    return out


def backoff(n):
    return [BACKOFF[min(i, len(BACKOFF) - 1)] for i in range(n)]


# ---------------------------------------------------------------------------------------------
# Chat clients.

class Timeout(AssertionError):
    pass


class Client:
    """One /chat connection; every received object is recorded, by kind, in arrival order."""

    def __init__(self, ws, nick, where):
        self.ws, self.nick, self.where = ws, nick, where
        self.messages = []  # "message" objects
        self.presence = []  # "presence" objects
        self.other = []     # anything else
        self.all = []       # everything, in arrival order

    def __repr__(self):
        return "%s@%s" % (self.nick, self.where)

    @classmethod
    async def open(cls, srv, nick, where):
        ws = await websockets.connect(srv.url("ws", "/chat"), open_timeout=T, close_timeout=T,
                                      ping_interval=None, max_queue=None)
        return cls(ws, nick, where)

    async def send(self, **obj):
        await self.ws.send(json.dumps(obj))

    async def say(self, room, text):
        await self.send(type="send", room=room, text=text)

    async def recv(self, timeout=T):
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise Timeout("%r: nothing within %.1f s" % (self, timeout)) from None
        m = json.loads(raw)
        self.all.append(m)
        {"message": self.messages, "presence": self.presence}.get(m.get("type"), self.other).append(m)
        return m

    async def until(self, pred, timeout=T, what="?"):
        """Returns the first object received so far or from now on with pred(m); everything
        read stays recorded."""
        for m in self.all:
            if pred(m):
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("%r: no %s within %.1f s; last messages %r, presence %r, other %r"
                              % (self, what, timeout, self.messages[-5:], self.presence[-5:], self.other[-5:]))
            m = await self.recv(left)
            if pred(m):
                return m

    async def until_messages(self, n, timeout=60.0):
        deadline = time.monotonic() + timeout
        while len(self.messages) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("%r: %d of %d messages within %.0f s" % (self, len(self.messages), n, timeout))
            await self.recv(min(left, T))

    async def drain(self, quiet=0.5):
        """Reads until nothing arrives for `quiet` seconds (bounded: at most 30 s)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                await self.recv(quiet)
            except Timeout:
                return
        raise AssertionError("%r: traffic did not stop within 30 s" % self)

    def texts_from(self, nick):
        return [m["text"] for m in self.messages if m["nick"] == nick]

    async def close(self):
        await self.ws.close()


def is_presence(nick, event="join"):
    return lambda m: m.get("type") == "presence" and m.get("nick") == nick and m.get("event") == event


def is_message(nick, text=None, prefix=None):
    def pred(m):
        if m.get("type") != "message" or m.get("nick") != nick:
            return False
        if text is not None:
            return m.get("text") == text
        return prefix is None or m.get("text", "").startswith(prefix)
    return pred


async def join(newcomer, room, earlier):
    """newcomer joins `room`; waits for its reply and for every earlier member (on either
    instance) to hear the presence event, so the next step sees a settled room."""
    await newcomer.send(type="join", room=room, nick=newcomer.nick)
    j = await newcomer.until(lambda m: m.get("type") in ("joined", "error"), what="joined reply")
    if j["type"] != "joined" or j["room"] != room or j["nick"] != newcomer.nick:
        raise AssertionError("%r: join answered %r" % (newcomer, j))
    for c in earlier:
        await c.until(is_presence(newcomer.nick), what="presence join of %s" % newcomer.nick)
    return j


async def join_all(room, clients):
    replies = {}
    for i, c in enumerate(clients):
        replies[c.nick] = await join(c, room, clients[:i])
    return replies


def check_presence(tc, clients, order):
    """No client hears its own presence or the same event twice; every earlier member heard
    every later joiner (join() waited for that)."""
    for c in clients:
        events = [(p["nick"], p["event"]) for p in c.presence]
        tc.assertEqual(len(events), len(set(events)), "%r heard a presence event twice: %r" % (c, events))
        tc.assertNotIn(c.nick, [n for n, _ in events], "%r heard its own presence" % c)
        later = order[order.index(c.nick) + 1:] if c.nick in order else []
        for n in later:
            tc.assertIn((n, "join"), events, "%r did not hear %s join" % (c, n))


def check_streams(tc, clients, sent):
    """sent: nick -> texts in sending order. Every client got every one exactly once, in
    per-sender order; ids unique per client, increasing per sender, and the same id for the same
    message at every client."""
    ids = {}
    for c in clients:
        for nick, texts in sent.items():
            tc.assertEqual(c.texts_from(nick), texts, "%r: messages from %s missing, reordered or doubled"
                           % (c, nick))
        extra = [m for m in c.messages if m["nick"] not in sent]
        tc.assertEqual(extra, [], "%r: messages from nobody who sent" % c)
        got = [m["id"] for m in c.messages]
        tc.assertEqual(len(got), len(set(got)), "%r: message ids not unique" % c)
        for nick in sent:
            per = [m["id"] for m in c.messages if m["nick"] == nick]
            tc.assertEqual(per, sorted(set(per)), "%r: ids from %s not increasing: %r" % (c, nick, per))
        for m in c.messages:
            tc.assertIsInstance(m["id"], int)
            tc.assertIsInstance(m["ts"], int)
            tc.assertLess(abs(m["ts"] - time.time() * 1000), 120000)
            key = (m["nick"], m["text"])
            tc.assertEqual(ids.setdefault(key, m["id"]), m["id"], "%r: %r has another id elsewhere" % (c, key))


async def send_until_seen(sender, room, receiver, prefix, timeout=20.0, every=0.25):
    """sender says prefix0, prefix1, ... until receiver (another instance) hears one of them.
    Returns the texts sent."""
    sent = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = "%s%d" % (prefix, len(sent))
        await sender.say(room, text)
        sent.append(text)
        try:
            await receiver.until(is_message(sender.nick, prefix=prefix), timeout=every, what=prefix)
            return sent
        except Timeout:
            pass
    raise AssertionError("%r never heard %r from %r within %.0f s (%d sent)"
                         % (receiver, prefix, sender, timeout, len(sent)))


async def to_thread(fn, *args, **kw):
    return await asyncio.to_thread(fn, *args, **kw)


# ---------------------------------------------------------------------------------------------

class RedisTestCase(unittest.TestCase):
    def setUp(self):
        need_redis()
        self.folder = tempfile.mkdtemp(prefix="uvws-redis-test-")
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.redis = RedisServer(free_port(), self.folder)
        self.servers = []
        self.addCleanup(self.close_pipes)
        self.addCleanup(self.redis.stop)  # runs after the uvws context managers have exited

    def instance(self, *args):
        srv = UvwsServer("--redis", self.redis.url, *args)
        self.servers.append(srv)
        return srv

    def close_pipes(self):
        for srv in self.servers:  # the log pipes of servers that have exited
            if srv.proc is not None and srv.proc.poll() is not None and srv.proc.stderr:
                srv.proc.stderr.close()

    def logs(self):
        out = []
        for i, srv in enumerate(self.servers):
            out.append("---- uvws #%d (port %s, %s) log:\n%s" % (i, srv.port, " ".join(srv.args), srv.log_text()))
        out.append("---- redis-server log:\n" + self.redis.log_text())
        return "\n".join(out)

    def wait_connected(self, *servers, times=1):
        for srv in servers:
            wait_lines(srv, connected_rx(self.redis.port), times, timeout=15)
            wait_metric(srv, CONNECTED, lambda v: v == 1, timeout=10, what="after connecting")

    def run_async(self, coro, timeout):
        """Runs the clients' part; a failure there carries every log line of the servers."""
        try:
            asyncio.run(asyncio.wait_for(coro, timeout))
        except Exception as e:
            raise AssertionError("%s: %s\n%s" % (type(e).__name__, e, self.logs())) from e


class CrossInstanceChatTest(RedisTestCase):
    def test_chat_spans_two_instances(self):
        room, per = "lobby", 25
        self.redis.start()
        with self.instance("--chat-history", "500") as A, self.instance("--chat-history", "500") as B:
            self.wait_connected(A, B)

            async def go():
                b1, a1 = await Client.open(B, "b1", "B"), await Client.open(A, "a1", "A")
                a2, b2 = await Client.open(A, "a2", "A"), await Client.open(B, "b2", "B")
                quartet = [b1, a1, a2, b2]
                # b1 first (B has the room), then a1 and a2 on A, then b2 on B. Whether A
                # had heard of b1's join before a2 asked is taken when a2 asks: b1's join
                # reaches A through Redis on its own time.
                rep = {}
                for i, c in enumerate(quartet):
                    if c is a2:
                        a1_saw_b1 = any(p["nick"] == "b1" for p in a1.presence)
                    rep[c.nick] = await join(c, room, quartet[:i])
                check_presence(self, quartet, [c.nick for c in quartet])
                self.assertEqual(rep["b1"]["members"], ["b1"])
                self.assertIn("a1", rep["a1"]["members"])
                self.assertLessEqual(set(rep["a1"]["members"]), {"a1", "b1"})
                self.assertLessEqual({"a1", "a2"}, set(rep["a2"]["members"]))
                self.assertLessEqual(set(rep["a2"]["members"]), {"a1", "a2", "b1"})
                if a1_saw_b1:  # A saw b1 join (a1 heard it) before a2 joined
                    self.assertIn("b1", rep["a2"]["members"], "A heard b1 join but does not list b1")
                # B saw a1 and a2 join (b1 heard both), so b2's reply lists them.
                self.assertEqual(sorted(rep["b2"]["members"]), ["a1", "a2", "b1", "b2"])
                self.assertEqual(rep["b2"]["history"], [])

                # 4 clients x 25 messages, all at once.
                sent = {c.nick: ["%s:%d" % (c.nick, k) for k in range(per)] for c in quartet}

                async def sender(c):
                    for t in sent[c.nick]:
                        await c.say(room, t)

                await asyncio.gather(*[c.until_messages(len(quartet) * per) for c in quartet],
                                     *[sender(c) for c in quartet])
                for c in quartet:
                    await c.drain(0.5)
                check_streams(self, quartet, sent)

                # Ping-pong across the instances: each id is greater than every id the sending
                # instance had seen in the room.
                seen = max(m["id"] for m in a1.messages)
                for k in range(6):
                    s, r = (a1, b1) if k % 2 == 0 else (b1, a1)
                    text = "pp:%d" % k
                    await s.say(room, text)
                    m = await r.until(is_message(s.nick, text), what=text)
                    self.assertGreater(m["id"], seen, "id of %r not above every id %r had seen" % (text, s.where))
                    seen = m["id"]
                    sent[s.nick].append(text)
                for c in quartet:
                    await c.until(is_message(b1.nick, "pp:5"), what="pp:5")
                for c in quartet:
                    await c.drain(0.3)
                check_streams(self, quartet, sent)

                # A newcomer on B gets the remote messages in its history (per-sender order).
                b3 = await Client.open(B, "b3", "B")
                j = await join(b3, room, quartet)
                self.assertEqual(sorted(j["members"]), ["a1", "a2", "b1", "b2", "b3"])
                hist = j["history"]
                for nick, texts in sent.items():
                    self.assertEqual([h["text"] for h in hist if h["nick"] == nick], texts,
                                     "B's history of %s's messages" % nick)
                self.assertEqual(len(hist), sum(len(t) for t in sent.values()))
                by_key = {(m["nick"], m["text"]): m["id"] for m in b1.messages}
                for h in hist:
                    self.assertEqual(h["type"], "message")
                    self.assertEqual(h["id"], by_key[(h["nick"], h["text"])])

                # b2 leaves (remote leave crosses), b1 disconnects (announced as leave too);
                # a newcomer on A then lists neither.
                await b2.send(type="leave", room=room)
                for c in (a1, a2, b1, b3):
                    await c.until(is_presence("b2", "leave"), what="b2 leave")
                await b1.close()
                for c in (a1, a2, b3):
                    await c.until(is_presence("b1", "leave"), what="b1 leave")
                a3 = await Client.open(A, "a3", "A")
                j = await join(a3, room, [a1, a2, b3])
                self.assertEqual(sorted(j["members"]), ["a1", "a2", "a3", "b3"])
                for c in (a1, a2, a3, b2, b3):
                    await c.close()

            self.run_async(go(), 120)


class RespSubscriberAndCountersTest(RedisTestCase):
    def test_channel_and_counters(self):
        room = "r2"
        self.redis.start()
        sub = RespSubscriber(self.redis.port, "uvws:*")
        self.addCleanup(sub.close)
        with self.instance() as A, self.instance() as B:
            self.wait_connected(A, B)

            async def go():
                b1, a1 = await Client.open(B, "b1", "B"), await Client.open(A, "a1", "A")
                await join_all(room, [b1, a1])
                # b1's and a1's joins went out on the room's channel
                await to_thread(sub.wait_for, lambda ch, p: ch == "uvws:chat:" + room, 10, 2)
                before = {s: await to_thread(metrics, s) for s in (A, B)}
                texts = ["hello %d" % k for k in range(3)]
                for t in texts:
                    await a1.say(room, t)
                for t in texts:
                    await b1.until(is_message("a1", t), what=t)
                    await a1.until(is_message("a1", t), what=t)
                await to_thread(time.sleep, 0.3)  # nothing else should move the counters now
                after = {s: await to_thread(metrics, s) for s in (A, B)}
                d = {(s, k): after[s][k] - before[s][k] for s in (A, B) for k in (OUT, IN, DROPPED)}
                self.assertEqual(d[(A, OUT)], 3, "A published 3 messages to Redis")
                self.assertEqual(d[(B, IN)], 3, "B delivered 3 messages from A")
                # A delivers its own lines only once they come back with their place.
                self.assertEqual(d[(A, IN)], 3, "A delivered its 3 messages from Redis")
                self.assertEqual(d[(B, OUT)], 0, "B published nothing")
                self.assertEqual(d[(A, DROPPED)] + d[(B, DROPPED)], 0)
                for s in (A, B):
                    self.assertEqual(after[s][CONNECTED], 1)
                await a1.drain(0.3)
                await b1.drain(0.3)
                self.assertEqual(a1.texts_from("a1"), texts, "a1 got its own message twice or lost it")
                self.assertEqual(b1.texts_from("a1"), texts)
                for c in (a1, b1):
                    await c.close()

            self.run_async(go(), 60)
            # The raw subscriber saw the room's channel carry the joins of b1 and a1 and the
            # three messages (then the leaves); payloads are opaque but never empty.
            hits = sub.wait_for(lambda ch, p: ch == "uvws:chat:" + room, 10, n=2 + 3)
            self.assertTrue(all(p for _, p in hits), hits)
            self.assertTrue(all(ch.startswith("uvws:chat:") for ch, _ in sub.messages), sub.messages)


class RedisOutageTest(RedisTestCase):
    def test_kill_and_restart_redis(self):
        room, port = "r3", self.redis.port
        self.redis.start()
        with self.instance() as A, self.instance() as B:
            self.wait_connected(A, B)

            async def go():
                a1, a2 = await Client.open(A, "a1", "A"), await Client.open(A, "a2", "A")
                b1, b2 = await Client.open(B, "b1", "B"), await Client.open(B, "b2", "B")
                four = [a1, b1, a2, b2]
                await join_all(room, four)
                await a1.say(room, "before")
                for c in four:
                    await c.until(is_message("a1", "before"), what="before")

                # Kill Redis.
                self.redis.kill()
                for s in (A, B):
                    await to_thread(wait_lines, s, lost_rx(port), 1, 10)
                    await to_thread(wait_metric, s, CONNECTED, lambda v: v == 0, 5, "after SIGKILL")

                # Every chat client is told (README: status messages).
                down = {"type": "status", "redis": "down"}
                for c in four:
                    await c.until(lambda m: m == down, what="status down")
                # A line sent now cannot get its place: refused, and nobody gets it.
                n_out = 5
                for k in range(n_out):
                    for c in (a1, b1):
                        await c.say(room, "during:%d" % k)
                        e = await c.recv()
                        self.assertEqual((e["type"], e.get("code")), ("error", "redis_down"), e)
                for s in (A, B):
                    self.assertEqual(await to_thread(metric, s, CONNECTED), 0)
                    self.assertTrue(s.alive())

                # Stay down long enough for a few reconnect attempts to fail.
                await asyncio.sleep(1.5)
                for s in (A, B):
                    self.assertTrue(s.alive())
                    self.assertEqual(await to_thread(metric, s, CONNECTED), 0)
                    self.assertEqual(count_lines(s, connected_rx(port)), 1)
                    delays = retry_delays(s, port)  # from the "lost" line on
                    if len(delays) > 1:
                        self.assertEqual(delays, backoff(len(delays)), "retry delays after the loss")

                # Restart Redis on the same port: both reconnect (a second "connected" line).
                await to_thread(self.redis.start)
                for s in (A, B):
                    await to_thread(self.wait_connected, s, times=2)
                for c in four:
                    await c.until(lambda m: m == {"type": "status", "redis": "up"}, what="status up")

                # Cross-instance delivery resumes for the clients that stayed connected.
                after_a = await send_until_seen(a1, room, b1, "afterA:")
                after_b = await send_until_seen(b1, room, a1, "afterB:")
                await a1.say(room, "finalA")
                await b1.say(room, "finalB")
                for c in four:
                    await c.until(is_message("a1", "finalA"), what="finalA")
                    await c.until(is_message("b1", "finalB"), what="finalB")
                for c in four:
                    await c.drain(0.5)
                # The restarted Redis lost every presence entry; the instances stored their
                # members again on reconnecting, and nobody heard them join a second time.
                check_presence(self, four, [c.nick for c in four])

                # Every line sent after the restart was accepted (no error) and so has its
                # place: everyone, the senders included, got all of them, none of the
                # refused ones, in one order, with ids that kept growing across the restart.
                for c in four:
                    self.assertEqual([m["code"] for m in c.other if m.get("type") == "error"],
                                     ["redis_down"] * (n_out if c in (a1, b1) else 0), c)
                for sender, after, final, first in (("a1", after_a, "finalA", ["before"]),
                                                    ("b1", after_b, "finalB", [])):
                    for c in four:
                        self.assertEqual(c.texts_from(sender), first + after + [final],
                                         "%r: %s's messages" % (c, sender))
                order = [(m["nick"], m["text"]) for m in a1.messages]
                for c in four:
                    self.assertEqual([(m["nick"], m["text"]) for m in c.messages], order, "%r: another order" % c)
                    ids = [m["id"] for m in c.messages]
                    self.assertEqual(ids, sorted(set(ids)), "%r: ids not strictly increasing: %r" % (c, ids))
                for c in four:
                    await c.close()

            self.run_async(go(), 150)
            self.assertEqual(count_lines(A, lost_rx(port)), 1)
            self.assertEqual(count_lines(B, lost_rx(port)), 1)


class StartWithRedisDownTest(RedisTestCase):
    def test_start_while_redis_is_down(self):
        room, port = "r4", self.redis.port
        with self.instance() as A, self.instance() as C:
            # Both start and serve while Redis is down; C is stopped before Redis ever runs.
            for s in (A, C):
                s.wait_log(unreachable_rx(port), timeout=10)
                self.assertEqual(metric(s, CONNECTED), 0)

            async def local():
                a1, a2 = await Client.open(A, "a1", "A"), await Client.open(A, "a2", "A")
                joined = await join_all(room, [a1, a2])
                # Redis down at the join: the members this instance knows
                self.assertEqual(sorted(joined["a2"]["members"]), ["a1", "a2"])
                for c in (a1, a2):  # told at once on connecting
                    self.assertEqual(c.other[0], {"type": "status", "redis": "down"})
                await a1.say(room, "local")
                e = await a1.until(lambda m: m.get("type") == "error", what="redis_down")
                self.assertEqual(e["code"], "redis_down")
                self.assertEqual(a1.messages + a2.messages, [], "a line without its place was delivered")
                return a1, a2

            self.run_async(local_then_close(local), 30)
            # Presence does not go through plain publishes: the joins were not stored (refused
            # at once), the leaves are kept by A for when Redis is back; nothing was dropped.
            self.assertEqual(metric(A, DROPPED), 0)
            C.stop()

            # Let the backoff grow past its cap, then start Redis.
            time.sleep(4.5)
            delays = retry_delays(A, port)
            # Attempts at about 0, 0.1, 0.3, 0.7, 1.5, 3.1 s: at least 5 failed by now. Whether
            # each is logged is the server's choice; those logged follow the backoff.
            self.assertTrue(delays, A.log_text())
            if len(delays) > 1:
                self.assertEqual(delays, backoff(len(delays)), "retry delays: 100 ms doubling to 2000")
                self.assertGreaterEqual(len(delays), 5)
            else:
                self.assertEqual(delays, [100])
            self.assertFalse(re.search(connected_rx(port), A.log_text()))

            self.redis.start()
            t0 = time.monotonic()
            self.wait_connected(A)
            # Backoff is capped at 2 s, and a refused connect fails fast on loopback.
            self.assertLess(time.monotonic() - t0, 2.0 + 2.0 + 1.0)

            # It is really in: a second instance B hears A's room.
            with self.instance() as B:
                self.wait_connected(B)

                async def cross():
                    b1, a1 = await Client.open(B, "b1", "B"), await Client.open(A, "a1", "A")
                    joined = await join_all(room, [b1, a1])
                    # a1 and a2 of the outage joined and left on A alone: nobody lists them
                    self.assertEqual(joined["b1"]["members"], ["b1"])
                    self.assertEqual(sorted(joined["a1"]["members"]), ["a1", "b1"])
                    await a1.say(room, "via redis")
                    await b1.until(is_message("a1", "via redis"), what="via redis")
                    await b1.say(room, "back")
                    await a1.until(is_message("b1", "back"), what="back")
                    for c in (a1, b1):
                        await c.close()

                self.run_async(cross(), 60)


async def local_then_close(fn):
    clients = await fn()
    for c in clients:
        await c.close()


class RedisAuthTest(RedisTestCase):
    def test_password_from_the_url(self):
        """redis://:PASSWORD@ and redis://USER:PASSWORD@ (percent-encoded) authenticate both
        connections; a wrong password is logged as refused, never connects, and chat lines
        there are refused (redis_down) while joins work locally."""
        room = "auth"
        self.redis = RedisServer(self.redis.port, self.folder, password="p@ss word")
        self.addCleanup(self.redis.stop)  # setUp's cleanup holds the server this replaces
        self.redis.start()
        good = "redis://:p%%40ss%%20word@127.0.0.1:%d" % self.redis.port
        user = "redis://default:p%%40ss%%20word@127.0.0.1:%d" % self.redis.port
        bad = "redis://:nope@127.0.0.1:%d" % self.redis.port
        with UvwsServer("--redis", good) as A, UvwsServer("--redis", user) as B, \
                UvwsServer("--redis", bad) as C:
            self.servers += [A, B, C]
            self.wait_connected(A, B)
            wait_lines(C, re.compile(r"error redis: AUTH to 127\.0\.0\.1:%d refused \(" % self.redis.port), 1)
            wait_metric(C, CONNECTED, lambda v: v == 0, what="with a wrong password")
            self.assertNotIn("p@ss", A.log_text() + B.log_text() + C.log_text(), "a password was logged")

            async def go():
                a1, b1 = await Client.open(A, "a1", "A"), await Client.open(B, "b1", "B")
                c1, c2 = await Client.open(C, "c1", "C"), await Client.open(C, "c2", "C")
                await join_all(room, [a1, b1])
                await join_all(room, [c1, c2])
                await a1.say(room, "across")
                await b1.until(is_message("a1", "across"), what="A's message through Redis")
                await c1.say(room, "local")
                e = await c1.until(lambda m: m.get("type") == "error", what="C's redis_down")
                self.assertEqual(e["code"], "redis_down")
                for c in (a1, b1, c1, c2):
                    await c.close()

            self.run_async(go(), 60)
            self.assertEqual(metric(C, CONNECTED), 0)


class ThreadedFanOutTest(RedisTestCase):
    def test_two_threaded_instances_40_clients(self):
        room, per_instance, per = "big", 20, 10
        self.redis.start()
        with self.instance("--threads", "2", "--chat-history", "0") as A, \
                self.instance("--threads", "2", "--chat-history", "0") as B:
            self.wait_connected(A, B)

            async def go():
                clients = []
                for i in range(per_instance):
                    clients.append(await Client.open(A, "a%d" % i, "A"))
                    clients.append(await Client.open(B, "b%d" % i, "B"))
                # Joins alternate between the instances; each waits until everyone heard it.
                await join_all(room, clients)
                check_presence(self, clients, [c.nick for c in clients])
                sent = {c.nick: ["%s:%d" % (c.nick, k) for k in range(per)] for c in clients}

                async def sender(c):
                    for t in sent[c.nick]:
                        await c.say(room, t)

                total = len(clients) * per
                await asyncio.gather(*[c.until_messages(total, timeout=90) for c in clients],
                                     *[sender(c) for c in clients])
                for c in clients:
                    await c.drain(0.3)
                check_streams(self, clients, sent)
                for c in clients:
                    await c.close()

            self.run_async(go(), 200)
            for s in (A, B):
                self.assertGreaterEqual(metric(s, OUT), per_instance * per)
                self.assertGreaterEqual(metric(s, IN), per_instance * per)


if __name__ == "__main__":
    unittest.main(verbosity=2)
