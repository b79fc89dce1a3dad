"""Helpers for the hardening integration tests (hardening_*_test.py): a raw-socket WebSocket
client that can misbehave on purpose, a raw HTTP request, a Prometheus text parser, the server's
RSS. Everything is loopback only and every socket operation is bounded in time."""
import os
import re
import select
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
from uvwsproc import UvwsServer, uvws_bin  # noqa: E402,F401  (re-exported)

IO_TIMEOUT = 10.0
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def is_asan():
    """True when $UVWS_BIN is built with AddressSanitizer (timings and RSS differ)."""
    try:
        with open(uvws_bin(), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


ASAN = is_asan()
# Slack added to every timing bound: sanitizers slow the server down.
SLACK = 2.0 if ASAN else 1.0


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def raise_nofile(want):
    """Raises RLIMIT_NOFILE (soft) to `want` if the hard limit allows; returns the new soft limit.
    Servers started afterwards inherit it."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


def connect(port, source=None, timeout=IO_TIMEOUT, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        s.close()
        raise
    return s


def upgrade_request(path="/echo", headers=()):
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13"]
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%d %s %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)$", lines[0])
    if not m:
        raise AssertionError("not an HTTP status line: %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), m.group(2), headers


def read_until(sock, buf, marker, deadline):
    while marker not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for %r; got %r" % (marker, bytes(buf[:300])))
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed before %r; got %r" % (marker, bytes(buf[:300])))
        buf += chunk
    return buf


def read_to_eof(sock, buf=b"", timeout=IO_TIMEOUT):
    """Reads until EOF (or a reset, which also ends the stream); returns the bytes."""
    buf = bytearray(buf)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no EOF within %.1fs; got %r" % (timeout, bytes(buf[:300])))
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(buf)
        if not chunk:
            return bytes(buf)
        buf += chunk


def http_request(port, raw, timeout=IO_TIMEOUT, source=None):
    """Sends one raw request (bytes or str) on a new connection and reads the whole response
    until EOF (send Connection: close). Returns a Response."""
    if isinstance(raw, str):
        raw = raw.encode()
    with connect(port, source=source, timeout=timeout) as s:
        s.sendall(raw)
        data = read_to_eof(s, timeout=timeout)
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("no complete response head: %r" % data[:300])
    status, reason, headers = parse_head(head)
    return Response(status, reason, headers, body)


def http_get(port, path, headers=(), timeout=IO_TIMEOUT, source=None):
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "Connection: close"] + list(headers)
    return http_request(port, "\r\n".join(lines) + "\r\n\r\n", timeout=timeout, source=source)


# ---- WebSocket frames --------------------------------------------------------------------------

def mask_bytes(payload, key):
    if not payload or key == b"\0\0\0\0":
        return bytes(payload)
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def encode_frame(opcode, payload=b"", fin=True, mask=True, key=None):
    """A client frame. key=b"\\0\\0\\0\\0" is a valid (if predictable) mask that leaves the
    payload as it is: cheap for bulk data."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    if key is None:
        key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def try_parse_frame(buf):
    """Parses one server frame from the front of `buf` (bytes-like). Returns
    (fin, opcode, payload, consumed) or None if incomplete."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n = struct.unpack_from("!H", buf, 2)[0]
        pos = 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n = struct.unpack_from("!Q", buf, 2)[0]
        pos = 10
    if b1 & 0x80:
        raise AssertionError("the server sent a masked frame")
    if len(buf) < pos + n:
        return None
    return bool(b0 & 0x80), b0 & 0x0F, bytes(buf[pos:pos + n]), pos + n


class Closed(Exception):
    """The TCP connection ended (EOF or reset) while a frame was awaited."""


class WsClient:
    """A raw WebSocket client over a blocking socket with timeouts. It answers nothing by
    itself (no pongs, no close replies) unless asked: tests decide what a client does."""

    def __init__(self, port, path="/echo", headers=(), source=None, timeout=IO_TIMEOUT,
                 expect=101):
        self.sock = connect(port, source=source, timeout=timeout)
        self.buf = bytearray()
        try:
            self.sock.sendall(upgrade_request(path, headers))
            read_until(self.sock, self.buf, b"\r\n\r\n", time.monotonic() + timeout)
            head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
            self.status, _, self.headers = parse_head(head)
            self.buf = bytearray(rest)
            if expect is not None and self.status != expect:
                raise AssertionError("upgrade answered %d, expected %d: %r"
                                     % (self.status, expect, bytes(head)))
        except BaseException:
            self.sock.close()
            raise

    def send(self, opcode, payload=b"", fin=True, key=None):
        self.sock.sendall(encode_frame(opcode, payload, fin=fin, key=key))

    def send_text(self, text):
        self.send(1, text.encode())

    def recv_frame(self, timeout=IO_TIMEOUT):
        """The next frame as (fin, opcode, payload); raises Closed on EOF/reset and
        AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            f = try_parse_frame(self.buf)
            if f is not None:
                del self.buf[:f[3]]
                return f[:3]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no frame within %.1fs" % timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(262144)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Closed(repr(e))
            if not chunk:
                raise Closed("EOF")
            self.buf += chunk

    def recv_message(self, timeout=IO_TIMEOUT, skip_pings=True):
        """One data message (reassembled); pings are skipped (not answered)."""
        deadline = time.monotonic() + timeout
        parts, op0 = [], None
        while True:
            fin, op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op in (9, 10) and skip_pings:
                continue
            if op == 8:
                raise AssertionError("close frame %r while a message was awaited" % payload)
            if op0 is None:
                op0 = op
            parts.append(payload)
            if fin:
                return op0, b"".join(parts)

    def recv_close(self, timeout=IO_TIMEOUT):
        """Skips data and pings until a close frame; returns its code (None when empty)."""
        deadline = time.monotonic() + timeout
        while True:
            fin, op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == 8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def expect_eof(self, timeout=IO_TIMEOUT):
        """Waits for the server to end the TCP connection; any frame bytes are discarded."""
        read_to_eof(self.sock, timeout=timeout)

    def close_handshake(self, code=1000, timeout=IO_TIMEOUT):
        """Sends close, waits for the server's close and its FIN; returns the server's code."""
        self.send(8, close_payload(code))
        got = self.recv_close(timeout)
        self.expect_eof(timeout)
        self.sock.close()
        return got

    def rst(self):
        """Closes with SO_LINGER 0: the kernel sends RST instead of FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()
        return False


def echo_roundtrip(port, payload=b"ping", timeout=IO_TIMEOUT):
    """Opens /echo, sends one binary message, checks the echo, closes with 1000."""
    with WsClient(port, timeout=timeout) as c:
        c.send(2, payload)
        op, got = c.recv_message(timeout)
        if (op, got) != (2, payload):
            raise AssertionError("bad echo: %r" % ((op, got[:50]),))
        code = c.close_handshake(1000, timeout)
        if code != 1000:
            raise AssertionError("close answered with %r" % code)


# ---- Prometheus text format ----------------------------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})?'
                       r' ([-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|\+?Inf|-Inf))(?: -?[0-9]+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def parse_metrics(text):
    """Parses Prometheus text exposition (0.0.4). Every line must be a HELP/TYPE comment or a
    sample; a sample's family must have a TYPE line before it. Returns
    ({(name, frozenset(labels.items())): value}, {family: type})."""
    samples, types = {}, {}
    for i, line in enumerate(text.split("\n")):
        if line == "":
            continue
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$", line)
            if not m:
                raise AssertionError("line %d: bad comment %r" % (i + 1, line))
            if m.group(1) == "TYPE":
                if m.group(3) not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise AssertionError("line %d: bad type %r" % (i + 1, line))
                types[m.group(2)] = m.group(3)
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("line %d: not a Prometheus sample: %r" % (i + 1, line))
        name = m.group(1)
        if name not in types:
            raise AssertionError("line %d: sample of %s before its # TYPE line" % (i + 1, name))
        labels = frozenset(LABEL_RE.findall(m.group(2) or ""))
        key = (name, labels)
        if key in samples:
            raise AssertionError("line %d: duplicate sample %r" % (i + 1, line))
        samples[key] = float(m.group(3))
    return samples, types


def metric(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise AssertionError("metric %s%r missing; have %s" % (name, labels, sorted(
            "%s%s" % (n, dict(l)) for n, l in samples if n == name)))
    return samples[key]


def get_metrics(port, timeout=IO_TIMEOUT, source=None):
    r = http_get(port, "/metrics", timeout=timeout, source=source)
    if r.status != 200:
        raise AssertionError("/metrics answered %r" % r)
    return parse_metrics(r.body.decode("utf-8"))[0]


def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a true value; returns it, or fails after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def make_web_root(big_size=0):
    """A temporary web root with index.html and, if big_size, big.bin of that many bytes
    (a repeating pattern with the offset in it, so a prefix can be checked cheaply)."""
    root = tempfile.mkdtemp(prefix="uvws-hard-")
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(b"<!doctype html><title>hardening</title><p>index</p>\n")
    if big_size:
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(big_content(big_size))
    return root


def big_content(size):
    block = bytearray()
    i = 0
    while len(block) < size:
        block += b"%015d\n" % i  # 16 bytes
        i += 16
    return bytes(block[:size])


def select_readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)
