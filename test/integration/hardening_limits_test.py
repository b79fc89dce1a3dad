#!/usr/bin/python3
"""Integration (hardening, limits): --max-connections (503 + Retry-After),
--max-connections-per-ip (429), --max-header-bytes (431), --max-frame / --max-message (1009),
--allow-origin (403), /metrics and /healthz, --metrics off, --log-format json; against the real
uvws binary on loopback.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/hardening_limits_test.py -v
"""
import asyncio
import json
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hardening_util import (UvwsServer, WsClient, close_payload, echo_roundtrip,  # noqa: E402
                            get_metrics, http_get, http_request, metric, parse_metrics,
                            upgrade_request, wait_for)

from wsimport import need_websockets, websockets  # noqa: E402

need_websockets()  # a missing python3-websockets fails the tests, it does not skip


def refused_response(port, source=None):
    """Connects, sends an upgrade request at once (as real clients do) and reads the whole
    answer until the server ends the connection."""
    return http_request(port, upgrade_request(), source=source, timeout=5)


class MaxConnectionsTest(unittest.TestCase):

    def test_503_retry_after_then_accepts_again(self):
        with UvwsServer("--max-connections", "3") as srv:
            clients = [WsClient(srv.port) for _ in range(3)]
            try:
                rejected = 0
                r = refused_response(srv.port)
                rejected += 1
                self.assertEqual(r.status, 503, r)
                self.assertEqual(r.header("retry-after"), "1", r)
                # a plain HTTP request is refused the same way
                r = http_get(srv.port, "/", timeout=5)
                rejected += 1
                self.assertEqual(r.status, 503, r)
                # the open ones are unaffected
                for c in clients:
                    c.send_text("still")
                    self.assertEqual(c.recv_message(5), (1, b"still"))
                # close two: new connections are accepted again
                for c in clients[:2]:
                    self.assertEqual(c.close_handshake(), 1000)

                def accepted():
                    nonlocal rejected
                    try:
                        c = WsClient(srv.port, timeout=5, expect=None)
                    except (EOFError, ConnectionResetError):
                        rejected += 1
                        return None
                    if c.status == 101:
                        return c
                    rejected += 1
                    c.close()
                    return None

                again = wait_for(accepted, 5, "a connection accepted after closing two")
                clients.append(again)
                again.send_text("again")
                self.assertEqual(again.recv_message(5), (1, b"again"))
                # two open now: /metrics (a third connection) is served
                m = get_metrics(srv.port)
                self.assertEqual(metric(m, "uvws_connections_rejected_total"), rejected)
                self.assertEqual(metric(m, "uvws_connections", kind="websocket"), 2)
                srv.wait_log(r"refused, 3 connections open \(--max-connections\)")
                for c in clients[2:]:
                    self.assertEqual(c.close_handshake(), 1000)
            finally:
                for c in clients:
                    c.close()


class MaxConnectionsPerIpTest(unittest.TestCase):

    def test_429_is_per_address(self):
        with UvwsServer("--max-connections-per-ip", "2") as srv:
            one = [WsClient(srv.port, source="127.0.0.1") for _ in range(2)]
            two = []
            try:
                r = refused_response(srv.port, source="127.0.0.1")
                self.assertEqual(r.status, 429, r)
                # another address is counted on its own
                two = [WsClient(srv.port, source="127.0.0.2") for _ in range(2)]
                for c in one + two:
                    c.send_text("x")
                    self.assertEqual(c.recv_message(5), (1, b"x"))
                r = refused_response(srv.port, source="127.0.0.2")
                self.assertEqual(r.status, 429, r)
                srv.wait_log(r"conn 127\.0\.0\.1:\d+: refused, 2 connections from this address")
                srv.wait_log(r"conn 127\.0\.0\.2:\d+: refused, 2 connections from this address")
                # closing one frees a slot for that address
                self.assertEqual(one.pop().close_handshake(), 1000)

                # The slot is free once the server has closed that TCP
                # connection, a moment after the close handshake; attempts
                # made before that are refused (and counted) like any other.
                early_refusals = []

                def accepted():
                    c = WsClient(srv.port, source="127.0.0.1", timeout=5, expect=None)
                    if c.status == 101:
                        return c
                    self.assertEqual(c.status, 429)
                    early_refusals.append(c.status)
                    c.close()
                    return None

                one.append(wait_for(accepted, 5, "127.0.0.1 accepted again"))
                # from a third address: .1 and .2 have no slot left
                m = get_metrics(srv.port, source="127.0.0.3")
                self.assertEqual(metric(m, "uvws_connections_rejected_total"), 2 + len(early_refusals))
                self.assertEqual(metric(m, "uvws_connections", kind="websocket"), 4)
                for c in one + two:
                    self.assertEqual(c.close_handshake(), 1000)
            finally:
                for c in one + two:
                    c.close()

    def test_metrics_counts_per_ip_rejections(self):
        with UvwsServer("--max-connections-per-ip", "1") as srv:
            with WsClient(srv.port, source="127.0.0.2"):
                for _ in range(3):
                    self.assertEqual(refused_response(srv.port, source="127.0.0.2").status, 429)
                m = get_metrics(srv.port)  # from 127.0.0.1
                self.assertEqual(metric(m, "uvws_connections_rejected_total"), 3)
                self.assertEqual(metric(m, "uvws_connections", kind="websocket"), 1)


