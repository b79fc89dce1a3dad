#!/usr/bin/python3
"""Integration: a real nginx (Debian's /usr/sbin/nginx) on loopback in front of uvws.

nginx runs from a temporary prefix (nginx_util.py) with the usual WebSocket proxy
configuration (map $http_upgrade $connection_upgrade, proxy_http_version 1.1, Upgrade and
Connection headers, X-Forwarded-For $proxy_add_x_forwarded_for) in these server blocks:

    plain      ws://nginx    -> http://uvws        (uvws --trusted-proxy 127.0.0.1)
    tls        wss://nginx   -> http://uvws        (TLS ends at nginx)
    tls2tls    wss://nginx   -> https://uvws       (uvws --tls-self-signed; proxy_ssl_verify off)
    xff        ws://nginx    -> http://uvws        (its own uvws --trusted-proxy 127.0.0.1)
    untrusted  ws://nginx    -> http://uvws        (its own uvws without --trusted-proxy)
    perip      ws://nginx    -> http://uvws        (--trusted-proxy 127.0.0.1
                                                    --max-connections-per-ip 1)

The /chat route (README, "Chat") runs through plain, tls and tls2tls as well: two members
(joined, presence, messages, history, leave), a fan-out of 30 clients x 20 messages, and a bad
request that gets an error while the connection stays open. The tests never assume that uvws
runs on one thread: each step waits for the reply that makes the next one causal.

Clients: Python websockets (asyncio), curl, raw sockets. Every wait is bounded; loopback only.
A missing nginx, openssl or curl FAILS the tests. At the end nginx gets SIGQUIT and uvws
SIGTERM; both must exit 0.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/nginx_test.py -v
"""
import asyncio
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
sys.path.insert(0, HERE)
from uvwsproc import ROOT, UvwsServer, uvws_bin  # noqa: E402
from nginx_util import Nginx, Site, need_nginx, need_tool, self_signed_cert  # noqa: E402
from wsimport import need_websockets, websockets  # noqa: E402  (missing: the tests fail)
from aiohelp import runner  # noqa: E402
from chatjson import receiver, send as chat_send  # noqa: E402

T = 10.0
MIB = 1 << 20
CLIENT_XFF = "203.0.113.7"


def addr_rx(ip):
    """A log token naming `ip` (alone, or as ip:port), not a longer address containing it."""
    return r"(?<![\w.:])%s(?![\w.])" % re.escape(ip)


run = runner(60)


def insecure_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(url, headers=None, compression=None, subprotocols=None, max_queue=32):
    return websockets.connect(url, ssl=insecure_ctx() if url.startswith("wss:") else None,
                              extra_headers=headers or {}, compression=compression,
                              subprotocols=subprotocols, max_size=None, open_timeout=T,
                              close_timeout=T, ping_interval=None, max_queue=max_queue)


chat_recv = receiver(T)  # the next /chat message, parsed (a JSON object), within `timeout`


class Curl:
    def __init__(self, p):
        self.rc = p.returncode
        self.stderr = p.stderr.decode("utf-8", "replace")
        head, _, self.body = p.stdout.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else None
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def __repr__(self):
        return "Curl(rc=%r, status=%r, headers=%r, body=%r, stderr=%r)" % (
            self.rc, self.status, self.headers, self.body[:200], self.stderr)


