#!/usr/bin/python3
"""Integration (hardening, memory): backpressure on /echo against a client that does not read,
clients that vanish (mid-handshake, mid-frame, RST mid-write, half-close) and 1000 WebSockets
opened and dropped at once, with the server's RSS (/proc/PID/status VmRSS) and /metrics checked.
Measures memory and time: ctest runs it alone (RUN_SERIAL).

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/hardening_stress_test.py -v
"""
import os
import select
import shutil
import socket
import struct
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hardening_util import (ASAN, SLACK, UvwsServer, WsClient, big_content, connect,  # noqa: E402
                            echo_roundtrip, encode_frame, get_metrics, http_get, make_web_root,
                            metric, raise_nofile, read_to_eof, read_until, rss_kib,
                            try_parse_frame, upgrade_request, wait_for)

MIB = 1024 * 1024


class ControlClient(threading.Thread):
    """Echo round trips on one WebSocket every 50 ms, recording the slowest and any failure:
    shows the server keeps serving others while a test abuses it."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.errors, self.rounds, self.worst = port, threading.Event(), [], 0, 0.0
        self.c = WsClient(port, timeout=10)

    def run(self):
        try:
            while not self.stop.is_set():
                t0 = time.monotonic()
                msg = b"control %d" % self.rounds
                self.c.send(2, msg)
                got = self.c.recv_message(10)
                if got != (2, msg):
                    self.errors.append("bad echo %r" % (got,))
                self.worst = max(self.worst, time.monotonic() - t0)
                self.rounds += 1
                self.stop.wait(0.05)
            self.c.close_handshake(1000, 10)
        except Exception as e:  # noqa: BLE001  (reported by finish())
            self.errors.append(repr(e))
            self.c.close()

    def finish(self, test):
        self.stop.set()
        self.join(20)
        test.assertFalse(self.is_alive(), "control client hung")
        test.assertEqual(self.errors, [], "the control client was not served")
        test.assertGreater(self.rounds, 0)
        test.assertLess(self.worst, 2.0 + SLACK, "a control round trip took %.2fs" % self.worst)


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except (OSError, AssertionError):
                return
            self.stop.wait(0.02)


def start_watching(srv):
    """Warms the server's buffers once, then samples its RSS and runs a ControlClient beside
    the test. Returns (RSS at the start in KiB, the sampler, the control client)."""
    echo_roundtrip(srv.port, b"w" * 100000)
    time.sleep(0.3)
    base = rss_kib(srv.proc.pid)
    sampler = RssSampler(srv.proc.pid)
    sampler.start()
    control = ControlClient(srv.port)
    control.start()
    return base, sampler, control


def stop_watching(test, sampler, control):
    control.finish(test)
    sampler.stop.set()
    sampler.join(5)


class BackpressureTest(unittest.TestCase):

    def test_client_that_does_not_read(self):
        total = 64 * MIB
        msg_size = 64 * 1024
        count = total // msg_size

        def message(i):
            return struct.pack("!I", i) + bytes([i & 0xFF]) * (msg_size - 4)

        with UvwsServer() as srv:
            base, sampler, control = start_watching(srv)
            with WsClient(srv.port) as c:
                s = c.sock
                s.setblocking(False)
                zero = b"\0\0\0\0"
                out = bytearray()
                sent_msgs = 0
                blocked_at = None
                # phase 1: send without reading until the sends block for a while
                last_progress = time.monotonic()
                deadline = time.monotonic() + 60
                while sent_msgs < count or out:
                    self.assertLess(time.monotonic(), deadline, "phase 1 did not finish")
                    if not out and sent_msgs < count:
                        out += encode_frame(2, message(sent_msgs), key=zero)
                        sent_msgs += 1
                    _, w, _ = select.select([], [s], [], 0.2)
                    if w:
                        try:
                            n = s.send(out)
                        except BlockingIOError:
                            n = 0
                        if n:
                            del out[:n]
                            last_progress = time.monotonic()
                            continue
                    if time.monotonic() - last_progress > 1.5:
                        blocked_at = sent_msgs
                        break
                self.assertIsNotNone(blocked_at, "all 64 MiB went out without the client reading: "
                                     "the server buffered everything")
                self.assertLess(blocked_at * msg_size, total // 2,
                                "the client's sends blocked only after %d MiB" % (blocked_at * msg_size // MIB))
                m = get_metrics(srv.port)
                self.assertGreater(metric(m, "uvws_backpressure_pauses_total"), 0)
                self.assertLess(metric(m, "uvws_queued_bytes"), 8 * MIB)
                rss_blocked = rss_kib(srv.proc.pid)
                peak_blocked = max(sampler.peak, rss_blocked)
                # phase 2: read everything (and send the rest): every echo, in order, intact
                received = 0
                inbuf = bytearray()
                deadline = time.monotonic() + 120
                while received < count:
                    self.assertLess(time.monotonic(), deadline, "phase 2 did not finish: %d/%d echoes"
                                    % (received, count))
                    if not out and sent_msgs < count:
                        out += encode_frame(2, message(sent_msgs), key=zero)
                        sent_msgs += 1
                    r, w, _ = select.select([s], [s] if out else [], [], 1.0)
                    if w:
                        try:
                            n = s.send(out)
                            del out[:n]
                        except BlockingIOError:
                            pass
                    if r:
                        chunk = s.recv(1 << 20)
                        self.assertTrue(chunk, "the server closed the connection")
                        inbuf += chunk
                        pos = 0
                        mv = memoryview(inbuf)
                        while True:
                            f = try_parse_frame(mv[pos:])
                            if f is None:
                                break
                            fin, op, payload, used = f
                            self.assertEqual((fin, op), (True, 2))
                            self.assertEqual(payload, message(received), "echo %d differs" % received)
                            received += 1
                            pos += used
                        mv.release()
                        del inbuf[:pos]
                s.setblocking(True)
                s.settimeout(10)
                self.assertEqual(c.close_handshake(1000), 1000)
            stop_watching(self, sampler, control)
            sys.stderr.write("\n  backpressure: sends blocked after %d MiB; RSS base %d KiB, peak until "
                             "blocked %d KiB, peak overall %d KiB\n"
                             % (blocked_at * msg_size // MIB, base, peak_blocked, sampler.peak))
            # While the client does not read, the server holds at most its queue: bounded.
            self.assertLess(peak_blocked - base, 32 * 1024, "RSS grew by %d KiB while the client did "
                            "not read (base %d KiB)" % (peak_blocked - base, base))
            # Over the whole 64 MiB as well -- except under AddressSanitizer, whose quarantine keeps
            # freed buffers resident (up to 256 MiB by default), so RSS there measures churn.
            if not ASAN:
                self.assertLess(sampler.peak - base, 32 * 1024, "RSS grew by %d KiB (base %d KiB)"
                                % (sampler.peak - base, base))
            m = get_metrics(srv.port)
            self.assertEqual(metric(m, "uvws_messages_total", dir="in"), count + control.rounds + 1)
            self.assertEqual(metric(m, "uvws_connections", kind="websocket"), 0)


class PacedFlooder(threading.Thread):
    """Sends 1 KiB binary messages on /broadcast at about 2 MB/s and reads (and discards)
    everything that comes back, counting the bytes."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.c = WsClient(port, "/broadcast")
        self.stop, self.errors, self.sent, self.got = threading.Event(), [], 0, 0
        self.burst = encode_frame(2, b"F" * 1024, key=b"\0\0\0\0") * 64
        self.reader = threading.Thread(target=self._read, daemon=True)

    def run(self):
        self.reader.start()
        try:
            while not self.stop.is_set():
                self.c.sock.sendall(self.burst)
                self.sent += 64
                self.stop.wait(0.03)
        except OSError as e:
            self.errors.append("send: %r" % e)

    def _read(self):
        try:
            while not self.stop.is_set():
                chunk = self.c.sock.recv(1 << 20)
                if not chunk:
                    self.errors.append("read: eof")
                    return
                self.got += len(chunk)
        except OSError as e:
            if not self.stop.is_set():
                self.errors.append("read: %r" % e)