class SizeLimitsTest(unittest.TestCase):

    def test_max_header_bytes_431(self):
        with UvwsServer("--max-header-bytes", "1024") as srv:
            ok = http_get(srv.port, "/", headers=["X-Small: " + "a" * 500])
            self.assertEqual(ok.status, 200)
            big = http_get(srv.port, "/", headers=["X-Big: " + "a" * 2000])
            self.assertEqual(big.status, 431, big)
            many = http_get(srv.port, "/", headers=["X-H%d: %s" % (i, "b" * 40) for i in range(40)])
            self.assertEqual(many.status, 431, many)
            r = http_request(srv.port, upgrade_request(headers=["X-Big: " + "c" * 2000]))
            self.assertEqual(r.status, 431, r)
            echo_roundtrip(srv.port)

    def test_max_frame_1009_fragmented_message_passes(self):
        with UvwsServer("--max-frame", "1000", "--max-message", "100000") as srv:
            with WsClient(srv.port) as c:
                # 60 frames of 1000 bytes: 60 000 bytes, under --max-message
                payload = bytes(range(256)) * 234 + b"x" * 96
                self.assertEqual(len(payload), 60000)
                for i in range(60):
                    c.send(2 if i == 0 else 0, payload[i * 1000:(i + 1) * 1000], fin=(i == 59))
                self.assertEqual(c.recv_message(5), (2, payload))
                c.send(1, b"a" * 1000)  # exactly the limit
                self.assertEqual(c.recv_message(5), (1, b"a" * 1000))
            with WsClient(srv.port) as c:
                c.send(2, b"b" * 1001)
                self.assertEqual(c.recv_close(5), 1009)
                c.send(8, close_payload(1009))
                c.expect_eof(5)
            with WsClient(srv.port) as c:
                # small frames, but the message grows past --max-message
                c.send(2, b"c" * 1000, fin=False)
                code = None
                for i in range(120):
                    try:
                        c.send(0, b"c" * 1000, fin=False)
                    except (BrokenPipeError, ConnectionResetError):
                        break
                code = c.recv_close(5)
                self.assertEqual(code, 1009)
            srv.wait_log(r"ws fail \S+ /echo code=1009")

    def test_allow_origin(self):
        with UvwsServer("--allow-origin", "https://good.example,http://localhost:3000") as srv:
            for origin in ("https://good.example", "http://localhost:3000"):
                with WsClient(srv.port, headers=["Origin: " + origin]) as c:
                    c.send_text("o")
                    self.assertEqual(c.recv_message(5), (1, b"o"))
                    self.assertEqual(c.close_handshake(), 1000)
            for origin in ("https://evil.example", "https://good.example.evil", "null",
                           "http://localhost:3001"):
                r = http_request(srv.port, upgrade_request(headers=["Origin: " + origin]))
                self.assertEqual(r.status, 403, (origin, r))
            with WsClient(srv.port) as c:  # no Origin: not a browser, passes
                self.assertEqual(c.status, 101)
                self.assertEqual(c.close_handshake(), 1000)
            m = get_metrics(srv.port)
            self.assertEqual(metric(m, "uvws_handshakes_total", result="origin"), 4)
            self.assertEqual(metric(m, "uvws_handshakes_total", result="ok"), 3)