def curl(*args):
    p = subprocess.run([need_tool("curl"), "-sS", "-i", "-k", "--max-time", str(T), *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=T + 5)
    return Curl(p)


def close_pipe(srv):
    """The helper leaves the stopped server's stderr pipe open; close it (no ResourceWarning)."""
    if srv.proc is not None and srv.proc.stderr is not None and srv.proc.poll() is not None:
        srv.proc.stderr.close()


def raw_http(port, request, timeout=T):
    """One request on a raw socket; returns everything until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request.encode("latin-1"))
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and b"HTTP/1.1 101" in data:
                break
        return data


class NginxTest(unittest.TestCase):
    servers = ()
    nginx = None

    @classmethod
    def setUpClass(cls):
        need_websockets()
        need_nginx()
        need_tool("curl")
        if not os.access(uvws_bin(), os.X_OK):
            raise AssertionError("uvws binary not found at %s (set UVWS_BIN)" % uvws_bin())
        helptext = subprocess.run([uvws_bin(), "--help"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=T).stdout.decode()
        cls.has_trust = "--trusted-proxy" in helptext
        trust = ["--trusted-proxy", "127.0.0.1"] if cls.has_trust else []
        cls.tmp = tempfile.mkdtemp(prefix="uvws-nginx-")
        started = []
        try:
            cls.main = UvwsServer(*trust, "--tls-self-signed", "--tls-port", "0").start()
            started.append(cls.main)
            cls.xff = UvwsServer(*trust).start()
            started.append(cls.xff)
            cls.untrusted = UvwsServer().start()
            started.append(cls.untrusted)
            cls.perip = UvwsServer(*trust, "--max-connections-per-ip", "1").start()
            started.append(cls.perip)
            cls.servers = tuple(started)
            cert, key = self_signed_cert(cls.tmp)
            cls.nginx = Nginx(cls.tmp, [
                Site("plain", "http://127.0.0.1:%d" % cls.main.port),
                Site("tls", "http://127.0.0.1:%d" % cls.main.port, tls=True),
                Site("tls2tls", "https://127.0.0.1:%d" % cls.main.tls_port, tls=True),
                Site("xff", "http://127.0.0.1:%d" % cls.xff.port),
                Site("untrusted", "http://127.0.0.1:%d" % cls.untrusted.port),
                Site("perip", "http://127.0.0.1:%d" % cls.perip.port),
            ], cert=cert, key=key).start()
        except BaseException:
            cls._stop_all(started)
            raise

    @classmethod
    def _stop_all(cls, servers):
        errors = []
        if cls.nginx is not None:
            try:
                cls.nginx.stop()
            except AssertionError as e:
                errors.append(str(e))
        for s in servers:
            try:
                s.stop()
            except AssertionError as e:
                errors.append(str(e))
            close_pipe(s)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        return errors

    @classmethod
    def tearDownClass(cls):
        errors = cls._stop_all(cls.servers)
        if errors:
            raise AssertionError("\n\n".join(errors))

    # ---- helpers --------------------------------------------------------------------------

    def url(self, site, path="/echo"):
        scheme = "wss" if site in ("tls", "tls2tls") else "ws"
        return "%s://127.0.0.1:%d%s" % (scheme, self.nginx.port(site), path)

    def http_url(self, site, path="/"):
        scheme = "https" if site in ("tls", "tls2tls") else "http"
        return "%s://127.0.0.1:%d%s" % (scheme, self.nginx.port(site), path)

    def need_trust(self):
        if not self.has_trust:
            self.fail("uvws has no --trusted-proxy option (%s --help does not list it)"
                      % uvws_bin())

    def diag(self, *servers):
        out = [self.nginx.log_text()]
        for s in servers:
            out.append("--- uvws log\n" + s.log_text())
        return "\n".join(out)

    # ---- echo through nginx ---------------------------------------------------------------

    def _echo_all(self, site):
        async def go():
            async with connect(self.url(site), compression=None) as ws:
                text = "héllo through nginx ✓ " * 20
                await ws.send(text)
                self.assertEqual(await asyncio.wait_for(ws.recv(), T), text)
                binary = bytes(range(256)) * 16 + b"\x00\xff"
                await ws.send(binary)
                self.assertEqual(await asyncio.wait_for(ws.recv(), T), binary)
                big = os.urandom(MIB)
                await ws.send(big)
                got = await asyncio.wait_for(ws.recv(), 30)
                self.assertEqual(len(got), MIB)
                self.assertTrue(got == big, "1 MiB binary message changed on the way")
                frags = ["frag-%d-" % i + "x" * (i * 1000) for i in range(8)]
                await ws.send(iter(frags))  # one text message in 8 frames
                self.assertEqual(await asyncio.wait_for(ws.recv(), T), "".join(frags))
                bfrags = [os.urandom(70000) for _ in range(4)]
                await ws.send(iter(bfrags))
                self.assertEqual(await asyncio.wait_for(ws.recv(), T), b"".join(bfrags))
                empty = ""
                await ws.send(empty)
                self.assertEqual(await asyncio.wait_for(ws.recv(), T), empty)
        run(go())

    def test_echo_ws(self):
        self._echo_all("plain")

    def test_echo_wss_tls_at_nginx(self):
        self._echo_all("tls")

    def test_echo_wss_tls_to_uvws_tls(self):
        self._echo_all("tls2tls")

    def test_permessage_deflate_end_to_end(self):
        for site in ("plain", "tls", "tls2tls"):
            with self.subTest(site=site):
                async def go():
                    async with connect(self.url(site), compression="deflate") as ws:
                        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
                        self.assertIn("permessage-deflate", ext)
                        names = [e.name for e in ws.extensions]
                        self.assertEqual(names, ["permessage-deflate"])
                        text = "compress me " * 5000
                        await ws.send(text)
                        self.assertEqual(await asyncio.wait_for(ws.recv(), T), text)
                        big = (b"abcdefgh" * 64 + os.urandom(64)) * 2048  # ~1.1 MiB, compressible
                        await ws.send(big)
                        self.assertTrue(await asyncio.wait_for(ws.recv(), 30) == big)
                        rnd = os.urandom(MIB)
                        await ws.send(rnd)
                        self.assertTrue(await asyncio.wait_for(ws.recv(), 30) == rnd)
                run(go())

    def test_deflate_frames_reach_uvws_compressed(self):
        """/inspect reports RSV1 on the frames uvws received: nginx passed them compressed."""
        async def go():
            async with connect(self.url("tls", "/inspect"), compression="deflate") as ws:
                hs = json.loads(await asyncio.wait_for(ws.recv(), T))
                self.assertEqual(hs["uvws"], "handshake")
                resp = {k.lower(): v for k, v in hs["response"]["headers"]}
                self.assertIn("permessage-deflate", resp.get("sec-websocket-extensions", ""))
                payload = "Z" * 4000
                await ws.send(payload)
                seen_in = None
                while True:
                    m = await asyncio.wait_for(ws.recv(), T)
                    if m == payload:
                        break
                    j = json.loads(m)
                    if j.get("uvws") == "frame" and j["dir"] == "in" and j["op"] == "text":
                        seen_in = j
                self.assertIsNotNone(seen_in, "no trace of the incoming frame")
                self.assertTrue(seen_in["rsv1"], seen_in)
                self.assertLess(seen_in["len"], 4000, seen_in)
        run(go())

    def test_close_code_propagates(self):
        for site in ("plain", "tls", "tls2tls"):
            with self.subTest(site=site):
                async def go():
                    ws = await connect(self.url(site))
                    await ws.send("before close")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), T), "before close")
                    await asyncio.wait_for(ws.close(4000, "bye"), T)
                    self.assertEqual(ws.close_code, 4000)
                    self.assertEqual(ws.close_reason, "bye")
                run(go())
        self.main.wait_log(r"ws close \S+ /echo code=4000 by=client")

    def test_ping_pong(self):
        for site in ("plain", "tls", "tls2tls"):
            with self.subTest(site=site):
                async def go():
                    async with connect(self.url(site)) as ws:
                        for data in (b"", b"ping-through-nginx", os.urandom(125)):
                            waiter = await ws.ping(data)
                            await asyncio.wait_for(waiter, T)
                        await ws.send("after pings")
                        self.assertEqual(await asyncio.wait_for(ws.recv(), T), "after pings")
                run(go())

    def test_subprotocol_through_nginx(self):
        async def go():
            async with connect(self.url("plain"), subprotocols=["uvws-echo"]) as ws:
                self.assertEqual(ws.subprotocol, "uvws-echo")
        run(go())

    # ---- /chat through nginx --------------------------------------------------------------
    # plain and tls reach the same uvws (cls.main) over HTTP, tls2tls over its TLS port: the
    # rooms are that server's, so every test uses rooms of its own (name + site).

    def chat_connect(self, site, subprotocols=None):
        # max_queue=None: a client that falls behind must not push back through nginx into
        # uvws's --max-backpressure (which would drop lines for it).
        return connect(self.url(site, "/chat"), subprotocols=subprotocols, max_queue=None)

    def check_message(self, m, room, nick, text):
        """A "message" line as the README documents it; returns its id."""
        self.assertEqual((m.get("type"), m.get("room"), m.get("nick"), m.get("text")),
                         ("message", room, nick, text), m)
        self.assertIsInstance(m.get("id"), int, m)
        self.assertIsInstance(m.get("ts"), int, m)
        self.assertLess(abs(m["ts"] - time.time() * 1000), 60000, m)
        return m["id"]

    def _chat_pair(self, site):
        room = "pair-" + site

        async def go():
            a = await self.chat_connect(site, subprotocols=["uvws-chat"])
            b = await self.chat_connect(site)
            try:
                self.assertEqual(a.subprotocol, "uvws-chat")
                await chat_send(a, type="join", room=room, nick="ada")
                self.assertEqual(await chat_recv(a), {"type": "joined", "room": room, "nick": "ada",
                                                      "members": ["ada"], "history": []})
                await chat_send(a, type="send", room=room, text="first")
                m1 = await chat_recv(a)
                id1 = self.check_message(m1, room, "ada", "first")
                self.assertGreaterEqual(id1, 1)

                await chat_send(b, type="join", room=room, nick="bob")
                j = await chat_recv(b)
                self.assertEqual((j["type"], j["room"], j["nick"]), ("joined", room, "bob"), j)
                self.assertEqual(sorted(j["members"]), ["ada", "bob"], j)
                self.assertEqual(j["history"], [m1], j)
                self.assertEqual(await chat_recv(a), {"type": "presence", "room": room,
                                                      "nick": "bob", "event": "join"})

                # each member's line reaches both, the sender included, with the same id
                last = id1
                for sender, nick, text in ((a, "ada", "hello from ada"),
                                           (b, "bob", "héllo from bob 𝄞 " * 50)):
                    await chat_send(sender, type="send", room=room, text=text)
                    got = [await chat_recv(ws) for ws in (a, b)]
                    ids = [self.check_message(m, room, nick, text) for m in got]
                    self.assertEqual(ids[0], ids[1], got)
                    self.assertGreater(ids[0], last, got)
                    last = ids[0]

                await chat_send(b, type="leave", room=room)
                self.assertEqual(await chat_recv(a), {"type": "presence", "room": room,
                                                      "nick": "bob", "event": "leave"})
                # bob is out: his send is refused, ada's lines no longer reach him
                await chat_send(b, type="send", room=room, text="gone")
                e = await chat_recv(b)
                self.assertEqual((e["type"], e["code"]), ("error", "not_joined"), e)
                await chat_send(a, type="send", room=room, text="alone")
                self.assertGreater(self.check_message(await chat_recv(a), room, "ada", "alone"),
                                   last)
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(b.recv(), 0.3)
            finally:
                await asyncio.gather(a.close(), b.close())
        try:
            run(go())
        except Exception as e:  # noqa: BLE001  (any failure: with both logs)
            raise AssertionError("%s: %s\n%s" % (type(e).__name__, e, self.diag(self.main))) from None

    def test_chat_two_clients_ws(self):
        self._chat_pair("plain")

    def test_chat_two_clients_wss_tls_at_nginx(self):
        self._chat_pair("tls")

    def test_chat_two_clients_wss_tls_to_uvws_tls(self):
        self._chat_pair("tls2tls")

    def _chat_fan_out(self, site, clients=30, per=20):
        """`clients` members of one room each send `per` lines at once: every member receives
        all clients*per lines, each sender's in order (and with increasing ids), none twice,
        and every line carries the same id, unique in the room, at every member. The room has
        one order: every member receives the lines in increasing id order, whichever loop
        (--threads) its connection and each sender's are on."""
        room = "fan-" + site
        total = clients * per

        async def go():
            socks = []
            try:
                # one by one, each join answered before the next client connects: member i
                # then hears exactly the presence joins of members i+1..clients-1
                for i in range(clients):
                    ws = await self.chat_connect(site)
                    socks.append(ws)
                    await chat_send(ws, type="join", room=room, nick="u%d" % i)
                    j = await chat_recv(ws)
                    self.assertEqual((j["type"], j["nick"], j["history"]),
                                     ("joined", "u%d" % i, []), j)
                    self.assertEqual(sorted(j["members"]),
                                     sorted("u%d" % k for k in range(i + 1)), j)
                for i, ws in enumerate(socks):
                    heard = [await chat_recv(ws) for _ in range(clients - 1 - i)]
                    self.assertEqual([(p["type"], p["event"], p["nick"]) for p in heard],
                                     [("presence", "join", "u%d" % k)
                                      for k in range(i + 1, clients)])

                async def sender(i, ws):
                    for k in range(per):
                        await chat_send(ws, type="send", room=room, text="%d:%d" % (i, k))

                async def receiver(ws):
                    last_k, last_id, ids, room_id = {}, {}, {}, 0
                    while len(ids) < total:
                        m = await chat_recv(ws, 30)
                        self.assertEqual((m["type"], m["room"]), ("message", room), m)
                        who, k = map(int, m["text"].split(":"))
                        self.assertEqual(m["nick"], "u%d" % who, m)
                        self.assertEqual(k, last_k.get(who, -1) + 1,
                                         "out of order, lost or duplicate: %r" % m)
                        self.assertGreater(m["id"], last_id.get(who, 0), m)
                        self.assertGreater(m["id"], room_id, "room order broken: %r" % m)
                        last_k[who], last_id[who], room_id = k, m["id"], m["id"]
                        ids[m["text"]] = m["id"]
                    return ids

                seen = await asyncio.gather(*[receiver(ws) for ws in socks],
                                            *[sender(i, ws) for i, ws in enumerate(socks)])
                seen = seen[:clients]
                for ids in seen:
                    self.assertEqual(len(ids), total)
                    self.assertEqual(ids, seen[0], "members saw different ids for one line")
                self.assertEqual(len(set(seen[0].values())), total)
                # nothing else is queued: the next line each member gets is this marker
                await chat_send(socks[0], type="send", room=room, text="end")
                for ws in socks:
                    self.check_message(await chat_recv(ws), room, "u0", "end")
            finally:
                await asyncio.gather(*[ws.close() for ws in socks])
        try:
            run(go(), timeout=120)
        except Exception as e:  # noqa: BLE001  (any failure: with both logs)
            raise AssertionError("%s: %s\n%s" % (type(e).__name__, e, self.diag(self.main))) from None

    def test_chat_fan_out_ws(self):
        self._chat_fan_out("plain")

    def test_chat_fan_out_wss_tls_at_nginx(self):
        self._chat_fan_out("tls")

    def test_chat_fan_out_wss_tls_to_uvws_tls(self):
        self._chat_fan_out("tls2tls")

    def test_chat_bad_json_gets_error_and_stays_open(self):
        for site in ("plain", "tls", "tls2tls"):
            with self.subTest(site=site):
                room = "bad-" + site

                async def go():
                    a = await self.chat_connect(site)
                    b = await self.chat_connect(site)
                    try:
                        await chat_send(a, type="join", room=room, nick="ada")
                        self.assertEqual((await chat_recv(a))["type"], "joined")
                        for raw, code in (("{not json", "bad_json"),
                                          ('{"type":"join","room":"%s"' % room, "bad_json"),
                                          ('"just a string"', "bad_json")):
                            await b.send(raw)
                            e = await chat_recv(b)
                            self.assertEqual((e.get("type"), e.get("code")), ("error", code),
                                             (raw, e))
                            self.assertIsInstance(e.get("message"), str, e)
                        # still open, through nginx and in uvws: b joins and talks
                        await chat_send(b, type="join", room=room, nick="bob")
                        j = await chat_recv(b)
                        self.assertEqual((j["type"], sorted(j["members"])),
                                         ("joined", ["ada", "bob"]), j)
                        self.assertEqual(await chat_recv(a), {"type": "presence", "room": room,
                                                              "nick": "bob", "event": "join"})
                        await chat_send(b, type="send", room=room, text="still here")
                        for ws in (a, b):
                            self.check_message(await chat_recv(ws), room, "bob", "still here")
                        self.assertIsNone(b.close_code)
                    finally:
                        await asyncio.gather(a.close(), b.close())
                    self.assertEqual((a.close_code, b.close_code), (1000, 1000))
                try:
                    run(go())
                except AssertionError as e:
                    raise AssertionError("%s\n%s" % (e, self.diag(self.main))) from None

    # ---- what uvws sees -------------------------------------------------------------------

    def test_inspect_shows_proxied_handshake(self):
        for site in ("plain", "tls", "tls2tls"):
            with self.subTest(site=site):
                async def go():
                    async with connect(self.url(site, "/inspect?from=nginx")) as ws:
                        hs = json.loads(await asyncio.wait_for(ws.recv(), T))
                        return hs
                hs = run(go())
                self.assertEqual(hs["uvws"], "handshake")
                self.assertEqual(hs["request"]["target"], "/inspect?from=nginx")
                hdrs = {}
                for k, v in hs["request"]["headers"]:
                    hdrs.setdefault(k.lower(), []).append(v)
                self.assertEqual(hdrs.get("connection"), ["upgrade"], hs)
                self.assertEqual([v.lower() for v in hdrs.get("upgrade", [])], ["websocket"], hs)
                self.assertEqual(hdrs.get("x-forwarded-for"), ["127.0.0.1"], hs)
                self.assertEqual(hdrs.get("host"), ["127.0.0.1"], hs)
                self.assertEqual(hdrs.get("sec-websocket-version"), ["13"], hs)
                self.assertIn("sec-websocket-key", hdrs)
                self.assertEqual(hs["response"]["status"], 101)
                self.assertEqual(hs["accept"]["accept"],
                                 dict((k.lower(), v) for k, v in hs["response"]["headers"])
                                 ["sec-websocket-accept"])

    # ---- HTTP through nginx ---------------------------------------------------------------

    def test_static_file(self):
        with open(os.path.join(ROOT, "web", "index.html"), "rb") as f:
            index = f.read()
        for site in ("plain", "tls", "tls2tls"):
            with self.subTest(site=site):
                for path in ("/", "/index.html"):
                    r = curl(self.http_url(site, path))
                    self.assertEqual(r.rc, 0, r)
                    self.assertEqual(r.status, 200, r)
                    self.assertTrue(r.body == index, "index.html changed through nginx: %r" % r)
                    self.assertIn("text/html", r.headers.get("content-type", ""))
                    r = curl("-I", self.http_url(site, path))
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.headers.get("content-length"), str(len(index)), r)

    def test_404(self):
        for site in ("plain", "tls", "tls2tls"):
            with self.subTest(site=site):
                r = curl(self.http_url(site, "/no/such/file.txt"))
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(r.status, 404, r)

    def test_426_plain_get_on_websocket_route(self):
        for site in ("plain", "tls", "tls2tls"):
            for path in ("/echo", "/inspect"):
                with self.subTest(site=site, path=path):
                    r = curl(self.http_url(site, path))
                    self.assertEqual(r.rc, 0, r)
                    self.assertEqual(r.status, 426, r)
                    self.assertIn("websocket", r.headers.get("upgrade", "").lower(), r)

    # ---- client address: X-Forwarded-For and --trusted-proxy ------------------------------

    def _ws_roundtrip(self, site, path, headers):
        async def go():
            async with connect(self.url(site, path), headers=headers) as ws:
                await ws.send("who am i")
                self.assertEqual(await asyncio.wait_for(ws.recv(), T), "who am i")
        run(go())

    def test_trusted_proxy_logs_forwarded_client(self):
        """nginx sends "X-Forwarded-For: 203.0.113.7, 127.0.0.1"; 127.0.0.1 is trusted, so the
        client is 203.0.113.7 in the access line and in the ws open and close lines."""
        self.need_trust()
        srv = self.xff
        self._ws_roundtrip("xff", "/echo?tag=xff-trusted", {"X-Forwarded-For": CLIENT_XFF})
        a = srv.wait_log(r'http (\S+) "GET /echo\?tag=xff-trusted HTTP/1\.1" 101')
        self.assertRegex(a.group(1), "^" + addr_rx(CLIENT_XFF), self.diag(srv))
        srv.wait_log(r"ws open %s\S* /echo" % addr_rx(CLIENT_XFF))
        srv.wait_log(r"ws close %s\S* /echo code=1000" % addr_rx(CLIENT_XFF))
        # a plain HTTP request through nginx: the access line names the forwarded client too
        r = curl("-H", "X-Forwarded-For: " + CLIENT_XFF, self.http_url("xff", "/?tag=xff-http"))
        self.assertEqual(r.status, 200, r)
        a = srv.wait_log(r'http (\S+) "GET /\?tag=xff-http HTTP/1\.1" 200')
        self.assertRegex(a.group(1), "^" + addr_rx(CLIENT_XFF), self.diag(srv))
        # without a client header nginx sends "X-Forwarded-For: 127.0.0.1": the client is 127.0.0.1
        r = curl(self.http_url("xff", "/?tag=xff-none"))
        self.assertEqual(r.status, 200, r)
        a = srv.wait_log(r'http (\S+) "GET /\?tag=xff-none HTTP/1\.1" 200')
        self.assertRegex(a.group(1), "^" + addr_rx("127.0.0.1"), self.diag(srv))

    def test_trusted_proxy_takes_rightmost_untrusted(self):
        """A client sends a chain, "198.51.100.200, 203.0.113.7", and nginx appends 127.0.0.1.
        The rightmost address that is not a trusted proxy is 203.0.113.7, not the forged
        198.51.100.200."""
        self.need_trust()
        srv = self.xff
        r = curl("-H", "X-Forwarded-For: 198.51.100.200, " + CLIENT_XFF,
                 self.http_url("xff", "/?tag=xff-chain"))
        self.assertEqual(r.status, 200, r)
        a = srv.wait_log(r'http (\S+) "GET /\?tag=xff-chain HTTP/1\.1" 200')
        self.assertRegex(a.group(1), "^" + addr_rx(CLIENT_XFF), self.diag(srv))
        self.assertNotIn("198.51.100.200", srv.log_text())

    def test_untrusted_proxy_header_ignored(self):
        """The same request to a uvws without --trusted-proxy: the log names the proxy
        (127.0.0.1) and never the address in the header."""
        srv = self.untrusted
        self._ws_roundtrip("untrusted", "/echo?tag=xff-untrusted", {"X-Forwarded-For": CLIENT_XFF})
        a = srv.wait_log(r'http (\S+) "GET /echo\?tag=xff-untrusted HTTP/1\.1" 101')
        self.assertRegex(a.group(1), "^" + addr_rx("127.0.0.1"), self.diag(srv))
        srv.wait_log(r"ws open %s\S* /echo" % addr_rx("127.0.0.1"))
        srv.wait_log(r"ws close %s\S* /echo code=1000" % addr_rx("127.0.0.1"))
        self.assertNotIn(CLIENT_XFF, srv.log_text())

    def test_direct_forged_header_not_trusted(self):
        """A direct client (127.0.0.1) forging X-Forwarded-For and Forwarded to a uvws that
        trusts only 127.0.0.2 is logged with its real address."""
        self.need_trust()
        with UvwsServer("--trusted-proxy", "127.0.0.2") as srv:
            async def go():
                async with websockets.connect(
                        srv.url("ws", "/echo?tag=forged"), open_timeout=T, close_timeout=T,
                        extra_headers={"X-Forwarded-For": CLIENT_XFF,
                                       "Forwarded": "for=198.51.100.9"}) as ws:
                    await ws.send("x")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), T), "x")
            run(go())
            data = raw_http(srv.port, "GET /?tag=forged-http HTTP/1.1\r\nHost: t\r\n"
                            "X-Forwarded-For: %s\r\nConnection: close\r\n\r\n" % CLIENT_XFF)
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
            a = srv.wait_log(r'http (\S+) "GET /echo\?tag=forged HTTP/1\.1" 101')
            self.assertRegex(a.group(1), "^" + addr_rx("127.0.0.1"), srv.log_text())
            a = srv.wait_log(r'http (\S+) "GET /\?tag=forged-http HTTP/1\.1" 200')
            self.assertRegex(a.group(1), "^" + addr_rx("127.0.0.1"), srv.log_text())
            srv.wait_log(r"ws open %s\S* /echo" % addr_rx("127.0.0.1"))
            srv.wait_log(r"ws close %s\S* /echo" % addr_rx("127.0.0.1"))
            log = srv.log_text()
            self.assertNotIn(CLIENT_XFF, log)
            self.assertNotIn("198.51.100.9", log)
        close_pipe(srv)

    def test_direct_forwarded_header_from_trusted_proxy(self):
        """RFC 7239 Forwarded (and X-Forwarded-For forms) from a trusted peer: a direct client
        on 127.0.0.1 stands in for a proxy. The log names the client the headers give."""
        self.need_trust()
        cases = [
            ("Forwarded: for=198.51.100.9;proto=http", "198.51.100.9"),
            ('Forwarded: For="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
            ("Forwarded: for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http",
             "198.51.100.17"),
            ("Forwarded: proto=https;for=192.0.2.60", "192.0.2.60"),
            # a forged first line, the proxy's own second line: the header is the list of both
            ("X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.9", "203.0.113.9"),
            # nothing usable: the peer itself
            ("X-Forwarded-For: unknown", "127.0.0.1"),
            ("Forwarded: for=_hidden", "127.0.0.1"),
        ]
        with UvwsServer("--trusted-proxy", "127.0.0.1") as srv:
            for i, (header, want) in enumerate(cases):
                with self.subTest(header=header):
                    data = raw_http(srv.port, "GET /?tag=fwd%d HTTP/1.1\r\nHost: t\r\n%s\r\n"
                                    "Connection: close\r\n\r\n" % (i, header))
                    self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
                    a = srv.wait_log(r'http (\S+) "GET /\?tag=fwd%d HTTP/1\.1" 200' % i)
                    self.assertRegex(a.group(1), r"^\[?" + addr_rx(want), srv.log_text())
        close_pipe(srv)

    def test_per_ip_limit_uses_forwarded_client(self):
        """--max-connections-per-ip 1 behind a trusted nginx counts forwarded clients: two
        clients (different X-Forwarded-For) both get in; a second socket of the first gets 429."""
        self.need_trust()
        srv = self.perip

        async def go():
            a = await connect(self.url("perip", "/echo?tag=perip-a"),
                              headers={"X-Forwarded-For": "198.51.100.1"})
            try:
                await a.send("a")
                self.assertEqual(await asyncio.wait_for(a.recv(), T), "a")
                b = await connect(self.url("perip", "/echo?tag=perip-b"),
                                  headers={"X-Forwarded-For": "198.51.100.2"})
                try:
                    await b.send("b")
                    self.assertEqual(await asyncio.wait_for(b.recv(), T), "b")
                    with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                        c = await connect(self.url("perip", "/echo?tag=perip-a2"),
                                          headers={"X-Forwarded-For": "198.51.100.1"})
                        await c.close()
                    self.assertEqual(cm.exception.status_code, 429)
                finally:
                    await b.close()
            finally:
                await a.close()
        try:
            run(go())
        except Exception as e:  # noqa: BLE001  (any failure: with both logs)
            raise AssertionError("%s: %s\n%s" % (type(e).__name__, e, self.diag(srv))) from None


if __name__ == "__main__":
    unittest.main()