class Watcher(threading.Thread):
    """A /broadcast member that reads everything and notes when `needle` first goes by."""

    def __init__(self, port, needle):
        super().__init__(daemon=True)
        self.c = WsClient(port, "/broadcast")
        self.needle, self.seen_at, self.stop, self.errors = needle, None, threading.Event(), []

    def run(self):
        tail = b""
        self.c.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                chunk = self.c.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError as e:
                self.errors.append(repr(e))
                return
            if not chunk:
                self.errors.append("eof")
                return
            if self.seen_at is None and self.needle in tail + chunk:
                self.seen_at = time.monotonic()
            tail = chunk[-len(self.needle):]


class DropRouteTest(unittest.TestCase):

    def test_member_that_does_not_read_can_still_send(self):
        """On a drop route (/broadcast) a member that reads nothing while the route is busy loses
        messages, and is still read: what it sends reaches the others. Its queue used to stay
        above the transport's low mark (the drops started at --max-backpressure, 16 MiB, reading
        stopped at 1 MiB), so it was not read again until the route went quiet."""
        needle = b"from the member that does not read"
        with UvwsServer() as srv:
            base, sampler, control = start_watching(srv)
            # The member that does not read: a small receive buffer, so the server's queue
            # for it grows soon.
            mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            mute.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            mute.settimeout(10)
            mute.connect(("127.0.0.1", srv.port))
            mute.sendall(upgrade_request("/broadcast"))
            head = bytearray()
            read_until(mute, head, b"\r\n\r\n", time.monotonic() + 10)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), bytes(head[:60]))
            watcher = Watcher(srv.port, needle)
            watcher.start()
            flooder = PacedFlooder(srv.port)
            flooder.start()
            try:
                # Its queue is full: messages for it are dropped, or (before the fix) reading
                # it stopped.
                wait_for(lambda: metric(get_metrics(srv.port), "uvws_backpressure_drops_total") > 0 or
                         metric(get_metrics(srv.port), "uvws_backpressure_pauses_total") > 0,
                         20 * SLACK, "the member that does not read to fill its queue")
                time.sleep(0.5)
                sent_at = time.monotonic()
                mute.sendall(encode_frame(2, needle))
                wait_for(lambda: watcher.seen_at, 5 * SLACK, "the others to get what it sent")
                took = watcher.seen_at - sent_at
                m = get_metrics(srv.port)
                self.assertEqual(metric(m, "uvws_backpressure_pauses_total"), 0,
                                 "a member of a drop route stopped being read")
                self.assertEqual(metric(m, "uvws_connections", kind="websocket"), 4)
                self.assertLess(metric(m, "uvws_queued_bytes"), 4 * MIB)
            finally:
                flooder.stop.set()
                watcher.stop.set()
                flooder.join(10)
                watcher.join(10)
            self.assertEqual(flooder.errors, [])
            self.assertEqual(watcher.errors, [])
            self.assertGreater(flooder.got, 0)
            stop_watching(self, sampler, control)
            sys.stderr.write("\n  drop route: what the member that does not read sent arrived after %.1f ms; "
                             "RSS base %d KiB, peak %d KiB; control round trip worst %.1f ms\n"
                             % (took * 1000, base, sampler.peak, control.worst * 1000))
            self.assertLess(took, 2.0 * SLACK)
            self.assertLess(sampler.peak - base, 32 * 1024, "RSS grew by %d KiB (base %d KiB)"
                            % (sampler.peak - base, base))
            mute.close()
            flooder.c.close()
            watcher.c.close()


class VanishingClientsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.size = 20 * MIB
        cls.root = make_web_root(cls.size)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def assert_serving(self, srv):
        self.assertEqual(http_get(srv.port, "/", timeout=5).status, 200)
        echo_roundtrip(srv.port, os.urandom(1000), timeout=5)

    def wait_no_connections(self, srv, ws_left=0):
        """Waits until /metrics shows only `ws_left` WebSockets and no HTTP connection but the
        /metrics request itself."""
        last = []

        def idle():
            m = get_metrics(srv.port)
            ws = metric(m, "uvws_connections", kind="websocket")
            http = metric(m, "uvws_connections", kind="http")
            last[:] = [("websocket", ws), ("http", http)]
            return ws == ws_left and http <= 1
        try:
            wait_for(idle, 10, "every vanished connection to be released", interval=0.2)
        except AssertionError:
            raise AssertionError("connections still open after 10 s: %r" % last)

    def test_mid_handshake(self):
        with UvwsServer(web=self.root) as srv:
            control = ControlClient(srv.port)
            control.start()
            req = upgrade_request()
            for i in range(50):
                with connect(srv.port) as s:
                    s.sendall(req[:len(req) // 2 + i % 7])
            for i in range(20):  # and a plain HTTP request cut in half
                with connect(srv.port) as s:
                    s.sendall(b"GET /big.bin HTTP/1.1\r\nHo")
            self.assert_serving(srv)
            self.wait_no_connections(srv, ws_left=1)  # the control client
            control.finish(self)
            self.wait_no_connections(srv)

    def test_mid_frame(self):
        with UvwsServer(web=self.root) as srv:
            control = ControlClient(srv.port)
            control.start()
            for i in range(30):
                c = WsClient(srv.port)
                frame = encode_frame(2, os.urandom(5000))
                c.sock.sendall(frame[:2 + i % 12])  # cut in the header or the mask or the payload
                c.close()
            for i in range(10):
                c = WsClient(srv.port)
                frame = encode_frame(2, os.urandom(100000))
                c.sock.sendall(frame[:50000])
                c.rst()
            for i in range(10):  # a fragmented message: first fragment whole, then gone
                c = WsClient(srv.port)
                c.send(1, b"first part ", fin=False)
                c.sock.sendall(encode_frame(0, b"second")[:5])
                c.close()
            self.assert_serving(srv)
            self.wait_no_connections(srv, ws_left=1)  # the control client
            control.finish(self)
            self.wait_no_connections(srv)

    def test_rst_mid_write(self):
        with UvwsServer(web=self.root) as srv:
            control = ControlClient(srv.port)
            control.start()
            for i in range(5):  # a big echo the client never reads, then RST
                c = WsClient(srv.port)
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                c.send(2, os.urandom(4 * MIB))
                time.sleep(0.1)
                c.rst()
            for i in range(5):  # a 20 MiB file: read a little, then RST
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                s.settimeout(10)
                s.connect(("127.0.0.1", srv.port))
                s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                buf = bytearray()
                read_until(s, buf, b"\r\n\r\n", time.monotonic() + 5)
                self.assertTrue(bytes(buf).startswith(b"HTTP/1.1 200"))
                time.sleep(0.1)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            for i in range(5):  # pipelined requests and RST before reading any answer
                s = connect(srv.port)
                s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n" * 3)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            self.assert_serving(srv)
            self.wait_no_connections(srv, ws_left=1)  # the control client
            control.finish(self)
            self.wait_no_connections(srv)
            srv.wait_log(r"ws close 127\.0\.0\.1:\d+ /echo code=1006")

    def test_half_close(self):
        with UvwsServer(web=self.root) as srv:
            with connect(srv.port) as s:
                s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
                data = read_to_eof(s, timeout=5)
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), data[:200])
            with open(os.path.join(self.root, "index.html"), "rb") as f:
                self.assertEqual(body, f.read())
            # a big file after a half-close: all of it still arrives
            with connect(srv.port, timeout=30) as s:
                s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
                data = read_to_eof(s, timeout=30)
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), data[:200])
            self.assertEqual(len(body), self.size)
            self.assertTrue(body == big_content(self.size), "the big file arrived corrupted")
            # two pipelined requests, then half-close: both answers
            with connect(srv.port) as s:
                s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\nGET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
                data = read_to_eof(s, timeout=5)
            self.assertEqual(data.count(b"HTTP/1.1 200"), 2, data[:500])
            # a big file and a request pipelined behind it, then half-close: the file streams
            # while the second request waits (a small receive window keeps it streaming when
            # the FIN arrives), and it is still answered
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(30)
                s.connect(("127.0.0.1", srv.port))
                s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
                data = read_to_eof(s, timeout=30)
            with open(os.path.join(self.root, "index.html"), "rb") as f:
                index = f.read()
            self.assertTrue(data.endswith(b"\r\n\r\n" + index), data[-300:])
            self.assertEqual(data.count(b"HTTP/1.1 200"), 2)
            self.wait_no_connections(srv)

    def test_1000_websockets_at_once(self):
        n = 1000
        raise_nofile(n + 200)  # before the server starts: it inherits the limit
        with UvwsServer(web=self.root) as srv:
            echo_roundtrip(srv.port)
            for _ in range(3):
                self.assertEqual(http_get(srv.port, "/").status, 200)
            time.sleep(0.3)
            base = rss_kib(srv.proc.pid)
            control = ControlClient(srv.port)
            control.start()
            req = upgrade_request()
            socks = []
            try:
                for _ in range(n):
                    s = socket.socket()
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", srv.port))
                    socks.append(s)
                # send each request once connected, then read each 101
                pending = {s.fileno(): s for s in socks}
                unsent = set(pending)
                heads = {fd: b"" for fd in pending}
                poll = select.poll()
                for fd in pending:
                    poll.register(fd, select.POLLOUT)
                deadline = time.monotonic() + 30 + 10 * SLACK
                while pending:
                    self.assertLess(time.monotonic(), deadline, "%d connections not upgraded" % len(pending))
                    for fd, ev in poll.poll(500):
                        s = pending[fd]
                        if fd in unsent and ev & select.POLLOUT:
                            self.assertEqual(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 0)
                            s.send(req)
                            unsent.discard(fd)
                            poll.modify(fd, select.POLLIN)
                            continue
                        chunk = s.recv(4096)
                        self.assertTrue(chunk, "connection closed during the handshake")
                        heads[fd] += chunk
                        if b"\r\n\r\n" in heads[fd]:
                            self.assertTrue(heads[fd].startswith(b"HTTP/1.1 101"), heads[fd][:200])
                            poll.unregister(fd)
                            del pending[fd]
                m = get_metrics(srv.port)
                self.assertEqual(metric(m, "uvws_connections", kind="websocket"), n + 1)
                rss_open = rss_kib(srv.proc.pid)
                # drop all at once: half with FIN, half with RST
                for i, s in enumerate(socks):
                    if i % 2:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
                socks = []
            finally:
                for s in socks:
                    s.close()
            self.assert_serving(srv)

            def drained():
                m = get_metrics(srv.port)
                ws = metric(m, "uvws_connections", kind="websocket")
                return ws == 1 or None  # only the control client left
            wait_for(drained, 15, "the 1000 connections to be released", interval=0.2)
            control.finish(self)
            wait_for(lambda: metric(get_metrics(srv.port), "uvws_connections", kind="websocket") == 0,
                     5, "the control client to be released")
            time.sleep(0.5)
            after = rss_kib(srv.proc.pid)
            sys.stderr.write("\n  1000 websockets: RSS base %d KiB, open %d KiB, after %d KiB\n"
                             % (base, rss_open, after))
            limit = 8 * 1024
            self.assertLess(after - base, limit, "RSS base %d KiB, with %d open %d KiB, after %d KiB"
                            % (base, n, rss_open, after))
            srv.wait_log(r"ws close 127\.0\.0\.1:\d+ /echo code=1006")


if __name__ == "__main__":
    unittest.main()
