#!/usr/bin/python3
"""Integration (hardening, timing): --handshake-timeout against a slowloris client,
--idle-timeout, --ping-interval/--ping-timeout, and SIGTERM/SIGINT graceful shutdown with
--shutdown-timeout, against the real uvws binary on loopback.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/hardening_timeouts_test.py -v
"""
import asyncio
import os
import shutil
import signal
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hardening_util import (SLACK, Closed, UvwsServer, WsClient, big_content, close_payload,  # noqa: E402
                            connect, echo_roundtrip, get_metrics, http_get, make_web_root, metric,
                            parse_head, read_until, select_readable)

from wsimport import need_websockets, websockets  # noqa: E402

need_websockets()  # a missing python3-websockets fails the tests, it does not skip


class SlowlorisTest(unittest.TestCase):

    def test_dribbled_request_gets_408_while_others_are_served(self):
        with UvwsServer("--handshake-timeout", "1s") as srv:
            served, failures, stop = [], [], threading.Event()

            def other_client():
                # A normal client, served throughout: static file and a WebSocket echo.
                while not stop.is_set():
                    try:
                        r = http_get(srv.port, "/", timeout=5)
                        if r.status != 200:
                            failures.append("GET / -> %d" % r.status)
                        echo_roundtrip(srv.port, b"x" * 100, timeout=5)
                        served.append(time.monotonic())
                    except Exception as e:  # noqa: BLE001  (reported below)
                        failures.append(repr(e))
                    stop.wait(0.1)

            t = threading.Thread(target=other_client, daemon=True)
            request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nAccept: */*\r\n\r\n"
            s = connect(srv.port)
            start = time.monotonic()
            t.start()
            response = b""
            sent = 0
            try:
                # One byte every 200 ms: the whole request would take ~15 s.
                while sent < len(request) and time.monotonic() - start < 8:
                    if select_readable(s, 0.2):
                        break
                    try:
                        s.sendall(request[sent:sent + 1])
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    sent += 1
                elapsed = time.monotonic() - start
                buf = bytearray()
                try:
                    read_until(s, buf, b"\r\n\r\n", time.monotonic() + 5)
                    response = bytes(buf)
                    s.settimeout(5)
                    while s.recv(4096):  # the server ends the connection after the 408
                        pass
                except ConnectionResetError:
                    pass
            finally:
                s.close()
                stop.set()
                t.join(10)
            self.assertTrue(response.startswith(b"HTTP/1.1 408"), response[:200])
            self.assertLess(sent, len(request), "the whole request went through")
            self.assertGreaterEqual(elapsed, 0.9, "408 before the timeout")
            self.assertLess(elapsed, 1.0 + SLACK + 0.5, "408 came late")
            self.assertEqual(failures, [])
            self.assertGreaterEqual(len(served), 2, "the other client was not served meanwhile")
            srv.wait_log(r"request not complete in time")
            self.assertGreaterEqual(metric(get_metrics(srv.port), "uvws_http_responses_total",
                                           **{"class": "4xx"}), 1)

    def test_dribbled_upgrade_request_gets_408(self):
        with UvwsServer("--handshake-timeout", "1s") as srv:
            req = (b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\n")
            with connect(srv.port) as s:
                start = time.monotonic()
                for i in range(len(req)):
                    if select_readable(s, 0.2):
                        break
                    s.sendall(req[i:i + 1])
                buf = bytearray()
                read_until(s, buf, b"\r\n\r\n", time.monotonic() + 5)
                elapsed = time.monotonic() - start
            self.assertTrue(bytes(buf).startswith(b"HTTP/1.1 408"), bytes(buf[:200]))
            self.assertLess(elapsed, 1.0 + SLACK + 0.5)


class IdleTimeoutTest(unittest.TestCase):

    def test_silent_websocket_closed_1001_busy_one_kept(self):
        with UvwsServer("--idle-timeout", "1s", "--ping-interval", "0") as srv:
            quiet = WsClient(srv.port)
            busy = WsClient(srv.port)
            opened = time.monotonic()
            code = None
            n = 0
            try:
                while time.monotonic() - opened < 2.5 + SLACK:
                    busy.send_text("tick %d" % n)
                    self.assertEqual(busy.recv_message(5), (1, b"tick %d" % n))
                    n += 1
                    if code is None and select_readable(quiet.sock, 0.3):
                        code = quiet.recv_close(5)
                        closed_after = time.monotonic() - opened
                        quiet.send(8, close_payload(1001))
                        quiet.expect_eof(5)
                    elif code is not None:
                        time.sleep(0.3)
                self.assertEqual(code, 1001, "the silent WebSocket was not closed with 1001")
                self.assertGreaterEqual(closed_after, 0.9)
                self.assertLess(closed_after, 1.0 + SLACK)
                # the busy one is still open and served, well past the timeout
                busy.send_text("still here")
                self.assertEqual(busy.recv_message(5), (1, b"still here"))
                self.assertEqual(busy.close_handshake(1000), 1000)
            finally:
                quiet.close()
                busy.close()
            srv.wait_log(r"no message for 1000ms; closing")
            self.assertEqual(metric(get_metrics(srv.port), "uvws_idle_closes_total"), 1)


class PingTest(unittest.TestCase):

    def test_unanswered_ping_drops_connection(self):
        with UvwsServer("--ping-interval", "1s", "--ping-timeout", "1s") as srv:
            with WsClient(srv.port) as c:
                opened = time.monotonic()
                fin, op, payload = c.recv_frame(1.0 + SLACK + 1)
                pinged = time.monotonic() - opened
                self.assertEqual(op, 9, "expected a ping frame, got opcode %d" % op)
                self.assertGreaterEqual(pinged, 0.9)
                # never answered: the server drops the TCP connection (no close frame needed)
                with self.assertRaises(Closed):
                    while True:
                        fin, op, payload = c.recv_frame(1.0 + SLACK + 1)
                        self.assertIn(op, (8, 9), "unexpected frame opcode %d" % op)
                dropped = time.monotonic() - opened
                self.assertGreaterEqual(dropped, 1.9)
                self.assertLess(dropped, 2.0 + SLACK + 0.5)
            srv.wait_log(r"no pong within 1000ms; dropping")
            m = get_metrics(srv.port)
            self.assertEqual(metric(m, "uvws_ping_timeouts_total"), 1)
            self.assertEqual(metric(m, "uvws_connections", kind="websocket"), 0)

    def test_client_answering_pings_stays(self):
        with UvwsServer("--ping-interval", "1s", "--ping-timeout", "1s") as srv:
            with WsClient(srv.port) as c:
                pings = 0
                start = time.monotonic()
                while time.monotonic() - start < 3.6:
                    try:
                        fin, op, payload = c.recv_frame(0.2)
                    except AssertionError:
                        continue
                    self.assertEqual(op, 9, "unexpected opcode %d" % op)
                    pings += 1
                    c.send(10, payload)
                self.assertGreaterEqual(pings, 2, "the server did not keep pinging")
                c.send_text("alive")
                self.assertEqual(c.recv_message(5), (1, b"alive"))
                self.assertEqual(c.close_handshake(), 1000)
            self.assertEqual(metric(get_metrics(srv.port), "uvws_ping_timeouts_total"), 0)

    def test_python_websockets_client_stays_past_several_intervals(self):
        async def run(port):
            # ping_interval=None: the client sends no pings of its own, so only its
            # automatic pongs keep it alive.
            async with websockets.connect("ws://127.0.0.1:%d/echo" % port, ping_interval=None,
                                          open_timeout=5, close_timeout=5) as ws:
                await asyncio.sleep(3.5)
                await asyncio.wait_for(ws.send("after 3.5 s"), 5)
                return await asyncio.wait_for(ws.recv(), 5)

        with UvwsServer("--ping-interval", "1s", "--ping-timeout", "1s") as srv:
            self.assertEqual(asyncio.run(run(srv.port)), "after 3.5 s")
            self.assertEqual(metric(get_metrics(srv.port), "uvws_ping_timeouts_total"), 0)

    def test_data_counts_as_liveness(self):
        # The client never answers pings but sends a message every 1.5 s: each ping (sent after
        # 1 s of quiet) is followed by data before the 1 s ping timeout runs out.
        with UvwsServer("--ping-interval", "1s", "--ping-timeout", "1s") as srv:
            with WsClient(srv.port) as c:
                pings = 0
                for i in range(3):
                    t_end = time.monotonic() + 1.5
                    while time.monotonic() < t_end:
                        try:
                            fin, op, payload = c.recv_frame(max(0.01, t_end - time.monotonic()))
                        except AssertionError:
                            break
                        self.assertEqual(op, 9, "unexpected opcode %d" % op)
                        pings += 1  # not answered
                    c.send_text("data %d" % i)
                    self.assertEqual(c.recv_message(5), (1, b"data %d" % i))
                self.assertGreaterEqual(pings, 2, "the server sent no pings to the quiet client")
                self.assertEqual(c.close_handshake(), 1000)
            self.assertEqual(metric(get_metrics(srv.port), "uvws_ping_timeouts_total"), 0)


class ShutdownTest(unittest.TestCase):

    def test_sigterm_closes_websockets_1001_and_exits_0(self):
        srv = UvwsServer("--shutdown-timeout", "5s", expect_exit=None)
        with srv:
            clients = [WsClient(srv.port) for _ in range(3)]
            try:
                for c in clients:
                    c.send_text("hi")
                    self.assertEqual(c.recv_message(5), (1, b"hi"))
                srv.proc.send_signal(signal.SIGTERM)
                codes = [c.recv_close(5) for c in clients]
                self.assertEqual(codes, [1001, 1001, 1001])
                for c in clients:
                    c.send(8, close_payload(1001))
                answered = time.monotonic()
                for c in clients:
                    c.expect_eof(5)
                    c.close()  # our FIN: the closing handshake is complete
                rc = srv.proc.wait(1.0 + SLACK)
                self.assertLess(time.monotonic() - answered, 1.0 + SLACK)
            finally:
                for c in clients:
                    c.close()
            self.assertEqual(rc, 0, srv.log_text())
            srv.wait_log(r"SIGTERM received, shutting down")

    def test_unanswered_close_exits_0_after_shutdown_timeout(self):
        srv = UvwsServer("--shutdown-timeout", "1s", expect_exit=None)
        with srv:
            with WsClient(srv.port) as c:
                start = time.monotonic()
                srv.proc.send_signal(signal.SIGINT)
                self.assertEqual(c.recv_close(5), 1001)
                # never answered
                rc = srv.proc.wait(1.0 + SLACK + 2)
                took = time.monotonic() - start
                c.expect_eof(5)
            self.assertEqual(rc, 0, srv.log_text())
            self.assertGreaterEqual(took, 0.9, "exited before the shutdown timeout")
            self.assertLess(took, 1.0 + SLACK + 0.5)

    def test_second_signal_exits_at_once_with_1(self):
        srv = UvwsServer("--shutdown-timeout", "30s", expect_exit=None)
        with srv:
            with WsClient(srv.port) as c:
                srv.proc.send_signal(signal.SIGTERM)
                self.assertEqual(c.recv_close(5), 1001)  # shutting down now
                t0 = time.monotonic()
                srv.proc.send_signal(signal.SIGTERM)
                rc = srv.proc.wait(5)
                took = time.monotonic() - t0
            self.assertEqual(rc, 1, srv.log_text())
            self.assertLess(took, 1.0)
            srv.wait_log(r"second signal, exiting now")

    def test_shutdown_drain_keeps_serving_with_healthz_503(self):
        """--shutdown-drain: after SIGTERM the server keeps accepting and serving for the drain
        time, /healthz answers 503 (so a load balancer takes it out), then the usual graceful
        shutdown closes every WebSocket with 1001 and the process exits 0."""
        srv = UvwsServer("--shutdown-drain", "1s", "--shutdown-timeout", "2s", expect_exit=None)
        with srv:
            self.assertEqual(http_get(srv.port, "/healthz").status, 200)
            with WsClient(srv.port) as c:
                t0 = time.monotonic()
                srv.proc.send_signal(signal.SIGTERM)
                srv.wait_log(r"draining for 1000 ms first")
                self.assertEqual(http_get(srv.port, "/healthz").status, 503)
                self.assertEqual(http_get(srv.port, "/").status, 200)  # still serving
                c.send_text("still here")
                self.assertEqual(c.recv_message(), (1, b"still here"))
                with WsClient(srv.port) as late:  # new WebSockets are still accepted
                    late.send_text("late")
                    self.assertEqual(late.recv_message(), (1, b"late"))
                    self.assertEqual(c.recv_close(1.0 + SLACK + 1), 1001)
                    took = time.monotonic() - t0
                    self.assertGreaterEqual(took, 0.9, "closed before the drain ended")
                    self.assertEqual(late.recv_close(2), 1001)
                    late.send(8, close_payload(1000))
                c.send(8, close_payload(1000))
                rc = srv.proc.wait(2.0 + SLACK)
            self.assertEqual(rc, 0, srv.log_text())

    def test_new_connections_refused_while_shutting_down(self):
        srv = UvwsServer("--shutdown-timeout", "3s", expect_exit=None)
        with srv:
            with WsClient(srv.port) as c:
                srv.proc.send_signal(signal.SIGTERM)
                self.assertEqual(c.recv_close(5), 1001)
                # the listener is closed: a new connection is refused (or, if it raced the
                # close, answered 503 / ended)
                try:
                    r = http_get(srv.port, "/healthz", timeout=3)
                    self.assertEqual(r.status, 503, r)
                except (ConnectionRefusedError, ConnectionResetError, EOFError, AssertionError) as e:
                    if isinstance(e, AssertionError) and "503" in str(e):
                        raise
                c.send(8, close_payload(1001))
                c.expect_eof(5)
                c.close()
                self.assertEqual(srv.proc.wait(1.0 + SLACK), 0, srv.log_text())

    def test_inflight_large_file_during_shutdown(self):
        size = 20 * 1024 * 1024
        root = make_web_root(size)
        expect = big_content(size)
        try:
            srv = UvwsServer("--shutdown-timeout", "1s", web=root, expect_exit=None)
            with srv:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                s.settimeout(10)
                s.connect(("127.0.0.1", srv.port))
                try:
                    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    buf = bytearray()
                    read_until(s, buf, b"\r\n\r\n", time.monotonic() + 5)
                    head, _, body = bytes(buf).partition(b"\r\n\r\n")
                    status, _, headers = parse_head(head)
                    self.assertEqual(status, 200)
                    self.assertEqual(int(headers["content-length"]), size)
                    body = bytearray(body)
                    start = time.monotonic()
                    srv.proc.send_signal(signal.SIGTERM)
                    ended = exited = None
                    # read slowly: ~16 KiB every 20 ms (far below what 20 MiB in 1 s needs)
                    while time.monotonic() - start < 10:
                        try:
                            chunk = s.recv(16384)
                        except ConnectionResetError:
                            chunk = b""
                        if not chunk:
                            ended = time.monotonic() - start
                            break
                        body += chunk
                        if exited is None and srv.proc.poll() is not None:
                            exited = time.monotonic() - start
                        time.sleep(0.02)
                finally:
                    s.close()
                rc = srv.proc.wait(5)
                if exited is None:
                    exited = time.monotonic() - start
                self.assertEqual(rc, 0, srv.log_text())
                self.assertIsNotNone(ended, "the connection never ended")
                self.assertLess(exited, 1.0 + SLACK + 0.5, "the server outlived --shutdown-timeout")
                # either complete, or a clean prefix cut when the shutdown timeout passed
                self.assertEqual(bytes(body), expect[:len(body)], "corrupted body")
                if len(body) < size:
                    # what the kernel had taken before the cut still arrives, then FIN
                    self.assertGreaterEqual(ended, 0.9, "cut before the shutdown timeout")
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
