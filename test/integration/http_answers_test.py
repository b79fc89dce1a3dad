#!/usr/bin/python3
"""Integration: answers that must be exact. A directory redirect whose Location is long (a long
query string) is still sent; the absolute form of the request target (RFC 9112 section 3.2.2)
is accepted for files and WebSocket upgrades; /inspect with --deflate-takeover on sends a
compressed stream Python's `websockets` can inflate; --max-connections counts open connections
only, not the ones already closed or closing.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/http_answers_test.py -v
"""
import asyncio
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
from hardening_util import (UvwsServer, WsClient, close_payload, parse_head, read_until,  # noqa: E402
                            upgrade_request, wait_for)
from ithttp import RawConn  # noqa: E402
from wsimport import need_websockets, websockets  # noqa: E402

READ_TIMEOUT = 3.0  # a missing answer fails fast instead of hanging
STEP = 10.0  # the bound on every single await
INDEX = b"<!doctype html>\n<title>answers</title><p>index of the answers test</p>\n"
STYLE = b"body { color: #222 }\n"


def make_root():
    """A web root with index.html and a css/ directory (for the directory redirect)."""
    root = tempfile.mkdtemp(prefix="uvws-it-answers-")
    os.makedirs(os.path.join(root, "css"))
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(INDEX)
    with open(os.path.join(root, "css", "style.css"), "wb") as f:
        f.write(STYLE)
    return root


class ServerCase(unittest.TestCase):
    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.root = make_root()
        try:
            cls.srv = UvwsServer(*cls.server_args, web=cls.root).start()
        except BaseException:
            shutil.rmtree(cls.root, ignore_errors=True)
            raise
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        try:
            alive, log = cls.srv.alive(), cls.srv.log_text()
            cls.srv.stop()  # raises unless exit 0 within 10 s of SIGTERM
            if not alive:
                raise AssertionError("uvws died during the tests:\n" + log)
        finally:
            shutil.rmtree(cls.root, ignore_errors=True)

    def read(self, c, what, head=False):
        """The next response on RawConn `c`, or a failure (not a hang) within READ_TIMEOUT."""
        try:
            return c.read_response(head=head)
        except socket.timeout:
            self.fail("%s: no answer within %.0f s (buffered: %r)" % (what, READ_TIMEOUT,
                                                                       bytes(c.buf[:300])))
        except (EOFError, ConnectionResetError) as e:
            self.fail("%s: the connection ended: %s" % (what, e))


class LongRedirectTest(ServerCase):
    """GET /css (a directory) answers 301 to /css/ with the query kept, however long the query
    is (under --max-url); the next pipelined request is answered after it."""

    def check_redirect(self, query):
        target = "/css?" + query
        with RawConn(self.port, timeout=READ_TIMEOUT) as c:
            c.send("GET %s HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" % target)
            first = self.read(c, "GET /css?<%d bytes of query>" % len(query))
            self.assertEqual(first.status, 301, "GET /css?<%d bytes of query> answered %d %r "
                             "(expected the 301, then /healthz's 200): %r"
                             % (len(query), first.status, first.reason, first))
            self.assertEqual(first.header("location"), "/css/?" + query)
            self.assertEqual(first.header("content-length"), str(len(first.body)))
            second = self.read(c, "GET /healthz after the 301")
            self.assertEqual((second.status, second.body), (200, b"ok\n"), second)

    def test_short_query_redirect(self):  # passes today: the reference
        self.check_redirect("a=1")

    def test_1000_byte_query_redirect(self):
        self.check_redirect("a=" + "x" * 1000)

    def test_7000_byte_query_redirect(self):
        self.check_redirect("a=" + "y" * 7000)


