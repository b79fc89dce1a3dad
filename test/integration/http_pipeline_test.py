#!/usr/bin/python3
"""Integration (hardening, memory): HTTP/1.1 pipelining must have backpressure. A client that
pipelines small requests answered from memory (GET /metrics, GET /healthz, a 404, HEAD /) as fast
as it can and never reads its socket must not make the server buffer the answers without bound
nor stall the other clients of its event loop: the server has to stop reading a connection whose
answers are not being taken. Over plain TCP and TLS, on one event loop and on four (one flooding
connection on every loop). Measures the server's RSS (/proc/PID/status VmRSS) and the echo round
trips of another client: ctest runs it alone (RUN_SERIAL).

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/http_pipeline_test.py -v
"""
import os
import re
import select
import shutil
import socket
import ssl
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hardening_util import (ASAN, SLACK, UvwsServer, WsClient, connect, http_get,  # noqa: E402
                            make_web_root, parse_head, read_until, rss_kib)

MIB = 1024
FLOOD_SECONDS = 4.0
# RSS the server may gain over its warmed-up baseline while the clients flood it: a few
# connections' bounded queues and buffers. AddressSanitizer's redzones and quarantine need more.
RSS_BOUND_KIB = (48 if ASAN else 16) * MIB
if ASAN:
    # AddressSanitizer's quarantine (256 MiB by default) holds every freed block for a while;
    # with thousands of answers a second it, not the server, would be the RSS measured. A
    # small one keeps the use-after-free checks for recent frees. The servers inherit it.
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"
# The flood stops early once the server has grown this much: the test has failed by then, and
# the machine should not be pushed into swap or the OOM killer.
RSS_CAP_KIB = 512 * MIB
LATENCY_BOUND = 0.25 * SLACK  # seconds: the slowest echo round trip allowed during a flood
# What RSS may still gain in the second after the flooding connections are closed.
AFTER_CLOSE_KIB = 4 * MIB

HOST = b"Host: x\r\n"
METRICS = b"GET /metrics HTTP/1.1\r\n" + HOST + b"\r\n"
HEALTHZ = b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n"
NOPE = b"GET /nope HTTP/1.1\r\n" + HOST + b"\r\n"
HEAD_ROOT = b"HEAD / HTTP/1.1\r\n" + HOST + b"\r\n"


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def open_conn(port, tls):
    s = connect(port, timeout=10)
    if tls:
        try:
            s = tls_context().wrap_socket(s, server_hostname="localhost")
        except BaseException:
            s.close()
            raise
    return s


def read_response(sock, buf, head_only, deadline):
    """Reads one response from a keep-alive connection (the body by its Content-Length);
    returns (status, headers, body) and leaves what follows in `buf`."""
    read_until(sock, buf, b"\r\n\r\n", deadline)
    end = buf.index(b"\r\n\r\n") + 4
    status, _, headers = parse_head(bytes(buf[:end - 4]))
    n = 0 if head_only or status in (204, 304) else int(headers["content-length"])
    del buf[:end]
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out reading a %d-byte body (have %d)" % (n, len(buf)))
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed in a body (%d of %d bytes)" % (len(buf), n))
        buf += chunk
    body = bytes(buf[:n])
    del buf[:n]
    return status, headers, body


def exchange(sock, requests, timeout=10):
    """Sends `requests` (a list of raw requests) in one write, reads every answer; returns the
    statuses. Used to warm the server up on a connection before it floods."""
    sock.settimeout(timeout)
    sock.sendall(b"".join(requests))
    buf, statuses = bytearray(), []
    deadline = time.monotonic() + timeout
    for r in requests:
        statuses.append(read_response(sock, buf, r.startswith(b"HEAD "), deadline)[0])
    return statuses


