"""Exec routes (--exec, --exec-binary): real programs behind WebSockets.

sh, python3 and a small C program built here (cc; missing: FAILS) as backends: text and binary
round trips, the CGI environment (uvws's own absent), a last line without a newline, exit
codes and signals as close codes, refused input (newline, binary on a text route, invalid
UTF-8 output, overlong lines), stderr to the log and to the client, a program ignoring SIGTERM,
backpressure both ways (the server's RSS and another client's echo latency measured), 300
upgrades against --exec-max-procs 256 (503s counted, no zombie in /proc), a missing or
non-executable program (500), --threads 2 and TLS, uvws shut down with children running, and
--exec-protocol (the client's order wins, UVWS_PROTOCOL, no match: no header and no variable,
every route kind, refused flag values)."""
import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
from hardening_util import ASAN, SLACK, connect, read_until, rss_kib, upgrade_request  # noqa: E402
from uvwsproc import UvwsServer, uvws_bin  # noqa: E402
from wsimport import connector, need_websockets, websockets  # noqa: E402

need_websockets()

T = 10 * SLACK
ws_connect = connector(T)
MIB = 1024
RSS_BOUND_KIB = (64 if ASAN else 24) * MIB

PY_REVERSE = "python3 -c 'import sys\nfor l in sys.stdin: print(l.rstrip(\"\\n\")[::-1])'"
SH_GOT = "sh -c 'while read -r l; do echo \"got $l\"; done'"
# Prints its pid, ignores SIGTERM, sleeps.
PY_STUBBORN = ("python3 -c 'import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
               "print(os.getpid())\ntime.sleep(60)'")
C_SOURCE = r"""
#include <unistd.h>
/* Binary filter: every byte of stdin back on stdout XOR 0xFF, as it comes. */
int main(void) {
  unsigned char b[65536];
  ssize_t n, i;
  while ((n = read(0, b, sizeof b)) > 0) {
    for (i = 0; i < n; i++) b[i] ^= 0xFF;
    if (write(1, b, (size_t)n) != n) return 1;
  }
  return 0;
}
"""


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout * SLACK))


async def recv_all(ws):
    """Messages until the close; returns (messages, close code, reason)."""
    msgs = []
    try:
        while True:
            msgs.append(await asyncio.wait_for(ws.recv(), T))
    except websockets.exceptions.ConnectionClosed as e:
        return msgs, (e.rcvd.code if e.rcvd else None), (e.rcvd.reason if e.rcvd else None)