class AbsoluteFormTest(ServerCase):
    """RFC 9112 section 3.2.2: a server MUST accept the absolute form of the request target."""

    def test_get_absolute_form(self):
        with RawConn(self.port, timeout=READ_TIMEOUT) as c:
            c.send("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % self.port)
            origin = self.read(c, "GET /index.html")
            self.assertEqual((origin.status, origin.body), (200, INDEX), origin)
            c.send("GET http://127.0.0.1:%d/index.html HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                   % (self.port, self.port))
            r = self.read(c, "GET http://127.0.0.1:PORT/index.html")
            self.assertEqual(r.status, 200, "the absolute form answered %r" % r)
            self.assertEqual(r.body, origin.body)
            self.assertEqual(r.header("content-type"), origin.header("content-type"))

    def test_websocket_upgrade_absolute_form(self):
        path = "http://127.0.0.1:%d/echo" % self.port
        c = WsClient(self.port, path=path, timeout=READ_TIMEOUT, expect=None)
        try:
            self.assertEqual(c.status, 101, "GET %s with the upgrade headers answered %d"
                             % (path, c.status))
            for payload in (b"absolute", os.urandom(3000)):
                c.send(2, payload)
                self.assertEqual(c.recv_message(READ_TIMEOUT), (2, payload))
            self.assertEqual(c.close_handshake(1000, READ_TIMEOUT), 1000)
        finally:
            c.close()


class InspectDeflateTest(unittest.TestCase):
    """/inspect (echo plus a JSON trace of every frame) over permessage-deflate, with Python's
    websockets and its default offer (context takeover both ways, client_max_window_bits)."""

    def setUp(self):
        need_websockets(self)

    @staticmethod
    def messages(seed, count=20):
        """Text messages of 100 to 5000 bytes, JSON-like and compressible (well above
        --deflate-min-size), none with a "uvws" key (that names the trace messages)."""
        rnd = random.Random(seed)
        words = ["hello", "room", "déjà", "uvws", "zlib", "frame", "😀", "ok", "inflate"]
        out = []
        for i in range(count):
            size = 100 + (4900 * i) // (count - 1)
            parts = []
            while len(json.dumps(parts, ensure_ascii=False).encode()) < size:
                parts.append({"user": "u%d" % rnd.randrange(100), "n": rnd.randrange(10 ** 6),
                              "text": " ".join(rnd.choice(words) for _ in range(rnd.randrange(3, 12)))})
            out.append(json.dumps({"seq": i, "items": parts}, ensure_ascii=False))
        return out

    def inspect_roundtrip(self, args):
        sent = self.messages(len(args))

        async def go(srv):
            async with websockets.connect(srv.url("ws", "/inspect"), open_timeout=STEP,
                                          close_timeout=STEP, ping_interval=None,
                                          max_size=None) as ws:
                exts = ws.response_headers.get_all("Sec-WebSocket-Extensions")
                self.assertEqual(len(exts), 1, "no permessage-deflate negotiated: %r" % exts)
                self.assertTrue(exts[0].startswith("permessage-deflate"), exts)
                echoes, kinds = [], {"handshake": 0, "in": 0, "out": 0}
                try:
                    for m in sent:
                        await asyncio.wait_for(ws.send(m), STEP)
                    while len(echoes) < len(sent) or kinds["in"] < len(sent) or kinds["out"] < len(sent):
                        got = await asyncio.wait_for(ws.recv(), STEP)
                        self.assertIsInstance(got, str)
                        if len(echoes) < len(sent) and got == sent[len(echoes)]:
                            echoes.append(got)
                            continue
                        try:
                            j = json.loads(got)
                        except ValueError:
                            self.fail("message %r... is neither echo %d nor a JSON trace"
                                      % (got[:120], len(echoes)))
                        self.assertIsInstance(j, dict, got[:200])
                        if j.get("uvws") == "handshake":
                            kinds["handshake"] += 1
                        elif j.get("uvws") == "frame" and j.get("dir") in ("in", "out"):
                            self.assertEqual(j.get("op"), "text", j)
                            kinds[j["dir"]] += 1
                        else:
                            self.fail("message %r... is neither echo %d nor a trace message"
                                      % (got[:120], len(echoes)))
                except websockets.exceptions.ConnectionClosed as e:
                    cause = e.__cause__ or e.__context__
                    self.fail("the connection closed after %d of %d echoes and traces %r: %s%s"
                              % (len(echoes), len(sent), kinds, e,
                                 " (caused by %r)" % cause if cause else ""))
                self.assertEqual(kinds, {"handshake": 1, "in": len(sent), "out": len(sent)})
                await asyncio.wait_for(ws.close(), STEP)
                self.assertEqual(ws.close_code, 1000)

        with UvwsServer("--threads", "1", *args) as srv:
            asyncio.run(asyncio.wait_for(go(srv), 60))

    def test_inspect_deflate_takeover_on(self):
        self.inspect_roundtrip(("--deflate-takeover", "on"))

    def test_inspect_deflate_takeover_off(self):  # passes today: the reference
        self.inspect_roundtrip(("--deflate-takeover", "off"))


class ReadyWs(WsClient):
    """A raw WebSocket client (hardening_util.WsClient) whose socket is made before it connects,
    so that it can connect right after another client's close, the way a client that reconnects
    at once does: nothing but the connect() call between the two."""

    def __init__(self, timeout=5):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf, self.status, self.timeout = bytearray(), None, timeout

    def connect(self, port):
        self.sock.connect(("127.0.0.1", port))

    def handshake(self):
        """Sends the upgrade request, reads the answer's head; returns the status (503 when the
        server ended the connection before its answer could be read: a refusal too)."""
        try:
            self.sock.sendall(upgrade_request())
            read_until(self.sock, self.buf, b"\r\n\r\n", time.monotonic() + self.timeout)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            self.status = 503
            return self.status
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.status, _, self.headers = parse_head(head)
        self.buf = bytearray(rest)
        return self.status


class MaxConnectionsClosedTest(unittest.TestCase):
    """--max-connections 2 on one event loop: a WebSocket that was closed, or whose closing
    handshake is all but over, leaves its slot to the next client."""

    @staticmethod
    def open_two(port, before_connect=None):
        """Two new WebSockets at once (both connect, then both ask for the upgrade);
        `before_connect` runs between making their sockets and connecting them. Returns
        (clients, statuses); the refused ones are closed."""
        new = [ReadyWs(), ReadyWs()]
        try:
            if before_connect:
                before_connect()
            for c in new:
                c.connect(port)
            statuses = [c.handshake() for c in new]
        except BaseException:
            for c in new:
                c.close()
            raise
        for c in new:
            if c.status != 101:
                c.close()
        return [c for c in new if c.status == 101], statuses

    def reopen(self, port):
        clients, statuses = self.open_two(port)
        if statuses == [101, 101]:
            return clients
        for c in clients:
            c.close()
        time.sleep(0.1)
        return None

    @staticmethod
    def fin_only(c):
        c.close()

    @staticmethod
    def close_frame_then_fin(c):
        c.send(8, close_payload(1000))
        c.close()

    @staticmethod
    def close_handshake(c):
        c.close_handshake(1000, 5)

    def test_reconnect_right_after_closing(self):
        """A client drops its two WebSockets (a FIN; or a close frame and its FIN at once; or
        the whole closing handshake, then its FIN) and opens two new ones at once, again and
        again: only two are ever open, so none may be refused."""
        closers = (self.fin_only, self.close_frame_then_fin, self.close_handshake)
        rounds = 60
        refused = []
        with UvwsServer("--max-connections", "2", "--threads", "1") as srv:
            clients, statuses = self.open_two(srv.port)
            self.assertEqual(statuses, [101, 101])
            try:
                for i in range(rounds):
                    closer = closers[i % len(closers)]
                    old = clients
                    clients = []

                    def close_old():
                        for c in old:
                            closer(c)
                    clients, statuses = self.open_two(srv.port, close_old)
                    if statuses != [101, 101]:
                        refused.append("round %d (closed by %s): %r" % (i, closer.__name__, statuses))
                        for c in clients:
                            c.close()
                        clients = wait_for(lambda: self.reopen(srv.port), 5,
                                           "two WebSockets accepted again")
                    for c in clients:
                        c.send(2, b"round %d" % i)
                        self.assertEqual(c.recv_message(5), (2, b"round %d" % i))
                for c in clients:
                    self.assertEqual(c.close_handshake(1000, 5), 1000)
                clients = []
            finally:
                for c in clients:
                    c.close()
        by = {}
        for r in refused:
            k = r.split("(closed by ")[1].split(")")[0]
            by[k] = by.get(k, 0) + 1
        if refused:
            self.fail("%d of %d reconnections were refused (503) although only 2 WebSockets were "
                      "open each time; by closer %r; the first: %s"
                      % (len(refused), rounds, by, "; ".join(refused[:3])))

    def test_closing_websockets_do_not_count(self):
        """Both clients sent their close frame and got the server's close frame and FIN: the
        server only waits for their FIN. Two new clients must get their 101."""
        with UvwsServer("--max-connections", "2", "--threads", "1") as srv:
            old, statuses = self.open_two(srv.port)
            self.assertEqual(statuses, [101, 101])
            new = []
            try:
                for c in old:
                    c.send(8, close_payload(1000))
                    self.assertEqual(c.recv_close(5), 1000)
                    c.expect_eof(5)  # the server's FIN: its side is done
                new, statuses = self.open_two(srv.port)
                self.assertEqual(statuses, [101, 101], "two new WebSockets while the two old ones "
                                 "wait for the clients' FIN")
                for c in new:
                    c.send(1, b"new")
                    self.assertEqual(c.recv_message(5), (1, b"new"))
                    self.assertEqual(c.close_handshake(1000, 5), 1000)
                new = []
            finally:
                for c in old + new:
                    c.close()


def ipv6_loopback():
    """True if this machine can listen on ::1 (the kernel has IPv6 on lo)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class LocalhostTest(unittest.TestCase):
    """--host localhost (the default) serves what localhost means: 127.0.0.1 and ::1 on one
    port, so a client that resolves localhost to either (Node 18 takes the first address of
    /etc/hosts, often ::1) reaches the server."""

    def get(self, family, addr, port):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect((addr, port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data

    def test_both_loopback_addresses(self):
        with UvwsServer(host="localhost") as srv:
            self.assertTrue(self.get(socket.AF_INET, "127.0.0.1", srv.port).startswith(b"HTTP/1.1 200 "))
            if ipv6_loopback():
                self.assertTrue(self.get(socket.AF_INET6, "::1", srv.port).endswith(b"\r\n\r\nok\n"))
                srv.wait_log(r"listening on http://\[::1\]:%d" % srv.port)
            else:  # documented: IPv4 alone is localhost then
                srv.wait_log(r"IPv4 only")

    def test_one_address_with_host(self):
        with UvwsServer(host="127.0.0.1") as srv:
            self.assertTrue(self.get(socket.AF_INET, "127.0.0.1", srv.port).startswith(b"HTTP/1.1 200 "))
            if ipv6_loopback():
                with self.assertRaises(ConnectionRefusedError):
                    self.get(socket.AF_INET6, "::1", srv.port)


if __name__ == "__main__":
    unittest.main()