class EchoProbe(threading.Thread):
    """One WebSocket on /echo doing a round trip every 50 ms; records every round trip's time.
    The flood must not slow down the other clients of the loop it is on."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.stop, self.errors, self.times = threading.Event(), [], []
        self.c = WsClient(port, timeout=10)

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                msg = b"probe %d" % n
                t0 = time.monotonic()
                self.c.send(2, msg)
                got = self.c.recv_message(10)
                self.times.append(time.monotonic() - t0)
                if got != (2, msg):
                    self.errors.append("bad echo %r" % (got,))
                    return
                n += 1
                self.stop.wait(0.05)
        except Exception as e:  # noqa: BLE001  (reported by finish())
            self.errors.append(repr(e))

    def finish(self):
        """Stops the probe; returns (worst round trip, count)."""
        self.stop.set()
        self.join(15)
        alive = self.is_alive()
        try:
            if not alive and not self.errors:
                self.c.close_handshake(1000, 5)
        except Exception as e:  # noqa: BLE001
            self.errors.append("closing: %r" % e)
        finally:
            self.c.close()
        if alive:
            self.errors.append("the probe hung (a round trip took over 10 s)")
        return (max(self.times) if self.times else None), len(self.times)


def thread_connections(sock, buf):
    """uvws_thread_connections{thread="N"} from /metrics on the keep-alive `sock`: {N: count}."""
    sock.sendall(METRICS)
    status, _, body = read_response(sock, buf, False, time.monotonic() + 10)
    if status != 200:
        raise AssertionError("/metrics answered %d" % status)
    found = {}
    for m in re.finditer(r'^uvws_thread_connections\{thread="(\d+)"\} (\d+)$', body.decode(), re.M):
        found[int(m.group(1))] = int(m.group(2))
    return found


def one_per_thread(port, threads, timeout=15):
    """Opens plain connections until every event loop holds exactly one of them (SO_REUSEPORT
    spreads connections by a hash of their addresses: /metrics tells where each one landed).
    Returns the connections."""
    mconn, mbuf = connect(port, timeout=10), bytearray()
    kept, taken = [], set()
    deadline = time.monotonic() + timeout

    def settled(total):
        while True:
            counts = thread_connections(mconn, mbuf)
            if sum(counts.values()) == total:
                return counts
            if time.monotonic() > deadline:
                raise AssertionError("connections per thread %r, expected %d in all" % (counts, total))
            time.sleep(0.01)
    try:
        counts = settled(1)  # the /metrics connection itself
        if len(counts) != threads:
            raise AssertionError("/metrics shows %d threads, expected %d" % (len(counts), threads))
        while len(taken) < threads:
            if time.monotonic() > deadline:
                raise AssertionError("could not place a connection on every thread within %ds "
                                     "(threads taken: %r)" % (timeout, sorted(taken)))
            s = connect(port, timeout=10)
            after = settled(len(kept) + 2)
            grew = [t for t in after if after[t] > counts.get(t, 0)]
            if len(grew) != 1:
                s.close()
                raise AssertionError("a connection landed on %r: %r -> %r" % (grew, counts, after))
            if grew[0] in taken:
                s.close()
                counts = settled(len(kept) + 1)
                continue
            taken.add(grew[0])
            kept.append(s)
            counts = after
        return kept
    except BaseException:
        for s in kept:
            s.close()
        raise
    finally:
        mconn.close()


class PipelineFlood:
    """Pipelines `requests` (cycled) on `socks` without ever reading, for FLOOD_SECONDS or until
    the server grew by RSS_CAP_KIB; never blocks for long: a socket the kernel will not take more
    from is waited for with select, a TLS one with a short timeout."""

    def __init__(self, pid, socks, requests, tls):
        self.pid, self.socks, self.tls = pid, socks, tls
        unit = b"".join(requests)
        self.chunk = memoryview(unit * max(1, 65536 // len(unit)))
        self.sent, self.peak, self.capped, self.seconds = 0, 0, False, 0.0
        self.dropped = []  # connections the server ended (also a way to bound what it holds)

    def run(self, base):
        offs = {s: 0 for s in self.socks}
        active = list(self.socks)
        blocked = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError,
                   socket.timeout)
        for s in self.socks:
            if self.tls:
                s.settimeout(0.05)
            else:
                s.setblocking(False)
        self.peak = base
        start = time.monotonic()
        end = start + FLOOD_SECONDS
        next_sample = 0.0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now >= next_sample:
                self.peak = max(self.peak, rss_kib(self.pid))
                next_sample = now + 0.05
                if self.peak - base > RSS_CAP_KIB:
                    self.capped = True
                    break
            if not active:
                time.sleep(min(0.05, end - now))
                continue
            _, writable, _ = select.select([], active, [], min(0.05, end - now))
            for s in writable:
                try:
                    n = s.send(self.chunk[offs[s]:])
                except blocked:
                    n = 0
                except OSError as e:  # reset, EPIPE, a TLS alert or EOF: the server ended it
                    self.dropped.append(repr(e))
                    active.remove(s)
                    continue
                offs[s] = (offs[s] + n) % len(self.chunk)
                self.sent += n
        self.seconds = time.monotonic() - start
        self.peak = max(self.peak, rss_kib(self.pid))
        for s in self.socks:
            s.setblocking(True)
            s.settimeout(10)


class PipeliningBackpressureTest(unittest.TestCase):

    def flood(self, srv_args, requests, tls=False, threads=1, what="", web=None):
        args = ["--threads", str(threads)] + list(srv_args)
        if tls:
            args += ["--tls-self-signed", "--tls-port", "0"]
        with UvwsServer(*args, web=web) as srv:
            port = srv.tls_port if tls else srv.port
            pid = srv.proc.pid
            if threads > 1:
                socks = one_per_thread(srv.port, threads)
            else:
                socks = [open_conn(port, tls)]
            probe = None
            try:
                # Warm-up: every flooding connection gets some of its answers, and the probe
                # does a round trip, before the baseline is taken.
                for s in socks:
                    statuses = exchange(s, requests * 10)
                    self.assertEqual(len(statuses), len(requests) * 10)
                self.assertEqual(http_get(srv.port, "/healthz", timeout=10).status, 200)
                probe = EchoProbe(srv.port)
                probe.c.send(2, b"warm-up")
                self.assertEqual(probe.c.recv_message(10), (2, b"warm-up"))
                time.sleep(0.3)
                base = rss_kib(pid)
                probe.start()
                flood = PipelineFlood(pid, socks, requests, tls)
                flood.run(base)
                worst, rounds = probe.finish()
                probe_errors = list(probe.errors)
                probe = None
                # The server still answers someone else.
                t0 = time.monotonic()
                try:
                    r = http_get(srv.port, "/healthz", timeout=10)
                    fresh = (r.status, r.body)
                except (AssertionError, OSError, EOFError) as e:
                    fresh = repr(e)
                fresh_time = time.monotonic() - t0
                # Closing the flooding connections: nothing more to hold.
                before_close = rss_kib(pid)
                flood.peak = max(flood.peak, before_close)  # what it took in after the flood too
                grew = flood.peak - base
                for s in socks:
                    s.close()
                socks = []
                time.sleep(1.0)
                after_close = rss_kib(pid)
            finally:
                if probe is not None:
                    probe.finish()
                for s in socks:
                    s.close()
            sys.stderr.write(
                "\n  pipelining %s: %.1f MiB of requests sent in %.1f s; RSS base %d KiB, peak %d KiB "
                "(grew %.1f MiB%s); worst echo %s over %d round trips; fresh /healthz %r in %.2f s; "
                "RSS %+d KiB in the second after closing; %d flooding connection(s) ended by the "
                "server\n"
                % (what, flood.sent / 1048576.0, flood.seconds, base, flood.peak, grew / 1024.0,
                   ", flood stopped at the cap" if flood.capped else "",
                   "%.0f ms" % (worst * 1000) if worst is not None else "n/a", rounds, fresh,
                   fresh_time, after_close - before_close, len(flood.dropped)))
            self.assertTrue(srv.alive(), "uvws died:\n" + srv.log_text()[-3000:])
        # (the server has exited 0 by now, within 10 s of SIGTERM)
        self.assertLess(grew, RSS_BOUND_KIB,
                        "%s: RSS grew by %.1f MiB (base %d KiB, peak %d KiB%s) while one client per "
                        "loop pipelined %.1f MiB of requests without reading"
                        % (what, grew / 1024.0, base, flood.peak,
                           ", flood stopped at the cap" if flood.capped else "", flood.sent / 1048576.0))
        self.assertEqual(probe_errors, [], "%s: the echo client was not served" % what)
        self.assertGreater(rounds, 0, "%s: no echo round trip completed" % what)
        self.assertLess(worst, LATENCY_BOUND, "%s: an echo round trip took %.0f ms during the flood"
                        % (what, worst * 1000))
        self.assertEqual(fresh, (200, b"ok\n"), "%s: a fresh GET /healthz after the flood" % what)
        self.assertLess(after_close - before_close, AFTER_CLOSE_KIB,
                        "%s: RSS grew by %d KiB after the flooding connections were closed"
                        % (what, after_close - before_close))

    def test_metrics_plain_one_thread(self):
        self.flood((), [METRICS], what="GET /metrics, plain, 1 thread")

    def test_metrics_tls_one_thread(self):
        self.flood((), [METRICS], tls=True, what="GET /metrics, TLS, 1 thread")

    def test_metrics_plain_four_threads(self):
        self.flood((), [METRICS], threads=4, what="GET /metrics, plain, 4 threads")

    def test_in_memory_mix_plain_one_thread(self):
        self.flood((), [NOPE, HEAD_ROOT, HEALTHZ], what="404 + HEAD / + /healthz, plain, 1 thread")

    def test_file_answers_plain_one_thread(self):
        """The reference (passes today): a file answer stops the reading until it is sent, so
        pipelined GETs of a 1 MiB file stay in the kernel's buffers. Shows the flood and its
        bounds are fair."""
        root = make_web_root(1 << 20)
        try:
            self.flood((), [b"GET /big.bin HTTP/1.1\r\n" + HOST + b"\r\n"], web=root,
                       what="GET of a 1 MiB file, plain, 1 thread")
        finally:
            shutil.rmtree(root, ignore_errors=True)



class PipeliningThroughputTest(unittest.TestCase):
    """A client that pipelines and does read gets every answer at once: answering in turns (so
    that nobody else waits behind it) must not make the pipeliner wait for the loop's next
    event between turns (once it waited 250 ms per turn of 64: 2000 answers took 7 s)."""

    def test_20000_pipelined_requests_answered_promptly(self):
        n = 20000
        with UvwsServer("--threads", "1") as srv:
            with connect(srv.port, timeout=10) as s:
                start = time.monotonic()
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" * n)
                data = bytearray()
                while data.count(b"\r\n\r\nok\n") < n:
                    self.assertLess(time.monotonic() - start, 3.0 * SLACK, "only %d of %d pipelined "
                                    "answers after %.1f s" % (data.count(b"ok\n"), n, 3.0 * SLACK))
                    chunk = s.recv(1 << 20)
                    self.assertTrue(chunk, "the server closed after %d answers" % data.count(b"ok\n"))
                    data += chunk
                took = time.monotonic() - start
        sys.stderr.write("  %d pipelined GET /healthz answered in %.2f s\n" % (n, took))
        self.assertEqual(data.count(b"HTTP/1.1 200 OK\r\n"), n)
        self.assertLess(took, 3.0 * SLACK, "%d pipelined answers took %.1f s" % (n, took))

if __name__ == "__main__":
    unittest.main()