def children(pid):
    """Pids whose parent is `pid`, with their state letter (Z: zombie)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            out[int(name)] = rest[0]
    return out


def wait_no_children(testcase, pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(pid)
        if not kids:
            return
        time.sleep(0.05)
    testcase.fail("children of uvws left after %.1fs: %s" % (timeout, children(pid)))


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class ExecTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="uvws-exec-")
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise AssertionError("no C compiler (cc) to build the binary test program")
        src = os.path.join(cls.tmp, "xorcat.c")
        cls.xorcat = os.path.join(cls.tmp, "xorcat")
        with open(src, "w") as f:
            f.write(C_SOURCE)
        subprocess.run([cc, "-O2", "-o", cls.xorcat, src], check=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- framing -------------------------------------------------------------------

    def test_text_round_trip_sh_and_python(self):
        async def go(srv):
            async with ws_connect(srv.url("ws", "/sh")) as ws:
                for text in ["hello", "two words", "  spaces  ", "", "caf\u00e9 \u2603"]:
                    await ws.send(text)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), T), "got " + text.strip())
            async with ws_connect(srv.url("ws", "/py")) as ws:
                for text in ["hello", "caf\u00e9 \u2603", "x" * 100000]:
                    await ws.send(text)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), T), text[::-1])
        with UvwsServer("--exec", "/sh=" + SH_GOT, "--exec", "/py=" + PY_REVERSE) as srv:
            run(go(srv))

    def test_binary_round_trip_c_program(self):
        payload = bytes(range(256)) * 1024 + b"\n\x00\n"

        async def go(srv):
            async with ws_connect(srv.url("ws", "/xor")) as ws:
                await ws.send(payload)
                got = b""
                while len(got) < len(payload):
                    m = await asyncio.wait_for(ws.recv(), T)
                    self.assertIsInstance(m, bytes)
                    got += m
                self.assertEqual(got, bytes(b ^ 0xFF for b in payload))
                await ws.send("text goes through as bytes")
                self.assertEqual(await asyncio.wait_for(ws.recv(), T),
                                 bytes(b ^ 0xFF for b in b"text goes through as bytes"))
        with UvwsServer("--exec-binary", "/xor=" + self.xorcat) as srv:
            run(go(srv))

    def test_last_line_without_newline_and_exit_codes(self):
        async def go(srv):
            async with ws_connect(srv.url("ws", "/partial")) as ws:
                self.assertEqual(await recv_all(ws), (["one", "two"], 1000, ""))
            async with ws_connect(srv.url("ws", "/exit3")) as ws:
                self.assertEqual(await recv_all(ws), (["bye"], 1011, "exit status 3"))
            async with ws_connect(srv.url("ws", "/killed")) as ws:
                self.assertEqual(await recv_all(ws), ([], 1011, "killed by signal 9"))
        with UvwsServer("--exec", "/partial=printf 'one\\ntwo'",
                        "--exec", "/exit3=sh -c 'echo bye; exit 3'",
                        "--exec", "/killed=sh -c 'kill -9 $$'") as srv:
            run(go(srv))
            srv.wait_log(r"exec /exit3 #\d+: pid \d+ exited with status 3")
            srv.wait_log(r"exec /killed #\d+: pid \d+ killed by signal 9")

    def test_refused_input_and_output(self):
        async def go(srv):
            async with ws_connect(srv.url("ws", "/cat")) as ws:
                await ws.send("a\nb")
                self.assertEqual(await recv_all(ws), ([], 1003, "a message may not contain a newline"))
            async with ws_connect(srv.url("ws", "/cat")) as ws:
                await ws.send(b"bytes")
                self.assertEqual(await recv_all(ws), ([], 1003, "text messages only"))
            async with ws_connect(srv.url("ws", "/badutf8")) as ws:
                self.assertEqual(await recv_all(ws), (["fine"], 1011, "program output is not UTF-8"))
            async with ws_connect(srv.url("ws", "/long")) as ws:
                self.assertEqual(await recv_all(ws), (["short"], 1009, "line longer than --max-message"))
        with UvwsServer("--max-message", "4K", "--exec", "/cat=cat",
                        "--exec", "/badutf8=printf 'fine\\n\\377\\376\\n'",
                        "--exec", "/long=python3 -c 'print(\"short\"); print(\"x\" * 5000)'") as srv:
            run(go(srv))
            srv.wait_log(r"exec /badutf8 #\d+: pid \d+ wrote a line that is not UTF-8; closing with 1011")
            srv.wait_log(r"exec /long #\d+: pid \d+ wrote a line longer than 4096 bytes; closing with 1009")
            srv.wait_log(r"exec /cat #\d+: message with a newline; closing with 1003")

    def test_cgi_environment(self):
        os.environ["UVWS_TEST_SECRET"] = "must-not-leak"
        os.environ["UVWS_TEST_PASSED"] = "passed-on"
        try:
            async def go(srv):
                url = srv.url("ws", "/env?x=1&y=two")
                async with ws_connect(url, extra_headers=[("X-Custom", "v1"), ("X-Custom", "v2"),
                                                          ("Proxy", "http://evil:1")]) as ws:
                    msgs, code, _ = await recv_all(ws)
                self.assertEqual(code, 1000)
                return dict(m.split("=", 1) for m in msgs)
            with UvwsServer("--exec", "/env=env", "--exec-passenv", "UVWS_TEST_PASSED") as srv:
                env = run(go(srv))
                port = srv.port
        finally:
            del os.environ["UVWS_TEST_SECRET"], os.environ["UVWS_TEST_PASSED"]
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertTrue(env["REMOTE_PORT"].isdigit())
        self.assertEqual(env["SERVER_NAME"], "127.0.0.1")
        self.assertEqual(env["SERVER_PORT"], str(port))
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(env["SERVER_SOFTWARE"], "uvws/0.1.0")
        self.assertEqual(env["REQUEST_METHOD"], "GET")
        self.assertEqual(env["SCRIPT_NAME"], "/env")
        self.assertEqual(env["PATH_INFO"], "")
        self.assertEqual(env["QUERY_STRING"], "x=1&y=two")
        self.assertEqual(env["HTTPS"], "off")
        self.assertEqual(env["HTTP_HOST"], "127.0.0.1:%d" % port)
        self.assertEqual(env["HTTP_X_CUSTOM"], "v1, v2")
        self.assertEqual(env["HTTP_SEC_WEBSOCKET_VERSION"], "13")
        self.assertTrue(env["UVWS_CONNECTION_ID"].isdigit())
        self.assertEqual(env["PYTHONUNBUFFERED"], "1")
        self.assertEqual(env["PATH"], os.environ["PATH"])
        self.assertEqual(env["UVWS_TEST_PASSED"], "passed-on")
        self.assertNotIn("UVWS_TEST_SECRET", env)
        self.assertNotIn("HTTP_PROXY", env)
        allowed = {"REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
                   "SERVER_SOFTWARE", "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
                   "HTTPS", "UVWS_CONNECTION_ID", "PYTHONUNBUFFERED", "PATH", "UVWS_TEST_PASSED"}
        self.assertEqual(sorted(k for k in env if k not in allowed and not k.startswith("HTTP_")), [])

    def test_stderr_to_log_and_client(self):
        prog = "sh -c 'echo oops >&2; echo out; printf \"\\033[31mred\" >&2'"

        async def go(srv):
            async with ws_connect(srv.url("ws", "/e")) as ws:
                msgs, code, _ = await recv_all(ws)
            self.assertEqual(code, 1000)
            self.assertEqual(sorted(msgs), sorted(["stderr: oops", "out", "stderr: \x1b[31mred"]))
        with UvwsServer("--exec", "/e=" + prog, "--exec-stderr", "client") as srv:
            run(go(srv))
            srv.wait_log(r"exec /e #\d+ stderr: oops$")
            srv.wait_log(r"exec /e #\d+ stderr: \?\[31mred$")  # the escape is not written to the log

    def test_exec_dir(self):
        """--exec-dir: executables at /NAME; dot files, non-executables, folders, symlinks out of
        the folder and traversal attempts are 404; a symlink inside works."""
        d = os.path.join(self.tmp, "bin")
        os.makedirs(os.path.join(d, "sub"), exist_ok=True)
        outside = os.path.join(self.tmp, "outside.sh")

        def script(path, body, mode=0o755):
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + body + "\n")
            os.chmod(path, mode)
        script(os.path.join(d, "hello.sh"), 'echo "hello from $SCRIPT_NAME"')
        script(os.path.join(d, ".hidden"), "echo hidden")
        script(os.path.join(d, "plain.txt"), "echo plain", 0o644)
        script(os.path.join(d, "sub", "inner"), "echo inner")
        script(outside, "echo outside")
        os.symlink(os.path.join(d, "hello.sh"), os.path.join(d, "alias"))
        os.symlink(outside, os.path.join(d, "escape"))

        async def go(srv):
            for path in ("/hello.sh", "/alias"):
                async with ws_connect(srv.url("ws", path)) as ws:
                    msgs, code, _ = await recv_all(ws)
                self.assertEqual((msgs, code), (["hello from " + path], 1000))
        with UvwsServer("--exec-dir", d) as srv:
            run(go(srv))
            for path in ("/.hidden", "/plain.txt", "/sub", "/sub/inner", "/escape", "/../outside.sh",
                         "/%2e%2e/outside.sh", "/sub/../hello.sh/..", "/outside.sh"):
                s = connect(srv.port)
                s.sendall(upgrade_request(path))
                head = read_until(s, b"", b"\r\n\r\n", time.monotonic() + T)
                s.close()
                self.assertFalse(head.startswith(b"HTTP/1.1 101 "), (path, head))
                self.assertRegex(head, rb"^HTTP/1.1 (400|404) ", path)
            srv.wait_log(r"exec dir \S+: skipping 'escape': it points outside the folder")
            wait_no_children(self, srv.proc.pid, 2)

    # ---- subprotocols (--exec-protocol) -----------------------------------------------

    def raw_101(self, srv, path, offer=None):
        """The response head to an upgrade of `path` offering `offer` (a header value, or none)."""
        s = connect(srv.port)
        s.sendall(upgrade_request(path, ["Sec-WebSocket-Protocol: " + offer] if offer else []))
        head = read_until(s, b"", b"\r\n\r\n", time.monotonic() + T)
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), (path, head))
        return head.decode("latin-1")

    def test_subprotocol_negotiated_and_seen_by_the_program(self):
        """The route speaks chat.v2,chat.v1 (in that order): the first of the client's offer that
        the route speaks wins, in the client's order; the 101 names it and the program sees it as
        UVWS_PROTOCOL. No offer, or only unknown ones: a 101 without Sec-WebSocket-Protocol
        (RFC 6455 4.2.2 lets the server select none) and UVWS_PROTOCOL unset (not empty)."""
        prog = ("sh -c 'echo \"protocol=${UVWS_PROTOCOL-<unset>}\"; "
                "echo \"offer=${HTTP_SEC_WEBSOCKET_PROTOCOL-<unset>}\"'")

        async def seen(srv, path, offer):
            kw = {"subprotocols": offer} if offer is not None else {}
            async with ws_connect(srv.url("ws", path), **kw) as ws:
                msgs, code, _ = await recv_all(ws)
                self.assertEqual(code, 1000)
                return ws.subprotocol, msgs

        async def go(srv):
            cases = [
                (["chat.v1"], "chat.v1"),
                (["chat.v1", "chat.v2"], "chat.v1"),  # the client's order wins over the route's
                (["chat.v2", "chat.v1"], "chat.v2"),
                (["unknown", "chat.v2"], "chat.v2"),
                (["Chat.V1"], None),  # names are compared exactly
                (["unknown", "other"], None),
                (None, None),
            ]
            for offer, want in cases:
                got, msgs = await seen(srv, "/p", offer)
                self.assertEqual(got, want, offer)
                self.assertEqual(msgs, ["protocol=" + (want or "<unset>"),
                                        "offer=" + (", ".join(offer) if offer else "<unset>")], offer)
            # a route without --exec-protocol negotiates nothing, whatever the offer
            got, msgs = await seen(srv, "/plain", ["chat.v1"])
            self.assertEqual((got, msgs[0]), (None, "protocol=<unset>"))
        with UvwsServer("--exec", "/p=" + prog, "--exec", "/plain=" + prog,
                        "--exec-protocol", "/p=chat.v2,chat.v1") as srv:
            run(go(srv))
            head = self.raw_101(srv, "/p", "chat.v1, chat.v2")
            self.assertIn("\r\nSec-WebSocket-Protocol: chat.v1\r\n", head)
            for offer in ("unknown, other", None):
                self.assertNotIn("sec-websocket-protocol", self.raw_101(srv, "/p", offer).lower())

    def test_subprotocol_on_every_exec_kind(self):
        """--exec-protocol applies to --exec-binary, --exec-shared and --exec-dir routes too."""
        d = os.path.join(self.tmp, "protobin")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tell"), "w") as f:
            f.write('#!/bin/sh\necho "protocol=$UVWS_PROTOCOL"\n')
        os.chmod(os.path.join(d, "tell"), 0o755)

        async def go(srv):
            async with ws_connect(srv.url("ws", "/tell"), subprotocols=["x", "dir.v1"]) as ws:
                msgs, code, _ = await recv_all(ws)
                self.assertEqual((ws.subprotocol, msgs, code), ("dir.v1", ["protocol=dir.v1"], 1000))
            async with ws_connect(srv.url("ws", "/xor"), subprotocols=["bin.v1"]) as ws:
                self.assertEqual(ws.subprotocol, "bin.v1")
                await ws.send(b"\x00\x0f")
                self.assertEqual(await asyncio.wait_for(ws.recv(), T), b"\xff\xf0")
        with UvwsServer("--exec-binary", "/xor=" + self.xorcat, "--exec-shared", "/room=cat",
                        "--exec-dir", d, "--exec-protocol", "/xor=bin.v1",
                        "--exec-protocol", "/room=room.v1,room.v0", "--exec-protocol", "/tell=dir.v1") as srv:
            run(go(srv))
            for path, offer, want in (("/xor", "bin.v1", "bin.v1"), ("/room", "room.v0, room.v1", "room.v0"),
                                      ("/tell", "dir.v1", "dir.v1")):
                self.assertIn("\r\nSec-WebSocket-Protocol: %s\r\n" % want, self.raw_101(srv, path, offer))

    def test_exec_protocol_flag_errors(self):
        """A bad --exec-protocol stops the start (exit 2) with a message naming what is wrong."""
        cases = [
            (["--exec", "/a=cat", "--exec-protocol", "/b=x"],
             "uvws: --exec-protocol /b=x: /b is not a route of --exec, --exec-binary, --exec-shared or "
             "--exec-dir"),
            (["--exec-protocol", "/a=x"],
             "uvws: --exec-protocol /a=x: /a is not a route of --exec, --exec-binary, --exec-shared or "
             "--exec-dir"),
            (["--exec", "/a=cat", "--exec-protocol", "/a=good,bad name"],
             "uvws: invalid value '/a=good,bad name' for --exec-protocol: 'bad name' is not a subprotocol "
             "name (RFC 6455: letters, digits and !#$%&'*+-.^_`|~)"),
            (["--exec", "/a=cat", "--exec-protocol", "/a=x@y"],
             "uvws: invalid value '/a=x@y' for --exec-protocol: 'x@y' is not a subprotocol name"),
            (["--exec", "/a=cat", "--exec-protocol", "/a=x,,y"],
             "uvws: invalid value '/a=x,,y' for --exec-protocol: an empty subprotocol name"),
            (["--exec", "/a=cat", "--exec-protocol", "/a="],
             "uvws: invalid value '/a=' for --exec-protocol: an empty subprotocol name"),
            (["--exec", "/a=cat", "--exec-protocol", "a=x"],
             "uvws: invalid value 'a=x' for --exec-protocol: expected /PATH=NAME[,NAME...]"),
            (["--exec", "/a=cat", "--exec-protocol", "/a=x", "--exec-protocol", "/a=y"],
             "uvws: invalid value '/a=y' for --exec-protocol: /a already has an --exec-protocol list"),
        ]
        for args, message in cases:
            r = subprocess.run([uvws_bin(), "--host", "127.0.0.1", "--port", "0"] + args,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=10 * SLACK)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertTrue(r.stderr.startswith(message), (args, r.stderr))
            self.assertNotIn("listening", r.stderr)

    # ---- lifecycle -------------------------------------------------------------------

    def test_program_ignoring_sigterm_is_killed(self):
        async def go(srv):
            async with ws_connect(srv.url("ws", "/stubborn")) as ws:
                pid = int(await asyncio.wait_for(ws.recv(), T))
                self.assertTrue(pid_alive(pid))
                closed = time.monotonic()
            return pid, closed
        with UvwsServer("--exec", "/stubborn=" + PY_STUBBORN, "--exec-close-timeout", "300ms") as srv:
            pid, closed = run(go(srv))
            while pid_alive(pid) and time.monotonic() - closed < 5 * SLACK:
                time.sleep(0.01)
            gone = time.monotonic() - closed
            self.assertFalse(pid_alive(pid), "the program outlived SIGKILL")
            self.assertGreater(gone, 0.55, "killed before SIGTERM's timeout ran out")
            self.assertLess(gone, 2.0 * SLACK)
            srv.wait_log(r"exec /stubborn #\d+: pid %d still running 300 ms after its stdin closed; SIGTERM" % pid)
            srv.wait_log(r"exec /stubborn #\d+: pid %d ignored SIGTERM for 300 ms; SIGKILL" % pid)
            srv.wait_log(r"exec /stubborn #\d+: pid %d killed by signal 9" % pid)
            wait_no_children(self, srv.proc.pid, 2)
        print("\n  stubborn program gone %.2f s after the close (timeout 300 ms)" % gone)

    def test_missing_and_not_executable_program_get_500(self):
        noexec = os.path.join(self.tmp, "noexec.sh")
        with open(noexec, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(noexec, 0o644)
        with UvwsServer("--exec", "/missing=/nonexistent/program arg",
                        "--exec", "/noexec=" + noexec) as srv:
            for path, why in (("/missing", "no such file or directory"), ("/noexec", "permission denied")):
                s = connect(srv.port)
                s.sendall(upgrade_request(path))
                head = read_until(s, b"", b"\r\n\r\n", time.monotonic() + T)
                s.close()
                self.assertTrue(head.startswith(b"HTTP/1.1 500 "), head)
                srv.wait_log(r"exec %s: cannot start \S+: %s; answering 500" % (path, why))
            wait_no_children(self, srv.proc.pid, 2)

    def test_300_upgrades_on_256_procs(self):
        with UvwsServer("--exec", "/cat=cat", "--exec-max-procs", "256", "--threads", "2") as srv:
            socks = [connect(srv.port) for _ in range(300)]
            for s in socks:
                s.sendall(upgrade_request("/cat"))
            statuses, retry = {}, 0
            for s in socks:
                try:
                    head = read_until(s, b"", b"\r\n\r\n", time.monotonic() + T)
                except EOFError as e:
                    raise AssertionError("%s\n%s" % (e, srv.log_text()[-3000:]))
                code = int(head.split(b" ", 2)[1])
                statuses[code] = statuses.get(code, 0) + 1
                retry += code == 503 and b"\r\nRetry-After: 1\r\n" in head
            self.assertEqual(statuses, {101: 256, 503: 44})
            self.assertEqual(retry, 44)
            kids = children(srv.proc.pid)
            self.assertEqual(len(kids), 256, kids)
            for s in socks:
                s.close()
            wait_no_children(self, srv.proc.pid, 5 * SLACK)
            # the slots are free again
            s = connect(srv.port)
            s.sendall(upgrade_request("/cat"))
            head = read_until(s, b"", b"\r\n\r\n", time.monotonic() + T)
            s.close()
            self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
        print("\n  300 upgrades: %d x 101, %d x 503 with Retry-After; no child left" % (statuses[101], retry))

    def test_shutdown_ends_every_child(self):
        """Clients that never answer the closing handshake: uvws waits --shutdown-timeout (3 s)
        for them, and its programs, 5 of which ignore SIGTERM, are gone within it."""
        srv = UvwsServer("--exec", "/cat=cat", "--exec", "/stubborn=" + PY_STUBBORN,
                         "--exec-close-timeout", "300ms", "--threads", "2", "--shutdown-timeout", "3s")
        srv.start()
        socks = []
        try:
            for path in ["/cat"] * 5 + ["/stubborn"] * 5:
                s = connect(srv.port)
                socks.append(s)
                s.sendall(upgrade_request(path))
                head = read_until(s, b"", b"\r\n\r\n", time.monotonic() + T)
                self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
            deadline = time.monotonic() + T
            while len(children(srv.proc.pid)) < 10 and time.monotonic() < deadline:
                time.sleep(0.02)
            kids = list(children(srv.proc.pid))
            self.assertEqual(len(kids), 10)
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            while any(pid_alive(p) for p in kids) and time.monotonic() - t0 < 10:
                time.sleep(0.02)
            gone = time.monotonic() - t0
            self.assertEqual([p for p in kids if pid_alive(p)], [])
            srv.proc.wait(10)
            took = time.monotonic() - t0
            srv.stop()  # checks the exit status: 0
        finally:
            if srv.alive():
                srv.proc.kill()
            for s in socks:
                s.close()
        self.assertLess(gone, 3.0 + 0.2 * SLACK)
        srv.wait_log(r"exec: shutting down, 5 program\(s\) still running; SIGKILL")
        print("\n  shutdown with 10 programs (5 ignoring SIGTERM), clients silent: programs gone "
              "in %.2f s, uvws exited in %.2f s (--shutdown-timeout 3s)" % (gone, took))

    def test_threads_and_tls(self):
        async def go(srv):
            async def one(i):
                async with ws_connect(srv.url("ws", "/py")) as ws:
                    await ws.send("message %d" % i)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), T), ("message %d" % i)[::-1])
            await asyncio.gather(*(one(i) for i in range(40)))
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            async with ws_connect(srv.url("wss", "/env"), ssl=ctx) as ws:
                msgs, code, _ = await recv_all(ws)
            self.assertEqual(code, 1000)
            env = dict(m.split("=", 1) for m in msgs)
            self.assertEqual(env["HTTPS"], "on")
            self.assertEqual(env["SERVER_PORT"], str(srv.tls_port))
        with UvwsServer("--threads", "2", "--tls-self-signed", "--tls-port", "0",
                        "--exec", "/py=" + PY_REVERSE, "--exec", "/env=env") as srv:
            run(go(srv))
            wait_no_children(self, srv.proc.pid, 5 * SLACK)

    # ---- backpressure ------------------------------------------------------------------

    async def echo_latency(self, srv, stop):
        """Worst round trip on /echo while `stop` is not set."""
        worst = 0.0
        async with ws_connect(srv.url("ws", "/echo")) as ws:
            while not stop.is_set():
                t0 = time.monotonic()
                await ws.send("ping")
                self.assertEqual(await asyncio.wait_for(ws.recv(), T), "ping")
                worst = max(worst, time.monotonic() - t0)
                await asyncio.sleep(0.02)
        return worst

    def test_program_not_reading_while_client_floods(self):
        chunk = "y" * 65536

        async def go(srv):
            pid = srv.proc.pid
            base = rss_kib(pid)
            peak = base
            stop = asyncio.Event()
            lat = asyncio.ensure_future(self.echo_latency(srv, stop))
            sent = 0
            async with ws_connect(srv.url("ws", "/sleep"), compression=None) as ws:
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    try:
                        await asyncio.wait_for(ws.send(chunk), 0.2)
                        sent += len(chunk)
                    except asyncio.TimeoutError:
                        break  # the send blocks: uvws stopped reading us
                    peak = max(peak, rss_kib(pid))
                t_block = time.monotonic()
                while time.monotonic() - t_block < 1:
                    await asyncio.sleep(0.1)
                    peak = max(peak, rss_kib(pid))
                stop.set()
                worst = await lat
                ws.transport.abort()
            return sent, base, peak, worst
        # A paused WebSocket is not read, so its client's leaving is seen only when the
        # program ends (or writes): sleep 6 ends by itself, and the connection with it.
        with UvwsServer("--exec", "/sleep=sleep 6") as srv:
            sent, base, peak, worst = run(go(srv))
            srv.wait_log(r"exec /sleep #\d+: pid \d+ exited with status 0", 10 * SLACK)
            wait_no_children(self, srv.proc.pid, 5 * SLACK)
        print("\n  client flooding a program that never reads: %.1f MiB accepted, RSS %+d KiB, "
              "other client's worst echo %.1f ms" % (sent / 1048576, peak - base, worst * 1000))
        self.assertLess(sent, 16 * 1048576, "uvws kept reading a WebSocket whose program does not read")
        self.assertLess(peak - base, RSS_BOUND_KIB)
        self.assertLess(worst, 0.25 * SLACK)

    def test_program_flooding_while_client_never_reads(self):
        async def go(srv):
            pid = srv.proc.pid
            base = rss_kib(pid)
            peak = base
            s = connect(srv.port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(upgrade_request("/yes"))
            head = read_until(s, b"", b"\r\n\r\n", time.monotonic() + T)
            self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
            stop = asyncio.Event()
            lat = asyncio.ensure_future(self.echo_latency(srv, stop))
            t0 = time.monotonic()
            while time.monotonic() - t0 < 3:
                await asyncio.sleep(0.1)
                peak = max(peak, rss_kib(pid))
            stop.set()
            worst = await lat
            kids = children(pid)
            s.close()
            return base, peak, worst, kids
        with UvwsServer("--exec", "/yes=yes " + "z" * 200) as srv:
            base, peak, worst, kids = run(go(srv))
            self.assertEqual(len(kids), 1)
            # blocked on a full pipe: sleeping, not running flat out
            self.assertIn(list(kids.values())[0], "S")
            wait_no_children(self, srv.proc.pid, 5 * SLACK)
        print("\n  program flooding a client that never reads: RSS %+d KiB, other client's worst echo "
              "%.1f ms" % (peak - base, worst * 1000))
        self.assertLess(peak - base, RSS_BOUND_KIB)
        self.assertLess(worst, 0.25 * SLACK)


if __name__ == "__main__":
    unittest.main(verbosity=2)
