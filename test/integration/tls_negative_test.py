#!/usr/bin/python3
"""Integration: misbehaving clients on the TLS port.

One server with --tls-self-signed --handshake-timeout 1s. A wss:// echo connection is opened
first and checked after every attack: plain HTTP, random garbage, a truncated ClientHello then
silence, a stalled handshake (full ClientHello, then nothing), half a TLS record after the
handshake then FIN or RST, a handshake then no request, 200 stalled handshakes at once. Each
attack connection must end (by the server, within a bound) and leave a log line naming its
peer address; the server must stay up, answer /metrics over https, and exit 0 on SIGTERM
(LeakSanitizer under ASan). A second server (--handshake-timeout 30s) takes 200 simultaneous
complete handshakes, each followed by a request.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/tls_negative_test.py -v
"""
import os
import re
import socket
import ssl
import struct
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tls_util import UvwsServer, WssClient, https_get  # noqa: E402

HANDSHAKE_TIMEOUT = 1.0
END_BOUND = 6.0   # a timed-out connection must be gone this long after it went quiet
ESTABLISHED_RE = r"tls %s: TLSv1\.\d"   # the debug line of a completed handshake


def insecure():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_hello():
    """The bytes of a real ClientHello (Python's ssl through memory BIOs)."""
    obj = insecure().wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def wait_end(sock, timeout=END_BOUND):
    """Reads until the server ends the connection; returns ("EOF"|"RST", seconds, bytes)."""
    sock.settimeout(timeout)
    t0 = time.monotonic()
    data = b""
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return "EOF", time.monotonic() - t0, data
            data += d
    except ConnectionResetError:
        return "RST", time.monotonic() - t0, data
    except socket.timeout:
        raise AssertionError("the server did not end the connection within %.0f s (got %r)"
                             % (timeout, data[:100]))


class MemTls:
    """A TLS client over a raw socket through memory BIOs, so the test decides which
    ciphertext bytes go out and when."""

    def __init__(self, port):
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.peer = "127.0.0.1:%d" % self.raw.getsockname()[1]
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = insecure().wrap_bio(self.inc, self.out, server_hostname="localhost")
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.raw.sendall(self.out.read())
                d = self.raw.recv(65536)
                if not d:
                    raise AssertionError("server closed during the handshake")
                self.inc.write(d)
        self.raw.sendall(self.out.read())

    def record(self, plaintext):
        """The ciphertext (one record) for `plaintext`, not sent."""
        self.obj.write(plaintext)
        return self.out.read()


class TlsNegativeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = UvwsServer("--tls-self-signed", "--tls-port", "0",
                             "--handshake-timeout", "%gs" % HANDSHAKE_TIMEOUT).start()
        cls.port = cls.srv.tls_port
        try:
            cls.keeper = WssClient(cls.port)
            cls.keeper.check(1000)
        except Exception:
            cls.srv.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.keeper.check(100000)  # still fine after everything
            status, _, body = https_get(cls.port, "/metrics")
            if status != 200 or b"uvws_" not in body:
                raise AssertionError("/metrics over https: %r %r" % (status, body[:200]))
            log = cls.srv.log_text()
            for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                if mark in log:
                    raise AssertionError("sanitizer report in the log:\n" + log[-5000:])
        finally:
            cls.keeper.close()
            cls.srv.stop()  # SIGTERM: exit 0 within 10 s, else this raises

    def setUp(self):
        self.assertTrue(self.srv.alive(), "uvws died:\n" + self.srv.log_text()[-5000:])

    def tearDown(self):
        self.assertTrue(self.srv.alive(), "uvws died:\n" + self.srv.log_text()[-5000:])
        self.keeper.check(5000)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return s, "127.0.0.1:%d" % s.getsockname()[1]

    def assert_logged_end(self, peer):
        """The connection's end left a log line naming the peer (other than the line that
        says its handshake completed)."""
        with self.subTest(check="log line for " + peer):
            rx = re.compile(re.escape(peer) + r"\b")
            est = re.compile(ESTABLISHED_RE % re.escape(peer))
            deadline = time.monotonic() + 3
            while True:
                lines = [l for l in self.srv.log_text().splitlines() if rx.search(l) and not est.search(l)]
                if lines or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertTrue(lines, "no log line says why the connection from %s ended; log tail:\n%s"
                            % (peer, "\n".join(self.srv.log_text().splitlines()[-15:])))

    # ---- before TLS is up ----

    def test_plain_http_to_tls_port(self):
        s, peer = self.connect()
        with s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            how, dt, data = wait_end(s)
            self.assertNotIn(b"HTTP/1.1", data)  # no plaintext answer
        self.srv.wait_log(r"tls %s: handshake failed: " % re.escape(peer))

    def test_random_garbage(self):
        """Random bytes whose first byte is no TLS content type (so no length to wait for)."""
        for n in (5, 300, 20000):
            s, peer = self.connect()
            with s:
                try:
                    s.sendall(bytes((0x80 | os.urandom(1)[0],)) + os.urandom(n - 1))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                wait_end(s)
            self.srv.wait_log(r"tls %s: handshake failed: " % re.escape(peer))

    def test_truncated_client_hello_then_silence(self):
        ch = client_hello()
        for cut in (1, 5, 40, len(ch) // 2, len(ch) - 1):
            with self.subTest(bytes_sent=cut):
                s, peer = self.connect()
                with s:
                    s.sendall(ch[:cut])
                    how, dt, data = wait_end(s)
                    self.assertGreater(dt, HANDSHAKE_TIMEOUT * 0.5, "dropped before the timeout")
                    self.assertEqual(data, b"", "the server answered a partial ClientHello")
                self.assert_logged_end(peer)

    def test_stalled_handshake(self):
        """A whole ClientHello, the server's reply is read, then nothing (no key exchange)."""
        s, peer = self.connect()
        with s:
            s.sendall(client_hello())
            how, dt, data = wait_end(s)
            self.assertGreater(len(data), 100, "no ServerHello..ServerHelloDone")
            self.assertEqual(data[0], 0x16, "not a handshake record: %r" % data[:10])
            self.assertGreater(dt, HANDSHAKE_TIMEOUT * 0.5)
        self.assert_logged_end(peer)

    # ---- after TLS is up ----

    def test_handshake_then_nothing(self):
        """TLS up, no HTTP request: dropped by --handshake-timeout (408 or just closed)."""
        t0 = time.monotonic()
        c = MemTls(self.port)
        with c.raw:
            how, _, data = wait_end(c.raw)
            dt = time.monotonic() - t0
            self.assertGreater(dt, HANDSHAKE_TIMEOUT * 0.5)
            if data:
                c.inc.write(data)
                plain = b""
                try:
                    while True:
                        d = c.obj.read(65536)
                        if not d:
                            break
                        plain += d
                except (ssl.SSLZeroReturnError, ssl.SSLWantReadError, ssl.SSLEOFError):
                    pass
                self.assertTrue(plain == b"" or plain.startswith(b"HTTP/1.1 408"), plain[:200])
        self.assert_logged_end(c.peer)

    def test_half_record_then_close(self):
        """Half a TLS record (of a request) after the handshake, then FIN; and then RST."""
        for how in ("FIN", "RST"):
            with self.subTest(close=how):
                c = MemTls(self.port)
                rec = c.record(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
                c.raw.sendall(rec[:len(rec) // 2])
                time.sleep(0.1)
                if how == "RST":
                    c.raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.raw.close()
                time.sleep(0.2)
                self.assertTrue(self.srv.alive())
                self.assert_logged_end(c.peer)

    def test_half_record_inside_websocket_then_close(self):
        """The same inside an open wss:// session (after the 101)."""
        for how in ("FIN", "RST"):
            with self.subTest(close=how):
                c = MemTls(self.port)
                c.raw.sendall(c.record(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                                       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                       b"Sec-WebSocket-Version: 13\r\n\r\n"))
                self.srv.wait_log(r"ws open %s " % re.escape(c.peer))
                rec = c.record(bytes((0x82, 0x80 | 100)) + b"\x01\x02\x03\x04" + b"x" * 100)
                c.raw.sendall(rec[:30])
                time.sleep(0.1)
                if how == "RST":
                    c.raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.raw.close()
                self.srv.wait_log(r"ws (close|fail)? ?%s\b|%s: connection lost"
                                  % (re.escape(c.peer), re.escape(c.peer)))

    def test_garbage_record_after_handshake(self):
        """A well-framed application-data record that does not decrypt: the server drops it."""
        c = MemTls(self.port)
        with c.raw:
            c.raw.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(0x40))
            wait_end(c.raw)
        self.srv.wait_log(r"tls %s: read failed: " % re.escape(c.peer))

    # ---- many at once ----

    def test_200_stalled_handshakes(self):
        ch = client_hello()
        socks = []
        try:
            for i in range(200):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                s.sendall(ch[:len(ch) // 2] if i % 2 else ch)
                socks.append(s)
            self.keeper.check(5000)  # served while 200 handshakes hang
            t0 = time.monotonic()
            for s in socks:
                wait_end(s, timeout=max(1.0, END_BOUND + 4 - (time.monotonic() - t0)))
        finally:
            for s in socks:
                s.close()

    def test_200_simultaneous_handshakes(self):
        """200 clients handshake at once (and each then asks for /healthz) on a server with a
        handshake timeout long enough for the slowest of them under ASan."""
        with UvwsServer("--tls-self-signed", "--tls-port", "0", "--handshake-timeout", "60s") as srv:
            keeper = WssClient(srv.tls_port)
            try:
                barrier = threading.Barrier(200, timeout=30)
                results = [None] * 200

                def one(i):
                    try:
                        raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=60)
                        barrier.wait()
                        with insecure().wrap_socket(raw, server_hostname="localhost") as s:
                            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                                      b"Connection: close\r\n\r\n")
                            data = b""
                            while True:
                                d = s.recv(65536)
                                if not d:
                                    break
                                data += d
                        results[i] = data.split(b"\r\n", 1)[0]
                    except Exception as e:  # noqa: BLE001 - reported below
                        results[i] = repr(e)

                threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(200)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(90)
                self.assertFalse(any(t.is_alive() for t in threads), "clients still running after 90 s")
                bad = [(i, r) for i, r in enumerate(results) if r != b"HTTP/1.1 200 OK"]
                self.assertEqual(bad, [], "%d of 200 failed" % len(bad))
                keeper.check(10000)
                status, _, body = https_get(srv.tls_port, "/metrics")
                self.assertEqual(status, 200)
            finally:
                keeper.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
