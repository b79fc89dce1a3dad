"""Start the real uvws binary on an ephemeral loopback port, for tests.

    with UvwsServer() as srv:
        srv.port, srv.url("ws", "/echo"), srv.log_text()

The binary comes from $UVWS_BIN (ctest sets it) or build/default/uvws.
The server is started with --port 0; the port is read from its
"listening on http://HOST:PORT" log line. With TLS flags (--tls-cert or
--tls-self-signed; pass "--tls-port", "0" too) start() also waits for
"listening on https://HOST:PORT" and sets srv.tls_port (srv.url("https") and
srv.url("wss") use it); with --tls-only that is the only line and srv.port
stays None. srv.tls_fingerprint is the "AB:CD:..." SHA-256 of the certificate
the server logged at startup. On exit the server gets SIGTERM and
must exit 0 within 10 s (under AddressSanitizer a leak makes that fail), else
the context manager raises: a test that leaves the server unhappy fails.
"""
import atexit
import os
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LISTEN_RE = re.compile(r"listening on http://(\S+):(\d+)")
TLS_LISTEN_RE = re.compile(r"listening on https://(\S+):(\d+)")
TLS_FINGERPRINT_RE = re.compile(r"TLS certificate.* SHA-256 fingerprint ([0-9A-F]{2}(?::[0-9A-F]{2}){31})")


# Every process start() made. A test that loses one (starts a server twice, forgets to stop
# it) would leave a uvws running after the suite: at exit those are killed and the test
# process fails, naming them.
_STARTED = []


@atexit.register
def _no_server_left():
    left = [p for p in _STARTED if p.poll() is None]
    for p in left:
        p.kill()
        p.wait()
    if left:
        sys.stdout.flush()
        sys.stderr.write("uvwsproc: FAILED: the test left %d uvws process(es) running (pids %s), "
                         "killed now\n" % (len(left), " ".join(str(p.pid) for p in left)))
        sys.stderr.flush()
        os._exit(1)


def uvws_bin():
    return os.environ.get("UVWS_BIN") or os.path.join(ROOT, "build", "default", "uvws")


class UvwsServer:
    def __init__(self, *args, web=None, host="127.0.0.1", expect_exit=0, start_timeout=10.0):
        self.args = list(args)
        self.web = web if web is not None else os.path.join(ROOT, "web")
        self.host = host
        self.expect_exit = expect_exit
        self.start_timeout = start_timeout
        self.port = None
        self.tls_port = None
        self.tls_fingerprint = None
        # Which "listening on" lines start() waits for.
        flags = [str(a).split("=", 1)[0] for a in self.args]
        self._want_tls = "--tls-cert" in flags or "--tls-self-signed" in flags
        self._want_plain = "--tls-only" not in flags
        self.proc = None
        self._lines = []
        self._lock = threading.Lock()
        self._listening = threading.Event()

    def _reader(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self._lines.append(line)
            if not self._listening.is_set():
                m = LISTEN_RE.search(line)
                if m and self.port is None:
                    self.port = int(m.group(2))
                m = TLS_LISTEN_RE.search(line)
                if m and self.tls_port is None:
                    self.tls_port = int(m.group(2))
                m = TLS_FINGERPRINT_RE.search(line)
                if m and self.tls_fingerprint is None:
                    self.tls_fingerprint = m.group(1)
                if self._started():
                    self._listening.set()
        self._listening.set()  # EOF: unblock start() so it can report the death

    def _started(self):
        return ((not self._want_plain or self.port is not None)
                and (not self._want_tls or self.tls_port is not None))

    def start(self):
        cmd = [uvws_bin(), "--host", self.host, "--port", "0", "--web", self.web,
               "--log-level", "debug"] + self.args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        _STARTED.append(self.proc)
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        if not self._listening.wait(self.start_timeout) or not self._started():
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("uvws did not start: %s\n%s" % (cmd, self.log_text()))
        return self

    def url(self, scheme="http", path="/"):
        host = "[%s]" % self.host if ":" in self.host else self.host
        port = self.tls_port if scheme in ("https", "wss") else self.port
        return "%s://%s:%d%s" % (scheme, host, port, path)

    def log_text(self):
        with self._lock:
            return "\n".join(self._lines)

    def wait_log(self, pattern, timeout=5.0):
        """Waits until a log line matches `pattern` (a regex); returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for line in self._lines:
                    m = rx.search(line)
                    if m:
                        return m
            time.sleep(0.02)
        raise AssertionError("no log line matching %r within %.1fs:\n%s"
                             % (pattern, timeout, self.log_text()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._thread.join(2)
                raise AssertionError("uvws did not exit within 10 s of SIGTERM:\n" + self.log_text())
        self._thread.join(5)
        rc = self.proc.returncode
        if self.expect_exit is not None and rc != self.expect_exit:
            raise AssertionError("uvws exited with %r, expected %r:\n%s"
                                 % (rc, self.expect_exit, self.log_text()))
        return rc

    def __enter__(self):
        # A server started before the `with` (one whose start must run beside another loop)
        # is taken over, not started a second time: that left the first process running,
        # unstopped, after its test.
        return self if self.proc is not None else self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop()
        except AssertionError:
            if exc_type is None:
                raise
        return False