class MetricsTest(unittest.TestCase):

    def test_metrics_after_traffic(self):
        async def traffic(port):
            url = "ws://127.0.0.1:%d/echo" % port
            # python websockets offers permessage-deflate by default: the deflate path runs
            async with websockets.connect(url, open_timeout=5, close_timeout=5) as a:
                self.assertIn("permessage-deflate", a.response_headers.get("Sec-WebSocket-Extensions", ""))
                for i in range(5):
                    await a.send("message %d " % i * 20)
                    self.assertEqual(await asyncio.wait_for(a.recv(), 5), "message %d " % i * 20)
                await a.send(b"\x00\x01" * 100)
                self.assertEqual(await asyncio.wait_for(a.recv(), 5), b"\x00\x01" * 100)
            async with websockets.connect(url, open_timeout=5, close_timeout=5,
                                          compression=None) as b:
                await b.send("plain")
                self.assertEqual(await asyncio.wait_for(b.recv(), 5), "plain")

        with UvwsServer() as srv:
            asyncio.run(traffic(srv.port))
            self.assertEqual(http_get(srv.port, "/no-such-file").status, 404)
            self.assertEqual(http_get(srv.port, "/").status, 200)
            with WsClient(srv.port) as open_one:
                r = http_get(srv.port, "/metrics")
                self.assertEqual(r.status, 200)
                self.assertTrue(r.header("content-type").startswith("text/plain"), r.headers)
                text = r.body.decode("utf-8")
                samples, types = parse_metrics(text)
                for family, kind in [("uvws_connections", "gauge"),
                                     ("uvws_connections_rejected_total", "counter"),
                                     ("uvws_http_requests_total", "counter"),
                                     ("uvws_http_responses_total", "counter"),
                                     ("uvws_handshakes_total", "counter"),
                                     ("uvws_messages_total", "counter"),
                                     ("uvws_message_bytes_total", "counter"),
                                     ("uvws_close_frames_total", "counter"),
                                     ("uvws_backpressure_pauses_total", "counter"),
                                     ("uvws_loop_lag_milliseconds", "gauge")]:
                    self.assertEqual(types.get(family), kind, family)
                    self.assertRegex(text, r"(?m)^# HELP %s \S" % family)
                self.assertEqual(metric(samples, "uvws_connections", kind="websocket"), 1)
                self.assertGreaterEqual(metric(samples, "uvws_connections", kind="http"), 1)
                self.assertEqual(metric(samples, "uvws_messages_total", dir="in"), 7)
                self.assertEqual(metric(samples, "uvws_messages_total", dir="out"), 7)
                self.assertEqual(metric(samples, "uvws_handshakes_total", result="ok"), 3)
                self.assertEqual(metric(samples, "uvws_close_frames_total", dir="received", code="1000"), 2)
                self.assertEqual(metric(samples, "uvws_close_frames_total", dir="sent", code="1000"), 2)
                in_bytes = sum(len("message %d " % i * 20) for i in range(5)) + 200 + 5
                self.assertEqual(metric(samples, "uvws_message_bytes_total", dir="in"), in_bytes)
                self.assertGreaterEqual(metric(samples, "uvws_http_responses_total", **{"class": "4xx"}), 1)
                self.assertGreaterEqual(metric(samples, "uvws_http_responses_total", **{"class": "2xx"}), 1)
                self.assertEqual(metric(samples, "uvws_connections_rejected_total"), 0)
                for which in ("last", "max"):
                    lag = metric(samples, "uvws_loop_lag_milliseconds", which=which)
                    self.assertGreaterEqual(lag, 0)
                    self.assertLess(lag, 1000)
                self.assertLessEqual(metric(samples, "uvws_loop_lag_milliseconds", which="last"),
                                     metric(samples, "uvws_loop_lag_milliseconds", which="max"))
                for (name, labels), value in samples.items():
                    self.assertGreaterEqual(value, 0, (name, labels))
                    self.assertEqual(value, int(value), (name, labels))
                self.assertEqual(open_one.close_handshake(), 1000)
            h = http_get(srv.port, "/healthz")
            self.assertEqual(h.status, 200)
            self.assertEqual(h.body.strip(), b"ok")
            head = http_request(srv.port, "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            self.assertEqual(head.status, 200)
            self.assertEqual(head.body, b"")
            m = get_metrics(srv.port)
            self.assertEqual(metric(m, "uvws_connections", kind="websocket"), 0)

    def test_metrics_off(self):
        with UvwsServer("--metrics", "off") as srv:
            self.assertEqual(http_get(srv.port, "/metrics").status, 404)
            self.assertEqual(http_get(srv.port, "/healthz").status, 404)
            self.assertEqual(http_get(srv.port, "/").status, 200)


LOG_LINE_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (error|warn |info |debug) (.*)$")


class PortInUseTest(unittest.TestCase):
    """A taken port is an error at start (exit 1 with a message), with one loop or several:
    SO_REUSEPORT must not let a second uvws share a port another uvws already serves."""

    def start_on(self, port, *args):
        import subprocess
        from uvwsproc import uvws_bin
        return subprocess.run([uvws_bin(), "--host", "127.0.0.1", "--port", str(port)] + list(args),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=20)

    def test_plain_listener_holds_the_port(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            for threads in ("1", "3"):
                r = self.start_on(port, "--threads", threads)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("cannot start: address already in use", r.stderr)

    def test_a_threaded_uvws_holds_the_port(self):
        with UvwsServer("--threads", "2") as first:
            r = self.start_on(first.port, "--threads", "2")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("address already in use", r.stderr)
            echo_roundtrip(first.port)  # the first one is untouched


class JsonLogTest(unittest.TestCase):

    def test_json_access_and_session_lines(self):
        with UvwsServer("--log-format", "json") as srv:
            self.assertEqual(http_get(srv.port, "/").status, 200)
            self.assertEqual(http_get(srv.port, "/missing?q=1").status, 404)
            # a target with a quote and a backslash: still valid JSON
            r = http_request(srv.port, b'GET /we"ird\\path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
            self.assertIn(r.status, (400, 404))
            r = http_request(srv.port, "GET / HTTP/1.0\r\n\r\n")
            self.assertEqual(r.status, 200)
            with WsClient(srv.port, headers=["Sec-WebSocket-Protocol: echo"]) as c:
                c.send_text("j")
                self.assertEqual(c.recv_message(5), (1, b"j"))
                self.assertEqual(c.close_handshake(1000), 1000)
            with WsClient(srv.port) as c:
                c.send(1, b"\xff")  # invalid UTF-8: closed 1007 by the server
                self.assertEqual(c.recv_close(5), 1007)
                c.send(8, close_payload(1000))
                c.expect_eof(5)
            srv.wait_log(r'"event":"ws_close".*"code":1007')
            srv.wait_log(r'"event":"http".*"status":400|"event":"http".*"target":"/we')
            events = {"http": [], "ws_open": [], "ws_close": [], "ws_fail": []}
            for line in srv.log_text().split("\n"):
                if line.startswith("uvws: "):
                    continue  # the program's own messages (signals)
                m = LOG_LINE_RE.match(line)
                self.assertIsNotNone(m, "log line without time and level: %r" % line)
                msg = m.group(3)
                # no access or session line in the text format
                self.assertNotRegex(msg, r'^http \S+ "', line)
                self.assertNotRegex(msg, r"^ws (open|close|fail) ", line)
                if msg.startswith("{"):
                    obj = json.loads(msg)
                    self.assertIn(obj.get("event"), events, line)
                    events[obj["event"]].append(obj)
            fields = {"http": {"event": str, "peer": str, "method": str, "target": str,
                               "version": str, "status": int, "bytes": int},
                      "ws_open": {"event": str, "peer": str, "path": str, "protocol": str,
                                  "extensions": str},
                      "ws_close": {"event": str, "peer": str, "path": str, "code": int, "by": str,
                                   "duration_ms": int},
                      "ws_fail": {"event": str, "peer": str, "path": str, "code": int, "reason": str}}
            for kind, objs in events.items():
                for obj in objs:
                    self.assertEqual(set(obj), set(fields[kind]), obj)
                    for k, t in fields[kind].items():
                        self.assertIsInstance(obj[k], t, (k, obj))
                    self.assertRegex(obj["peer"], r"^127\.0\.0\.1:\d+$")
            http = events["http"]
            self.assertGreaterEqual(len(http), 4)
            self.assertIn(("GET", "/", "1.1", 200), [(o["method"], o["target"], o["version"], o["status"]) for o in http])
            self.assertIn(("/missing?q=1", 404), [(o["target"], o["status"]) for o in http])
            self.assertIn(("1.0", 200), [(o["version"], o["status"]) for o in http])
            weird = [o for o in http if "ird" in o["target"]]
            if weird:  # logged: the JSON string decodes back to the target as sent
                self.assertEqual(weird[0]["target"], '/we"ird\\path')
            self.assertEqual(len(events["ws_open"]), 2)
            self.assertEqual(events["ws_open"][0]["path"], "/echo")
            self.assertEqual(events["ws_open"][0]["protocol"], "echo")
            closes = sorted((o["code"], o["by"]) for o in events["ws_close"])
            self.assertEqual(closes, [(1000, "client"), (1007, "server")])
            self.assertEqual([(o["code"], o["reason"]) for o in events["ws_fail"]],
                             [(1007, "invalid UTF-8 in text message")])


if __name__ == "__main__":
    unittest.main()
