#!/usr/bin/python3
"""WebSocket (RFC 6455) conformance suite for the uvws /echo route.

Covers the case categories of the Autobahn|Testsuite fuzzing client (written
from scratch against RFC 6455 and the uvws behaviour contract):

    1  framing            2  ping/pong          3  reserved bits
    4  opcodes            5  fragmentation      6  UTF-8 handling
    7  close handling     9  limits/performance 10 auto-fragmentation
    12 permessage-deflate compressed echo       13 permessage-deflate parameters
    H  opening handshake

Usage:
    conformance.py [--tls] [--only PREFIX[,PREFIX...]] [--url ws://host:port] [--list] [-v]

Without --url the real server is started with test/pylib/uvwsproc.py
(binary from $UVWS_BIN, else build/default/uvws), plus a second instance with
--max-message 1048576 for the message-size limit cases, and (categories 12
and 13) instances with other --deflate-* flags, each started on first use.

With --tls every case runs over wss:// instead: the servers are started with
--tls-self-signed --tls-port 0 --tls-only (no plain listener at all), every
socket is wrapped with Python's ssl module (TLS 1.2 or later), and the
certificate each connection sees must have the SHA-256 fingerprint its server
logged. With --url wss://host:port the certificate is not verified.

Output: one line per case (PASS/FAIL/SKIP), then last "N passed, M failed".
Exit status 0 only if M == 0 and N > 0.

Standard library only (runs with Debian's /usr/bin/python3).
"""
import argparse
import base64
import hashlib
import os
import random
import select
import socket
import ssl
import struct
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
OPNAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}

IO_TIMEOUT = 5.0        # per socket operation (idle) timeout
CLOSE_TIMEOUT = 5.0     # TCP must close within this after the server's close frame
CASE_DEADLINE = 90.0    # hard limit for one case (large messages under ASan)
MAX_MESSAGE_LIMIT = 1048576  # --max-message of the second server instance
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024

KiB = 1024
MiB = 1024 * 1024


# --tls: an ssl.SSLContext for the client side (None: plain TCP), the uvws flags
# that give a server a TLS-only listener, and the certificate fingerprint each
# managed server logged, by port (SHA-256, "AB:CD:..."), checked on connect.
TLS = None
TLS_SERVER_ARGS = ("--tls-self-signed", "--tls-port", "0", "--tls-only")
TLS_PINS = {}
TLS_WRITE = 16 * 1024   # plaintext per write over TLS (one record)


def tls_client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The servers have fresh self-signed certificates: the fingerprint pin
    # in Conn replaces the chain check.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def new_server(*args):
    """A UvwsServer with `args` (plus the TLS flags under --tls); not started."""
    from uvwsproc import UvwsServer
    return UvwsServer(*(tuple(args) + (TLS_SERVER_ARGS if TLS else ())))


def start_server(*args):
    srv = new_server(*args).start()
    if TLS:
        TLS_PINS[srv.tls_port] = srv.tls_fingerprint
    return srv


def server_port(srv):
    """The port a managed server is tested on (its TLS port under --tls)."""
    return srv.tls_port if TLS else srv.port


def readable(sock, timeout):
    """select() on a socket, counting bytes ssl has already decrypted."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


class CaseFail(Exception):
    """The case failed; the message says why."""


class CaseSkip(Exception):
    """The case cannot run in this configuration."""


# --------------------------------------------------------------------------
# Frame encoding (client side: always masked unless told otherwise)
# --------------------------------------------------------------------------

def xor_mask(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None):
    """Encodes one client frame with the minimal length encoding."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = bytes((b0, mbit | n))
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    if key is None:
        key = os.urandom(4)
    return hdr + key + xor_mask(payload, key)


def frame_header(opcode, length, fin=True, rsv=0, key=None):
    """Only the header (with mask key) of a masked frame declaring `length`."""
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    if length < 126:
        hdr = bytes((b0, 0x80 | length))
    elif length < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, length)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, length)
    return hdr + (key if key is not None else os.urandom(4))


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


def chunks_of(data, size):
    """Splits data into pieces of `size` bytes; always at least one piece."""
    if len(data) == 0:
        return [b""]
    return [data[i:i + size] for i in range(0, len(data), size)]


def fragments(opcode, pieces, rsv=0):
    """Frames of one fragmented message made of `pieces` (list of bytes)."""
    out = []
    last = len(pieces) - 1
    for i, p in enumerate(pieces):
        out.append(frame(opcode if i == 0 else OP_CONT, p, fin=(i == last), rsv=rsv))
    return out


def fragmented(opcode, data, size):
    return b"".join(fragments(opcode, chunks_of(data, size)))


def valid_close_code_to_send(code):
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) \
        or 3000 <= code <= 4999


def short(data, n=40):
    if len(data) <= n:
        return repr(bytes(data))
    return "%r...(%d bytes)" % (bytes(data[:n]), len(data))


# --------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------

class Frame:
    __slots__ = ("fin", "rsv", "opcode", "payload")

    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def describe(self):
        name = OPNAMES.get(self.opcode, "opcode 0x%X" % self.opcode)
        if self.opcode == OP_CLOSE:
            if len(self.payload) >= 2:
                code = struct.unpack("!H", self.payload[:2])[0]
                return "close %d %r" % (code, bytes(self.payload[2:60]))
            return "close (payload %r)" % bytes(self.payload)
        return "%s%s frame %s" % (name, "" if self.fin else " (FIN=0)", short(self.payload))


class Conn:
    """A TCP connection to the server with a read buffer; tolerant writes."""

    def __init__(self, host, port, deadline):
        self.deadline = deadline
        try:
            self.sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        except OSError as e:
            raise CaseFail("cannot connect to %s:%d: %s" % (host, port, e))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if TLS is not None:
            self._tls_handshake(host, port)
        self.rbuf = bytearray()
        self.eof = False          # FIN or RST seen from the server
        self.rst = False
        self.tls_error = None     # --tls: why TLS ended, when not with close_notify
        self.write_broken = False  # a write failed with EPIPE/ECONNRESET
        self.got_close = False
        self.ws_mode = False      # rbuf holds WebSocket frames (handshake done)
        self.lazy_read = False    # read while writing only when writes stall
        self.pending = []         # pongs that arrived between fragments of a message

    def _tls_handshake(self, host, port):
        try:
            self.sock = TLS.wrap_socket(self.sock, server_hostname=host)
        except (OSError, ssl.SSLError) as e:
            self.sock.close()
            raise CaseFail("TLS handshake with %s:%d failed: %s" % (host, port, e))
        want = TLS_PINS.get(port)
        if want is not None:
            der = self.sock.getpeercert(binary_form=True)
            got = ":".join("%02X" % b for b in hashlib.sha256(der).digest())
            if got != want:
                self.sock.close()
                raise CaseFail("TLS certificate of %s:%d has SHA-256 %s, the server logged %s"
                               % (host, port, got, want))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- low level reading ----
    def _remaining(self, limit=IO_TIMEOUT):
        rem = min(limit, self.deadline - time.monotonic())
        if rem <= 0:
            raise CaseFail("case deadline (%.0f s) exceeded" % CASE_DEADLINE)
        return rem

    def _recv_some(self, timeout=IO_TIMEOUT):
        """Receives once into rbuf. Returns False on EOF/RST; raises on timeout."""
        if self.eof:
            return False
        self.sock.settimeout(self._remaining(timeout))
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise CaseFail("timed out after %.1f s waiting for data from the server" % timeout)
        except (ConnectionResetError, ConnectionAbortedError):
            self.eof = self.rst = True
            return False
        except ssl.SSLError as e:
            # TLS ended without close_notify, or a broken record: the
            # connection is over either way; say how in the next failure.
            self.eof = self.rst = True
            self.tls_error = str(e)
            return False
        if not data:
            self.eof = True
            return False
        self.rbuf += data
        return True

    def _need(self, n, what):
        while len(self.rbuf) < n:
            if not self._recv_some():
                raise CaseFail("connection %s while waiting for %s (have %d buffered bytes)%s"
                               % ("reset" if self.rst else "closed by server", what, len(self.rbuf),
                                  " (TLS: %s)" % self.tls_error if self.tls_error else ""))

    def _take(self, n):
        data = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return data

    # ---- writing ----
    def send(self, data, chunk=None, delay=0.0):
        """Writes data (optionally in chunks of `chunk` bytes, one write each,
        sleeping `delay` between them). Reads opportunistically while writing
        so a server that echoes while we write cannot deadlock us. EPIPE /
        ECONNRESET after the server failed the connection are tolerated: they
        only set write_broken. Returns True if everything was written."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if chunk is None:
            return self._send_all(data)
        for i in range(0, len(data), chunk):
            if not self._send_all(data[i:i + chunk]):
                return False
            if delay:
                time.sleep(delay)
        return True

    def _send_all(self, data):
        view = memoryview(data)
        last_progress = time.monotonic()
        while len(view):
            if self.write_broken or self.eof:
                # The server closed: further data cannot be delivered.
                self.write_broken = True
                return False
            rem = self._remaining()
            stalled = time.monotonic() - last_progress
            if stalled > 0.5 and self._rbuf_has_close():
                # The server failed the connection and stopped reading: stop
                # writing and let the reader judge what it sent.
                self.write_broken = True
                return False
            if stalled > IO_TIMEOUT:
                raise CaseFail("write blocked for %.0f s (server not reading)" % IO_TIMEOUT)
            want_read = not self.lazy_read or stalled > 0.2
            if want_read and TLS is not None and self.sock.pending():
                self._recv_some()
                continue
            r, w, _ = select.select([self.sock] if want_read else [], [self.sock], [],
                                    min(rem, 0.1 if self.lazy_read else 0.5))
            if r:
                self._recv_some()
            if w:
                try:
                    if TLS is None:
                        self.sock.settimeout(IO_TIMEOUT)
                        n = self.sock.send(view[:256 * 1024])
                    else:
                        # Non-blocking, one record at a time, so reading can go
                        # on while the server pushes back. A write that would
                        # block is retried with the same bytes (what OpenSSL
                        # requires): `view` only moves on success.
                        self.sock.settimeout(0.0)
                        n = self.sock.send(view[:TLS_WRITE])
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    self.write_broken = True
                    return False
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    continue
                except ssl.SSLError:
                    # the peer's close_notify or a broken TLS session
                    self.write_broken = True
                    return False
                except socket.timeout:
                    continue
                view = view[n:]
                last_progress = time.monotonic()
        return True

    def _rbuf_has_close(self):
        """True if the buffered server data contains a close frame header."""
        if not self.ws_mode:
            return False
        buf, off = self.rbuf, 0
        while off + 2 <= len(buf):
            op, n = buf[off] & 0x0F, buf[off + 1] & 0x7F
            if op == OP_CLOSE:
                return True
            hl = 2
            if n == 126:
                if off + 4 > len(buf):
                    return False
                n, hl = struct.unpack("!H", buf[off + 2:off + 4])[0], 4
            elif n == 127:
                if off + 10 > len(buf):
                    return False
                n, hl = struct.unpack("!Q", buf[off + 2:off + 10])[0], 10
            off += hl + n
        return False

    def send_frame(self, opcode, payload=b"", **kw):
        chunk = kw.pop("chunk", None)
        delay = kw.pop("delay", 0.0)
        return self.send(frame(opcode, payload, **kw), chunk=chunk, delay=delay)

    def send_frames(self, frames, separate=False, chunk=None, delay=0.0):
        """All frames in one write (default), one write per frame (separate),
        or the concatenation chopped in chunk-byte writes."""
        if separate:
            for f in frames:
                if not self.send(f, delay=0):
                    return False
                if delay:
                    time.sleep(delay)
            return True
        return self.send(b"".join(frames), chunk=chunk, delay=delay)

    # ---- frame reading ----
    def recv_frame(self, what="a frame"):
        self._need(2, what)
        b0, b1 = self.rbuf[0], self.rbuf[1]
        fin = bool(b0 & 0x80)
        rsv = (b0 >> 4) & 7
        opcode = b0 & 0x0F
        masked = bool(b1 & 0x80)
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4, what)
            n = struct.unpack("!H", self.rbuf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10, what)
            n = struct.unpack("!Q", self.rbuf[2:10])[0]
            off = 10
            if n >> 63:
                raise CaseFail("server sent a 64-bit frame length with the top bit set")
        if masked:
            raise CaseFail("server sent a masked frame (header %r)" % bytes(self.rbuf[:off]))
        if rsv:
            raise CaseFail("server sent a frame with RSV bits set (0x%X)" % rsv)
        if opcode not in OPNAMES:
            raise CaseFail("server sent a frame with reserved opcode 0x%X" % opcode)
        if opcode >= 8 and (n > 125 or not fin):
            raise CaseFail("server sent an invalid control frame (opcode 0x%X, len %d, fin %d)"
                           % (opcode, n, fin))
        self._need(off + n, what)
        del self.rbuf[:off]
        payload = self._take(n)
        f = Frame(fin, rsv, opcode, payload)
        if opcode == OP_CLOSE:
            self.got_close = True
        return f


class WS(Conn):
    """A WebSocket client connection with assertion helpers."""

    # ---- expectations ----
    def expect_message(self, opcode, payload, what=None):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        what = what or "%s echo of %d bytes" % (OPNAMES[opcode], len(payload))
        if self.pending:
            raise CaseFail("expected %s, got %s" % (what, self.pending[0].describe()))
        f = self.recv_frame(what)
        if f.opcode != opcode:
            raise CaseFail("expected %s, got %s" % (what, f.describe()))
        parts = [f.payload]
        while not f.fin:
            f = self.recv_frame(what + " (continuation)")
            if f.opcode == OP_PONG:
                # RFC 6455 5.4: control frames may be injected between fragments
                self.pending.append(f)
                f = Frame(False, 0, OP_CONT, b"")
                continue
            if f.opcode != OP_CONT:
                raise CaseFail("expected continuation of %s, got %s" % (what, f.describe()))
            parts.append(f.payload)
        data = b"".join(parts)
        if data != payload:
            i = 0
            m = min(len(data), len(payload))
            while i < m and data[i] == payload[i]:
                i += 1
            raise CaseFail("%s: payload differs (got %d bytes, expected %d; first difference at "
                           "offset %d: got %s expected %s)"
                           % (what, len(data), len(payload), i, short(data[i:i + 16]),
                              short(payload[i:i + 16])))
        return data

    def expect_pong(self, payload):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        what = "pong %s" % short(payload, 20)
        f = self.pending.pop(0) if self.pending else self.recv_frame(what)
        if f.opcode != OP_PONG:
            raise CaseFail("expected %s, got %s" % (what, f.describe()))
        if f.payload != payload:
            raise CaseFail("pong payload %s differs from ping payload %s"
                           % (short(f.payload), short(payload)))

    def expect_close(self, code, reply=True):
        """The next server frame must be a close with `code` (well formed), then
        nothing more and TCP EOF/RST within CLOSE_TIMEOUT. If reply, a close
        frame is sent back first (as a client would); write errors tolerated."""
        what = "close %d" % code
        if self.pending:
            raise CaseFail("expected close %d, got %s" % (code, self.pending[0].describe()))
        try:
            f = self.recv_frame(what)
        except CaseFail as e:
            if self.eof and not self.rbuf:
                raise CaseFail("expected close %d but the connection was %s without a close "
                               "frame" % (code, "reset" if self.rst else "closed"))
            raise CaseFail("expected close %d: %s" % (code, e))
        if f.opcode != OP_CLOSE:
            raise CaseFail("expected close %d, got %s" % (code, f.describe()))
        p = f.payload
        if len(p) == 1:
            raise CaseFail("server close frame has a 1-byte payload")
        if len(p) == 0:
            raise CaseFail("expected close %d, got close with empty payload" % code)
        got = struct.unpack("!H", p[:2])[0]
        try:
            p[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise CaseFail("server close reason is not valid UTF-8: %r" % p[2:])
        if not valid_close_code_to_send(got):
            raise CaseFail("server sent close with a code not allowed on the wire: %d" % got)
        if got != code:
            raise CaseFail("expected close %d, got close %d %r" % (code, got, bytes(p[2:80])))
        if reply:
            self.send(frame(OP_CLOSE, close_payload(code)))
        self.expect_eof("after the server's close frame")
        self.close()  # like a real client: close our side once the server has

    def expect_eof(self, why="", timeout=CLOSE_TIMEOUT):
        start = time.monotonic()
        while True:
            if self.rbuf:
                raise CaseFail("server sent %d more bytes %s: %s"
                               % (len(self.rbuf), why, short(self.rbuf)))
            if self.eof:
                return
            rem = timeout - (time.monotonic() - start)
            if rem <= 0:
                raise CaseFail("TCP connection not closed within %.0f s %s" % (timeout, why))
            try:
                self._recv_some(timeout=rem)
            except CaseFail:
                raise CaseFail("TCP connection not closed within %.0f s %s" % (timeout, why))

    # ---- convenience ----
    def text(self, payload, **kw):
        return self.send_frame(OP_TEXT, payload, **kw)

    def binary(self, payload, **kw):
        return self.send_frame(OP_BINARY, payload, **kw)

    def echo(self, opcode, payload):
        self.send_frame(opcode, payload)
        self.expect_message(opcode, payload)


# --------------------------------------------------------------------------
# HTTP / handshake
# --------------------------------------------------------------------------

def make_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key):
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode("ascii")


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers  # list of (lower-name, value)
        self.body = body

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def get(self, name):
        vals = self.get_all(name)
        return vals[0] if vals else None

    def tokens(self, name):
        out = []
        for v in self.get_all(name):
            out.extend(t.strip().lower() for t in v.split(",") if t.strip())
        return out

    def summary(self):
        return "%d %s %s" % (self.status, self.reason, self.body[:80])


def build_request(host_hdr, path="/echo", method="GET", version="HTTP/1.1", key="auto",
                  ws_version="13", upgrade="websocket", connection="Upgrade",
                  protocols=None, extra=()):
    """A handshake request. Pass None to omit a header; `protocols` is a list
    of Sec-WebSocket-Protocol header values (one header line each)."""
    if key == "auto":
        key = make_key()
    lines = ["%s %s %s" % (method, path, version)]
    if host_hdr is not None:
        lines.append("Host: %s" % host_hdr)
    if upgrade is not None:
        lines.append("Upgrade: %s" % upgrade)
    if connection is not None:
        lines.append("Connection: %s" % connection)
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if ws_version is not None:
        lines.append("Sec-WebSocket-Version: %s" % ws_version)
    for p in protocols or ():
        lines.append("Sec-WebSocket-Protocol: %s" % p)
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def read_response(conn):
    """Reads an HTTP response head (and a Content-Length body unless 101)."""
    while True:
        i = conn.rbuf.find(b"\r\n\r\n")
        if i >= 0:
            break
        if len(conn.rbuf) > 65536:
            raise CaseFail("HTTP response head too large")
        if not conn._recv_some():
            raise CaseFail("connection %s before a complete HTTP response (got %s)"
                           % ("reset" if conn.rst else "closed", short(conn.rbuf, 200)))
    head = conn._take(i + 4).decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise CaseFail("malformed HTTP status line %r" % lines[0])
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if ":" not in line:
            raise CaseFail("malformed HTTP header line %r" % line)
        k, v = line.split(":", 1)
        headers.append((k.strip().lower(), v.strip()))
    body = b""
    if status == 101:
        conn.ws_mode = True
    else:
        cl = [v for k, v in headers if k == "content-length"]
        if cl:
            n = int(cl[0])
            conn._need(n, "HTTP response body")
            body = conn._take(n)
    return Response(parts[0], status, reason, headers, body.decode("utf-8", "replace"))


def check_101(resp, key, protocol=None, extensions=None):
    if resp.status != 101:
        raise CaseFail("expected 101, got %s" % resp.summary())
    up = resp.tokens("upgrade")
    if up != ["websocket"]:
        raise CaseFail("101 has Upgrade %r, expected websocket" % resp.get_all("upgrade"))
    if "upgrade" not in resp.tokens("connection"):
        raise CaseFail("101 Connection header %r lacks upgrade" % resp.get_all("connection"))
    acc = resp.get_all("sec-websocket-accept")
    if acc != [accept_for(key)]:
        raise CaseFail("Sec-WebSocket-Accept %r, expected %r" % (acc, accept_for(key)))
    ext = resp.get_all("sec-websocket-extensions")
    if extensions is None and ext:
        raise CaseFail("101 has Sec-WebSocket-Extensions %r although none was offered" % ext)
    if extensions is not None and ext != [extensions]:
        raise CaseFail("101 Sec-WebSocket-Extensions %r, expected %r" % (ext, extensions))
    prot = resp.get_all("sec-websocket-protocol")
    if protocol is None and prot:
        raise CaseFail("101 selects subprotocol %r although none should be" % prot)
    if protocol is not None and prot != [protocol]:
        raise CaseFail("101 Sec-WebSocket-Protocol %r, expected %r" % (prot, protocol))


# --------------------------------------------------------------------------
# Case context / registry
# --------------------------------------------------------------------------

class Ctx:
    def __init__(self, host, port, limit_port, managed):
        self.managed = managed  # servers are started by this script (not --url)
        self.host = host
        self.port = port
        self.limit_port = limit_port
        self.deadline = time.monotonic() + CASE_DEADLINE
        self.conns = []

    def host_header(self, port=None):
        return "%s:%d" % (self.host, port or self.port)

    def raw(self, port=None):
        c = WS(self.host, port or self.port, self.deadline)
        self.conns.append(c)
        return c

    def ws(self, protocols=None, expect_protocol=None, port=None, path="/echo", extra=(),
           expect_extensions=None):
        """Opens a WebSocket to /echo, checking the 101."""
        c = self.raw(port)
        req, key = build_request(self.host_header(port), path=path, protocols=protocols,
                                 extra=extra)
        c.send(req)
        resp = read_response(c)
        check_101(resp, key, expect_protocol, expect_extensions)
        c.ws_mode = True
        return c

    def limited(self):
        if self.limit_port is None:
            raise CaseSkip("needs a server started with --max-message %d (not with --url)"
                           % MAX_MESSAGE_LIMIT)
        return self.ws(port=self.limit_port)

    def http(self, req, chunk=None, delay=0.0):
        c = self.raw()
        c.send(req, chunk=chunk, delay=delay)
        return c, read_response(c)

    def cleanup(self):
        for c in self.conns:
            c.close()


class Case:
    def __init__(self, cid, desc, fn, needs_limit=False):
        self.cid, self.desc, self.fn, self.needs_limit = cid, desc, fn, needs_limit


CASES = []


def add(cid, desc, fn, needs_limit=False):
    CASES.append(Case(cid, desc, fn, needs_limit))


def case(cid, desc, needs_limit=False):
    def deco(fn):
        add(cid, desc, fn, needs_limit)
        return fn
    return deco


def expect_fail(ctx, data, code, before=(), chunk=None, delay=0.0, reply=True):
    """Opens /echo, writes `data` (bytes or list of frames written one per
    write), expects the echoes/pongs in `before` ([(opcode, payload)]) and then
    close `code`."""
    ws = ctx.ws()
    if isinstance(data, list):
        ws.send_frames(data, separate=True)
    else:
        ws.send(data, chunk=chunk, delay=delay)
    for op, payload in before:
        if op == OP_PONG:
            ws.expect_pong(payload)
        else:
            ws.expect_message(op, payload)
    ws.expect_close(code, reply=reply)


# --------------------------------------------------------------------------
# Test data
# --------------------------------------------------------------------------

_cache = {}


def text_payload(n, seed=0):
    """Exactly n bytes of valid UTF-8 with 1-4 byte sequences at odd offsets
    (so fragment boundaries fall inside multi-byte characters)."""
    k = ("t", n, seed)
    if k in _cache:
        return _cache[k]
    unit = "Hello µ κόσμε € 日本 𝄞😀 \u07ff\u0800\uffff\U0010ffff ".encode("utf-8")
    if seed:
        unit = unit[::-1].decode("utf-8", "ignore").encode("utf-8") + b"x"
    reps = n // len(unit) + 2
    data = (unit * reps)[:n]
    # back off to a character boundary, pad with ASCII
    cut = len(data)
    while cut > 0 and (data[cut - 1] & 0xC0) == 0x80:
        cut -= 1
    if cut > 0 and data[cut - 1] >= 0xC0:
        cut -= 1
    data = data[:cut] + b"x" * (n - cut)
    data.decode("utf-8")
    assert len(data) == n
    _cache[k] = data
    return data


def binary_payload(n):
    k = ("b", n)
    if k not in _cache:
        rnd = random.Random(n)
        _cache[k] = rnd.randbytes(n) if hasattr(rnd, "randbytes") else os.urandom(n)
    return _cache[k]


def payload_for(opcode, n):
    return text_payload(n) if opcode == OP_TEXT else binary_payload(n)


# ==========================================================================
# 1  Framing
# ==========================================================================

FRAME_LENGTHS = [0, 125, 126, 127, 128, 65535, 65536]


def _framing_case(opcode, n, chopped):
    def fn(ctx):
        ws = ctx.ws()
        data = payload_for(opcode, n)
        f = frame(opcode, data)
        if chopped:
            if n <= 128:
                ws.send(f, chunk=1)
            else:
                hl = len(f) - n
                ws.send(f[:hl], chunk=1)      # header one byte per write
                ws.send(f[hl:], chunk=997)    # payload in odd-sized writes
        else:
            ws.send(f)
        ws.expect_message(opcode, data)
        ws.send_frame(OP_CLOSE, close_payload(1000))
        ws.expect_close(1000, reply=False)
    return fn


for _i, _n in enumerate(FRAME_LENGTHS, 1):
    add("1.1.%d" % _i, "text message, payload length %d" % _n, _framing_case(OP_TEXT, _n, False))
for _i, _n in enumerate(FRAME_LENGTHS, 1):
    add("1.2.%d" % _i, "binary message, payload length %d" % _n,
        _framing_case(OP_BINARY, _n, False))
for _i, _n in enumerate(FRAME_LENGTHS, 1):
    add("1.3.%d" % _i, "text message, payload length %d, written in small chunks "
        "(header 1 byte per write)" % _n, _framing_case(OP_TEXT, _n, True))
for _i, _n in enumerate(FRAME_LENGTHS, 1):
    add("1.4.%d" % _i, "binary message, payload length %d, written in small chunks "
        "(header 1 byte per write)" % _n, _framing_case(OP_BINARY, _n, True))


@case("1.5.1", "two text messages in one write -> two echoes in order")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "first") + frame(OP_TEXT, "second"))
    ws.expect_message(OP_TEXT, "first")
    ws.expect_message(OP_TEXT, "second")


@case("1.5.2", "20 alternating text/binary messages of growing size in one write")
def _(ctx):
    ws = ctx.ws()
    msgs = []
    for i in range(20):
        op = OP_TEXT if i % 2 == 0 else OP_BINARY
        msgs.append((op, payload_for(op, i * 37)))
    ws.send(b"".join(frame(op, p) for op, p in msgs))
    for op, p in msgs:
        ws.expect_message(op, p)


@case("1.5.3", "three frames chopped into 1-byte writes (text, binary, ping)")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "abc") + frame(OP_BINARY, b"\x00\xff") + frame(OP_PING, "p"), chunk=1)
    ws.expect_message(OP_TEXT, "abc")
    ws.expect_message(OP_BINARY, b"\x00\xff")
    ws.expect_pong("p")


@case("1.5.4", "masking keys 00000000 and FFFFFFFF -> echoes")
def _(ctx):
    ws = ctx.ws()
    for key in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x00\xff\x00\xff"):
        ws.send(frame(OP_TEXT, "key %s" % key.hex(), key=key))
        ws.expect_message(OP_TEXT, "key %s" % key.hex())


@case("1.6.1", "unmasked text frame -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "unmasked", mask=False), 1002)


@case("1.6.2", "unmasked binary frame -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_BINARY, b"\x01\x02", mask=False), 1002)


@case("1.6.3", "unmasked ping frame -> close 1002 (no pong)")
def _(ctx):
    expect_fail(ctx, frame(OP_PING, "x", mask=False), 1002)


@case("1.6.4", "unmasked close frame -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_CLOSE, close_payload(1000), mask=False), 1002)


@case("1.6.5", "unmasked empty text frame after a valid echo -> echo, then close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "ok") + frame(OP_TEXT, b"", mask=False), 1002,
                before=[(OP_TEXT, b"ok")])


@case("1.7.1", "64-bit payload length with the top bit set -> close 1002")
def _(ctx):
    hdr = struct.pack("!BBQ", 0x82, 0x80 | 127, (1 << 63) | 5) + os.urandom(4)
    expect_fail(ctx, hdr + b"\x00" * 5, 1002)


@case("1.7.2", "64-bit payload length 0xFFFFFFFFFFFFFFFF -> close 1002")
def _(ctx):
    hdr = struct.pack("!BBQ", 0x81, 0x80 | 127, 0xFFFFFFFFFFFFFFFF) + os.urandom(4)
    expect_fail(ctx, hdr, 1002)


@case("1.7.3", "64-bit length with top bit set, header in 1-byte writes -> close 1002")
def _(ctx):
    hdr = struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 63) + os.urandom(4)
    expect_fail(ctx, hdr, 1002, chunk=1)


# ==========================================================================
# 2  Ping / pong
# ==========================================================================

def _ping_case(payload, chunk=None):
    def fn(ctx):
        ws = ctx.ws()
        ws.send(frame(OP_PING, payload), chunk=chunk)
        ws.expect_pong(payload)
        ws.echo(OP_TEXT, "after ping")
    return fn


add("2.1", "ping with empty payload -> pong with empty payload", _ping_case(b""))
add("2.2", "ping with 125-byte text payload -> pong with same payload",
    _ping_case(text_payload(125)))
add("2.3", "ping with 125-byte random binary payload -> pong with same payload",
    _ping_case(os.urandom(125)))
add("2.4", "ping with binary payload 00 FF FE FD 80 -> pong with same payload",
    _ping_case(b"\x00\xff\xfe\xfd\x80"))
add("2.5", "ping with 125-byte payload written 1 byte per write -> pong",
    _ping_case(os.urandom(125), chunk=1))
add("2.6", "ping with payload that is not valid UTF-8 -> pong (ping payload is not text)",
    _ping_case(b"\xed\xa0\x80\xff"))


@case("2.7", "ping with 126-byte payload -> close 1002 (no pong)")
def _(ctx):
    expect_fail(ctx, frame(OP_PING, b"x" * 126), 1002)


@case("2.8", "pong with 126-byte payload -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_PONG, b"x" * 126), 1002)


@case("2.9", "unsolicited empty pong is ignored (next frame is the echo)")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_PONG, b"") + frame(OP_TEXT, "after pong"))
    ws.expect_message(OP_TEXT, "after pong")


@case("2.10", "unsolicited 125-byte pong is ignored (next frame is the echo)")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_PONG, os.urandom(125)))
    ws.send(frame(OP_BINARY, b"after pong"))
    ws.expect_message(OP_BINARY, b"after pong")


@case("2.11", "10 pings in one write -> 10 pongs in order")
def _(ctx):
    ws = ctx.ws()
    payloads = [("ping-%d" % i).encode() for i in range(10)]
    ws.send(b"".join(frame(OP_PING, p) for p in payloads))
    for p in payloads:
        ws.expect_pong(p)


@case("2.12", "10 pings, one write each -> 10 pongs in order")
def _(ctx):
    ws = ctx.ws()
    payloads = [os.urandom(i * 12) for i in range(10)]
    for p in payloads:
        ws.send(frame(OP_PING, p))
    for p in payloads:
        ws.expect_pong(p)


@case("2.13", "fragmented ping (FIN=0 ping + continuation) -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_PING, "frag", fin=False) + frame(OP_CONT, "ment"), 1002)


@case("2.14", "ping with FIN=0 alone -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_PING, "x", fin=False), 1002)


@case("2.15", "ping then close in one write -> pong, then close 1000")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_PING, "last") + frame(OP_CLOSE, close_payload(1000)))
    ws.expect_pong("last")
    ws.expect_close(1000, reply=False)


@case("2.16", "text, ping, binary in one write -> echo, pong, echo in order")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "t") + frame(OP_PING, "p") + frame(OP_BINARY, b"b"))
    ws.expect_message(OP_TEXT, "t")
    ws.expect_pong("p")
    ws.expect_message(OP_BINARY, b"b")


# ==========================================================================
# 3  Reserved bits
# ==========================================================================

RSV_VARIANTS = [(4, "RSV1"), (2, "RSV2"), (1, "RSV3"), (7, "RSV1+2+3")]


def _rsv_frame(kind, rsv):
    if kind == "text":
        return frame(OP_TEXT, "hello", rsv=rsv)
    if kind == "binary":
        return frame(OP_BINARY, b"\x00\x01\x02", rsv=rsv)
    if kind == "ping":
        return frame(OP_PING, "ping", rsv=rsv)
    if kind == "pong":
        return frame(OP_PONG, "pong", rsv=rsv)
    if kind == "close":
        return frame(OP_CLOSE, close_payload(1000), rsv=rsv)
    if kind == "continuation":
        return frame(OP_TEXT, "frag", fin=False) + frame(OP_CONT, "ment", rsv=rsv)
    raise ValueError(kind)


for _k, _kind in enumerate(["text", "binary", "ping", "pong", "close", "continuation"], 1):
    for _j, (_rsv, _name) in enumerate(RSV_VARIANTS, 1):
        add("3.%d.%d" % (_k, _j), "%s frame with %s set -> close 1002" % (_kind, _name),
            (lambda kind, rsv: lambda ctx: expect_fail(ctx, _rsv_frame(kind, rsv), 1002))(
                _kind, _rsv))


@case("3.7.1", "valid text + RSV1 text + valid text in one write -> first echo, close 1002, "
      "no second echo")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "before") + frame(OP_TEXT, "bad", rsv=4)
                + frame(OP_TEXT, "after"), 1002, before=[(OP_TEXT, b"before")])


@case("3.7.2", "valid binary echoed, then RSV2 binary in a later write -> close 1002")
def _(ctx):
    ws = ctx.ws()
    ws.echo(OP_BINARY, b"\x01\x02\x03")
    ws.send(frame(OP_BINARY, b"\x04", rsv=2))
    ws.expect_close(1002)


@case("3.7.3", "ping + RSV3 text in one write -> pong, then close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_PING, "p") + frame(OP_TEXT, "bad", rsv=1), 1002,
                before=[(OP_PONG, b"p")])


@case("3.7.4", "valid text + RSV1 text + ping, all in 1-byte writes -> echo, close 1002, no pong")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "ok") + frame(OP_TEXT, "bad", rsv=4) + frame(OP_PING, "p"),
                1002, before=[(OP_TEXT, b"ok")], chunk=1)


@case("3.7.5", "RSV1 on the first frame of a fragmented text message -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "frag", fin=False, rsv=4) + frame(OP_CONT, "ment"), 1002)


# ==========================================================================
# 4  Opcodes
# ==========================================================================

def _opcode_case(op, with_payload):
    def fn(ctx):
        if not with_payload:
            expect_fail(ctx, frame(op, b""), 1002)
        else:
            expect_fail(ctx, frame(OP_TEXT, "before") + frame(op, b"reserved opcode payload")
                        + frame(OP_PING, "p"), 1002, before=[(OP_TEXT, b"before")])
    return fn


for _j, _op in enumerate(range(3, 8), 1):
    add("4.1.%d" % _j, "reserved non-control opcode 0x%X, empty payload -> close 1002" % _op,
        _opcode_case(_op, False))
for _j, _op in enumerate(range(3, 8), 1):
    add("4.2.%d" % _j, "text, reserved non-control opcode 0x%X with payload, ping -> echo, "
        "close 1002, no pong" % _op, _opcode_case(_op, True))
for _j, _op in enumerate(range(0xB, 0x10), 1):
    add("4.3.%d" % _j, "reserved control opcode 0x%X, empty payload -> close 1002" % _op,
        _opcode_case(_op, False))
for _j, _op in enumerate(range(0xB, 0x10), 1):
    add("4.4.%d" % _j, "text, reserved control opcode 0x%X with payload, ping -> echo, "
        "close 1002, no pong" % _op, _opcode_case(_op, True))


@case("4.5.1", "reserved opcode 0x3 inside a fragmented message -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "a", fin=False) + frame(3, "b") + frame(OP_CONT, "c"), 1002)


# ==========================================================================
# 5  Fragmentation
# ==========================================================================

def _frag_echo(opcode, pieces, mode="one"):
    """mode: one (all frames in one write), separate (one write per frame),
    bytes (1-byte writes)."""
    def fn(ctx):
        ws = ctx.ws()
        frames = fragments(opcode, pieces)
        if mode == "one":
            ws.send_frames(frames)
        elif mode == "separate":
            ws.send_frames(frames, separate=True, delay=0.002)
        else:
            ws.send_frames(frames, chunk=1)
        ws.expect_message(opcode, b"".join(pieces))
    return fn


_hello = [b"Hello, ", b"fragmented ", b"world"]
add("5.1", "text message in 2 fragments", _frag_echo(OP_TEXT, [b"frag", b"ment"]))
add("5.2", "binary message in 2 fragments", _frag_echo(OP_BINARY, [b"\x00\x01", b"\xfe\xff"]))
add("5.3", "text message in 3 fragments", _frag_echo(OP_TEXT, _hello))
add("5.4", "text message in 50 fragments of 1..50 bytes",
    _frag_echo(OP_TEXT, chunks_of(text_payload(1275), 25)))
add("5.5", "binary message in 100 fragments", _frag_echo(OP_BINARY,
                                                         chunks_of(binary_payload(1000), 10)))
add("5.6", "text message in 3 fragments, one write per fragment",
    _frag_echo(OP_TEXT, _hello, "separate"))
add("5.7", "binary message in 10 fragments, one write per fragment",
    _frag_echo(OP_BINARY, chunks_of(binary_payload(200), 20), "separate"))
add("5.8", "text message in 3 fragments, chopped into 1-byte writes",
    _frag_echo(OP_TEXT, _hello, "bytes"))
add("5.9", "binary message in 5 fragments, chopped into 1-byte writes",
    _frag_echo(OP_BINARY, chunks_of(binary_payload(50), 10), "bytes"))
add("5.10", "text fragments with an empty first fragment",
    _frag_echo(OP_TEXT, [b"", b"abc", b"def"]))
add("5.11", "text fragments with an empty middle fragment",
    _frag_echo(OP_TEXT, [b"abc", b"", b"def"]))
add("5.12", "text fragments with an empty final fragment",
    _frag_echo(OP_TEXT, [b"abc", b"def", b""]))
add("5.13", "text message of 3 empty fragments -> empty text echo",
    _frag_echo(OP_TEXT, [b"", b"", b""]))
add("5.14", "binary message of empty fragments, one write each",
    _frag_echo(OP_BINARY, [b"", b"", b"\x00", b""], "separate"))


@case("5.15", "ping between fragments (one write) -> pong before the echo")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "Hello, ", fin=False) + frame(OP_PING, "ping!")
            + frame(OP_CONT, "world"))
    ws.expect_pong("ping!")
    ws.expect_message(OP_TEXT, "Hello, world")


@case("5.16", "ping between fragments, separate writes; pong arrives before the final "
      "fragment is sent")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "Hello, ", fin=False))
    ws.send(frame(OP_PING, "ping!"))
    ws.expect_pong("ping!")
    ws.send(frame(OP_CONT, "world"))
    ws.expect_message(OP_TEXT, "Hello, world")


@case("5.17", "ping between fragments, all chopped into 1-byte writes -> pong, echo")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_BINARY, b"\x01\x02", fin=False) + frame(OP_PING, "ping!")
            + frame(OP_CONT, b"\x03"), chunk=1)
    ws.expect_pong("ping!")
    ws.expect_message(OP_BINARY, b"\x01\x02\x03")


@case("5.18", "several pings between several fragments -> pongs in order, then the echo")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "a", fin=False) + frame(OP_PING, "1") + frame(OP_CONT, "b", fin=False)
            + frame(OP_PING, "2") + frame(OP_PING, "3") + frame(OP_CONT, "c"))
    for p in ("1", "2", "3"):
        ws.expect_pong(p)
    ws.expect_message(OP_TEXT, "abc")


@case("5.19", "unsolicited pong between fragments is ignored -> echo")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "x", fin=False) + frame(OP_PONG, "unsolicited")
            + frame(OP_CONT, "y"))
    ws.expect_message(OP_TEXT, "xy")


@case("5.20", "continuation frame (FIN=1) without a started message -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_CONT, "orphan"), 1002)


@case("5.21", "continuation frame (FIN=0) without a started message -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_CONT, "orphan", fin=False) + frame(OP_CONT, "end"), 1002)


@case("5.22", "orphan continuation after a complete message -> echo, then close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "complete") + frame(OP_CONT, "orphan"), 1002,
                before=[(OP_TEXT, b"complete")])


@case("5.23", "orphan continuations in 1-byte writes -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_CONT, "a", fin=False) + frame(OP_CONT, "b"), 1002, chunk=1)


@case("5.24", "new text frame (FIN=1) inside a fragmented text message -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "start", fin=False) + frame(OP_TEXT, "new")
                + frame(OP_CONT, "end"), 1002)


@case("5.25", "new binary frame inside a fragmented text message -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "start", fin=False) + frame(OP_BINARY, b"new")
                + frame(OP_CONT, "end"), 1002)


@case("5.26", "new text frame (FIN=0) inside a fragmented binary message -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_BINARY, b"start", fin=False) + frame(OP_TEXT, "new", fin=False)
                + frame(OP_CONT, "end"), 1002)


@case("5.27", "new text frame inside a fragmented message, one write per frame -> close 1002")
def _(ctx):
    expect_fail(ctx, [frame(OP_TEXT, "start", fin=False), frame(OP_TEXT, "new"),
                      frame(OP_CONT, "end")], 1002)


@case("5.28", "fragmented ping inside a fragmented text message -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "a", fin=False) + frame(OP_PING, "p", fin=False)
                + frame(OP_CONT, "q") + frame(OP_CONT, "b"), 1002)


@case("5.29", "fragmented pong (FIN=0 pong + continuation) -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_PONG, "p", fin=False) + frame(OP_CONT, "q"), 1002)


@case("5.30", "fragmented close (FIN=0 close + continuation) -> close 1002")
def _(ctx):
    expect_fail(ctx, frame(OP_CLOSE, close_payload(1000), fin=False) + frame(OP_CONT, b""), 1002)


@case("5.31", "close between fragments -> close 1000 reply, no echo of the partial message")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "partial", fin=False) + frame(OP_CLOSE, close_payload(1000)))
    ws.expect_close(1000, reply=False)


@case("5.32", "two fragmented messages back to back (text then binary) -> two echoes")
def _(ctx):
    ws = ctx.ws()
    ws.send_frames(fragments(OP_TEXT, [b"one ", b"two"]) + fragments(OP_BINARY, [b"\x01", b"\x02"]))
    ws.expect_message(OP_TEXT, "one two")
    ws.expect_message(OP_BINARY, b"\x01\x02")


@case("5.33", "fragmented message interleaved with pings, one write per frame, 1 ms apart")
def _(ctx):
    ws = ctx.ws()
    pieces = chunks_of(text_payload(300), 30)
    frames = fragments(OP_TEXT, pieces)
    out = []
    for i, f in enumerate(frames):
        out.append(f)
        if i < len(frames) - 1:
            out.append(frame(OP_PING, "p%d" % i))
    ws.send_frames(out, separate=True, delay=0.001)
    for i in range(len(frames) - 1):
        ws.expect_pong("p%d" % i)
    ws.expect_message(OP_TEXT, b"".join(pieces))


# ==========================================================================
# 6  UTF-8
# ==========================================================================

VALID_UTF8 = [
    ("ASCII", b"Hello, world!"),
    ("all ASCII code points incl. NUL", bytes(range(0x80))),
    ("Latin-1 supplement, 2-byte", "Hello-µ@ßöäüàá-UTF-8!!".encode()),
    ("Greek, 2-byte", "κόσμε".encode()),
    ("CJK and euro sign, 3-byte", "日本語 €".encode()),
    ("4-byte sequences", "𝄞 😀 𐍈".encode()),
    ("U+007F", b"\x7f"),
    ("U+0080", b"\xc2\x80"),
    ("U+07FF", b"\xdf\xbf"),
    ("U+0800", b"\xe0\xa0\x80"),
    ("U+D7FF (before surrogates)", b"\xed\x9f\xbf"),
    ("U+E000 (after surrogates)", b"\xee\x80\x80"),
    ("U+FEFF (BOM, kept verbatim)", b"\xef\xbb\xbf"),
    ("U+FFFD", b"\xef\xbf\xbd"),
    ("U+FFFE (noncharacter, valid)", b"\xef\xbf\xbe"),
    ("U+FFFF", b"\xef\xbf\xbf"),
    ("U+10000", b"\xf0\x90\x80\x80"),
    ("U+10FFFF", b"\xf4\x8f\xbf\xbf"),
    ("U+FDD0 and U+1FFFE (noncharacters)", b"\xef\xb7\x90\xf0\x9f\xbf\xbe"),
    ("all boundary code points in one message",
     b"a\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
     b"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xef\xbb\xbfz"),
]

INVALID_UTF8 = [
    ("lone continuation byte 0x80", b"\x80"),
    ("lone continuation byte 0xBF", b"\xbf"),
    ("continuation bytes after ASCII", b"ok\x80\xbf"),
    ("all 64 continuation bytes", bytes(range(0x80, 0xC0))),
    ("overlong '/' in 2 bytes (C0 AF)", b"\xc0\xaf"),
    ("overlong '/' in 3 bytes (E0 80 AF)", b"\xe0\x80\xaf"),
    ("overlong '/' in 4 bytes (F0 80 80 AF)", b"\xf0\x80\x80\xaf"),
    ("overlong NUL in 2 bytes (C0 80)", b"\xc0\x80"),
    ("overlong NUL in 3 bytes (E0 80 80)", b"\xe0\x80\x80"),
    ("overlong NUL in 4 bytes (F0 80 80 80)", b"\xf0\x80\x80\x80"),
    ("largest overlong 2-byte (C1 BF)", b"\xc1\xbf"),
    ("largest overlong 3-byte (E0 9F BF)", b"\xe0\x9f\xbf"),
    ("largest overlong 4-byte (F0 8F BF BF)", b"\xf0\x8f\xbf\xbf"),
    ("surrogate U+D800 (ED A0 80)", b"\xed\xa0\x80"),
    ("surrogate U+DB7F (ED AD BF)", b"\xed\xad\xbf"),
    ("surrogate U+DB80 (ED AE 80)", b"\xed\xae\x80"),
    ("surrogate U+DBFF (ED AF BF)", b"\xed\xaf\xbf"),
    ("surrogate U+DC00 (ED B0 80)", b"\xed\xb0\x80"),
    ("surrogate U+DF80 (ED BE 80)", b"\xed\xbe\x80"),
    ("surrogate U+DFFF (ED BF BF)", b"\xed\xbf\xbf"),
    ("surrogate pair U+D800 U+DC00 (CESU-8)", b"\xed\xa0\x80\xed\xb0\x80"),
    ("surrogate pair U+DBFF U+DFFF", b"\xed\xaf\xbf\xed\xbf\xbf"),
    ("surrogate after valid text", "Grüße".encode() + b"\xed\xa0\x80" + b"tail"),
    ("U+110000 (F4 90 80 80)", b"\xf4\x90\x80\x80"),
    ("F4 BF BF BF", b"\xf4\xbf\xbf\xbf"),
    ("F5 lead byte (F5 80 80 80)", b"\xf5\x80\x80\x80"),
    ("F7 BF BF BF", b"\xf7\xbf\xbf\xbf"),
    ("5-byte sequence (F8 88 80 80 80)", b"\xf8\x88\x80\x80\x80"),
    ("6-byte sequence (FC 84 80 80 80 80)", b"\xfc\x84\x80\x80\x80\x80"),
    ("byte FE", b"\xfe"),
    ("byte FF", b"\xff"),
    ("FE FE FF FF", b"\xfe\xfe\xff\xff"),
    ("lone C0", b"\xc0"),
    ("lone C1 then ASCII", b"\xc1A"),
    ("2-byte lead followed by ASCII (C2 41)", b"\xc2A"),
    ("3-byte lead + 1 continuation, then ASCII (E0 A0 41)", b"\xe0\xa0A"),
    ("4-byte lead + 2 continuations, then ASCII (F0 90 80 41)", b"\xf0\x90\x80A"),
    ("3-byte lead followed by a new lead (E2 C2 A2)", b"\xe2\xc2\xa2"),
    ("truncated 2-byte sequence at message end (C2)", b"abc\xc2"),
    ("truncated 3-byte sequence at message end (E2 82)", b"abc\xe2\x82"),
    ("truncated 4-byte sequence at message end (F0 9F 98)", b"abc\xf0\x9f\x98"),
    ("truncated 4-byte sequence at message end (F4 8F BF)", b"\xf4\x8f\xbf"),
    ("invalid byte in the middle of 2000 valid bytes", b"a" * 1000 + b"\xff" + b"b" * 1000),
]

for _name, _b in VALID_UTF8:
    _b.decode("utf-8")
for _name, _b in INVALID_UTF8:
    try:
        _b.decode("utf-8")
        raise AssertionError("test data %r is valid UTF-8" % _name)
    except UnicodeDecodeError:
        pass


def _utf8_valid_single(data):
    def fn(ctx):
        ws = ctx.ws()
        ws.echo(OP_TEXT, data)
    return fn


def _utf8_valid_split(data):
    def fn(ctx):
        ws = ctx.ws()
        for i in range(1, len(data)):
            ws.send_frames(fragments(OP_TEXT, [data[:i], data[i:]]))
            try:
                ws.expect_message(OP_TEXT, data)
            except CaseFail as e:
                raise CaseFail("split at byte %d: %s" % (i, e))
        ws.send_frames(fragments(OP_TEXT, chunks_of(data, 1)), separate=True)
        try:
            ws.expect_message(OP_TEXT, data)
        except CaseFail as e:
            raise CaseFail("one byte per fragment: %s" % e)
    return fn


def _utf8_invalid_single(data):
    def fn(ctx):
        expect_fail(ctx, frame(OP_TEXT, data), 1007)
    return fn


def _utf8_invalid_bytewise(data):
    def fn(ctx):
        # one fragment per byte, one write per fragment; the server fails fast,
        # so later writes may fail (tolerated)
        expect_fail(ctx, fragments(OP_TEXT, chunks_of(data, 1)), 1007)
    return fn


for _i, (_name, _b) in enumerate(VALID_UTF8, 1):
    add("6.1.%d" % _i, "valid UTF-8 text, one frame: %s -> echo" % _name,
        _utf8_valid_single(_b))
_j = 0
for _name, _b in VALID_UTF8:
    if len(_b) >= 2:
        _j += 1
        add("6.2.%d" % _j, "valid UTF-8 split across 2 fragments at every byte position, and "
            "1 byte per fragment: %s -> echo" % _name, _utf8_valid_split(_b))
for _i, (_name, _b) in enumerate(INVALID_UTF8, 1):
    add("6.3.%d" % _i, "invalid UTF-8 text, one frame: %s -> close 1007" % _name,
        _utf8_invalid_single(_b))
for _i, (_name, _b) in enumerate(INVALID_UTF8, 1):
    add("6.4.%d" % _i, "invalid UTF-8 text, 1 byte per fragment: %s -> close 1007" % _name,
        _utf8_invalid_bytewise(_b))


@case("6.5.1", "invalid sequence (surrogate) split across 2 fragments at every byte position "
      "-> close 1007")
def _(ctx):
    data = "Grüße".encode() + b"\xed\xa0\x80" + "€nd".encode()
    for i in range(1, len(data)):
        ws = ctx.ws()
        ws.send_frames(fragments(OP_TEXT, [data[:i], data[i:]]), separate=True)
        try:
            ws.expect_close(1007)
        except CaseFail as e:
            raise CaseFail("split at byte %d: %s" % (i, e))
        ws.close()


@case("6.5.2", "invalid sequence (F4 90 80 80) split across 3 fragments -> close 1007")
def _(ctx):
    expect_fail(ctx, fragments(OP_TEXT, [b"ab\xf4", b"\x90\x80", b"\x80cd"]), 1007)


@case("6.5.3", "valid text then invalid text in one write -> echo, then close 1007")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "κόσμε") + frame(OP_TEXT, b"\xce\xba\xff"), 1007,
                before=[(OP_TEXT, "κόσμε".encode())])


@case("6.5.4", "fail fast: first fragment (FIN=0) has an invalid byte, message never "
      "finished -> close 1007")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, b"valid start \xff then more", fin=False))
    ws.expect_close(1007)


@case("6.5.5", "fail fast: valid first fragment, second fragment (FIN=0) with F5, message "
      "never finished -> close 1007")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "κόσ", fin=False))
    ws.send(frame(OP_CONT, b"\xf5\x80\x80\x80", fin=False))
    ws.expect_close(1007)


@case("6.5.6", "fail fast: overlong sequence in first fragment, more fragments keep coming "
      "-> close 1007 (later writes may fail)")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, b"\xc0\xaf", fin=False))
    for i in range(20):
        ws.send(frame(OP_CONT, b"x" * 100, fin=False))
        time.sleep(0.002)
    ws.send(frame(OP_CONT, b"end"))
    ws.expect_close(1007)


@case("6.5.7", "invalid text frame written in 1-byte writes -> close 1007")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, b"hello \xed\xbf\xbf world"), 1007, chunk=1)


@case("6.5.8", "invalid byte arrives in the middle of a partially sent frame -> close 1007 "
      "(early, or once the frame is complete)")
def _(ctx):
    ws = ctx.ws()
    data = b"0123456789" * 5 + b"\xff" + b"abcdefghij" * 5
    f = frame(OP_TEXT, data)
    hl = len(f) - len(data)
    ws.send(f[:hl + 20])
    time.sleep(0.05)
    ws.send(f[hl + 20:hl + 55])   # includes the invalid byte
    # give the server a moment to fail fast; if it did not, complete the frame
    if not readable(ws.sock, 1.0):
        ws.send(f[hl + 55:])
    ws.expect_close(1007)


@case("6.5.9", "truncated sequence at the end of a fragmented message -> close 1007")
def _(ctx):
    expect_fail(ctx, fragments(OP_TEXT, [b"abc", b"def\xe2\x82"]), 1007)


@case("6.5.12", "4 MiB of valid text followed by byte FF as the last byte -> close 1007")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, text_payload(4 * MiB) + b"\xff"))
    ws.expect_close(1007)


@case("6.5.10", "binary message with invalid UTF-8 bytes is echoed (no validation)")
def _(ctx):
    ws = ctx.ws()
    ws.echo(OP_BINARY, b"\xff\xfe\xed\xa0\x80\xc0\xaf")


@case("6.5.11", "valid 4-byte sequence split over 4 fragments, one write each -> echo")
def _(ctx):
    ws = ctx.ws()
    data = "x😀y".encode()
    ws.send_frames(fragments(OP_TEXT, [data[:2], data[2:3], data[3:4], data[4:]]),
                   separate=True, delay=0.002)
    ws.expect_message(OP_TEXT, data)


def all_code_points():
    k = "allcp"
    if k not in _cache:
        _cache[k] = "".join(chr(c) for c in range(0x110000)
                            if not 0xD800 <= c <= 0xDFFF).encode("utf-8")
    return _cache[k]


@case("6.6.1", "every Unicode scalar value U+0000..U+10FFFF (no surrogates) in one text "
      "message (~4.3 MB) -> echo")
def _(ctx):
    ws = ctx.ws()
    ws.echo(OP_TEXT, all_code_points())


@case("6.6.2", "every Unicode scalar value in one text message, fragments of 997 B "
      "(splitting characters) -> echo")
def _(ctx):
    ws = ctx.ws()
    data = all_code_points()
    ws.send(fragmented(OP_TEXT, data, 997))
    ws.expect_message(OP_TEXT, data)


@case("6.6.3", "each byte that never occurs in UTF-8 (C0, C1, F5..FF) and each lone "
      "continuation byte (80..BF) inside valid text -> close 1007 (77 connections)")
def _(ctx):
    for b in list(range(0x80, 0xC2)) + list(range(0xF5, 0x100)):
        ws = ctx.ws()
        ws.send(frame(OP_TEXT, b"ok " + bytes((b,)) + b" ok"))
        try:
            ws.expect_close(1007)
        except CaseFail as e:
            raise CaseFail("byte 0x%02X: %s" % (b, e))
        ws.close()


@case("6.6.4", "3- and 4-byte second-byte boundaries: E0 A0 / ED 9F / F0 90 / F4 8F valid, "
      "E0 9F / ED A0 / F0 8F / F4 90 invalid")
def _(ctx):
    ws = ctx.ws()
    for seq in (b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf"):
        ws.echo(OP_TEXT, seq)
    ws.close()
    for seq in (b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80"):
        ws = ctx.ws()
        ws.send(frame(OP_TEXT, seq))
        try:
            ws.expect_close(1007)
        except CaseFail as e:
            raise CaseFail("%s: %s" % (seq.hex(" "), e))
        ws.close()


@case("6.7.1", "validator state is reset per message: text '€' then text starting with a "
      "continuation byte -> echo, then close 1007")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, "€") + frame(OP_TEXT, b"\x82\xac"), 1007,
                before=[(OP_TEXT, "€".encode())])


@case("6.7.2", "binary message ending in E2 does not feed the text validator: then text "
      "'82 AC' -> echo, then close 1007")
def _(ctx):
    expect_fail(ctx, frame(OP_BINARY, b"ab\xe2") + frame(OP_TEXT, b"\x82\xac"), 1007,
                before=[(OP_BINARY, b"ab\xe2")])


@case("6.7.3", "ping payload between text fragments is not fed to the validator: "
      "'ab E2' + ping '82 AC' + 'x' -> pong, close 1007")
def _(ctx):
    expect_fail(ctx, frame(OP_TEXT, b"ab\xe2", fin=False) + frame(OP_PING, b"\x82\xac")
                + frame(OP_CONT, b"x"), 1007, before=[(OP_PONG, b"\x82\xac")])


@case("6.7.4", "ping between text fragments keeps the validator state: 'ab E2' + ping 'zz' "
      "+ '82 AC' -> pong, echo 'ab€'")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, b"ab\xe2", fin=False) + frame(OP_PING, b"zz")
            + frame(OP_CONT, b"\x82\xac"))
    ws.expect_pong(b"zz")
    ws.expect_message(OP_TEXT, "ab€")


@case("6.7.5", "text message after an echoed message with a 4-byte char: state clean -> echo")
def _(ctx):
    ws = ctx.ws()
    for m in ("😀", "a", "€😀€", ""):
        ws.echo(OP_TEXT, m)


# ==========================================================================
# 7  Close handling
# ==========================================================================

def _client_close(payload, expect_code, extra=b"", chunk=None):
    def fn(ctx):
        ws = ctx.ws()
        ws.send(frame(OP_CLOSE, payload) + extra, chunk=chunk)
        ws.expect_close(expect_code, reply=False)
    return fn


add("7.1.1", "empty close -> server replies close 1000", _client_close(b"", 1000))
add("7.1.2", "close 1000 without reason -> close 1000", _client_close(close_payload(1000), 1000))
add("7.1.3", "close 1000 with reason 'bye' -> close 1000",
    _client_close(close_payload(1000, "bye"), 1000))
add("7.1.4", "close 1000 with a 123-byte reason (125-byte payload) -> close 1000",
    _client_close(close_payload(1000, "r" * 123), 1000))
add("7.1.5", "close 1000 with multi-byte UTF-8 reason -> close 1000",
    _client_close(close_payload(1000, "Grüße, κόσμε 😀"), 1000))
add("7.1.6", "close frame written in 1-byte writes -> close 1000",
    _client_close(close_payload(1000, "bye"), 1000, chunk=1))
add("7.1.7", "text frame after the close frame (same write) is ignored: no echo",
    _client_close(close_payload(1000), 1000, extra=frame(OP_TEXT, "after close")))
add("7.1.8", "ping after the close frame (same write) is ignored: no pong",
    _client_close(close_payload(1000), 1000, extra=frame(OP_PING, "after close")))
add("7.1.9", "two close frames -> exactly one close reply",
    _client_close(close_payload(1000), 1000, extra=frame(OP_CLOSE, close_payload(1001))))


@case("7.1.10", "text then close in one write -> echo, then close 1000")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "last words") + frame(OP_CLOSE, close_payload(1000)))
    ws.expect_message(OP_TEXT, "last words")
    ws.expect_close(1000, reply=False)


@case("7.1.11", "binary frame sent in a separate write after the close frame: no echo")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_CLOSE, close_payload(1000)))
    ws.send(frame(OP_BINARY, b"after close"))   # may fail if the server already closed
    ws.expect_close(1000, reply=False)


@case("7.1.12", "server-failed connection: client never answers the close -> TCP closed "
      "within 5 s")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, "x", rsv=4))
    ws.expect_close(1002, reply=False)


@case("7.1.13", "fragmented message then close: complete message echoed, then close 1000")
def _(ctx):
    ws = ctx.ws()
    ws.send_frames(fragments(OP_TEXT, [b"a", b"b"]) + [frame(OP_CLOSE, close_payload(1000))])
    ws.expect_message(OP_TEXT, "ab")
    ws.expect_close(1000, reply=False)


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]

for _i, _c in enumerate(VALID_CODES, 1):
    add("7.2.%d" % _i, "close with code %d -> server replies close %d" % (_c, _c),
        _client_close(close_payload(_c), _c))
for _i, _c in enumerate(INVALID_CODES, 1):
    add("7.3.%d" % _i, "close with invalid code %d -> close 1002" % _c,
        _client_close(close_payload(_c), 1002))

add("7.4.1", "close with a 1-byte payload -> close 1002", _client_close(b"\x03", 1002))
add("7.4.2", "close with a 126-byte payload (code 1000 + 124-byte reason) -> close 1002",
    _client_close(close_payload(1000, "r" * 124), 1002))
add("7.4.3", "close 3000 with reason -> close 3000",
    _client_close(close_payload(3000, "app reason"), 3000))
add("7.5.1", "close 1000 with reason containing byte FF -> close 1007",
    _client_close(close_payload(1000, b"bad \xff reason"), 1007))
add("7.5.2", "close 1000 with reason containing a surrogate (ED A0 80) -> close 1007",
    _client_close(close_payload(1000, b"\xed\xa0\x80"), 1007))
add("7.5.3", "close 1000 with reason ending in a truncated sequence -> close 1007",
    _client_close(close_payload(1000, b"bye \xe2\x82"), 1007))
add("7.5.4", "close 1000 with overlong-encoded reason (C0 AF) -> close 1007",
    _client_close(close_payload(1000, b"\xc0\xaf"), 1007))


@case("7.5.5", "close reason validated on its own: open text message ends in E2, close reason "
      "'82 AC' (invalid alone) -> close 1007")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, b"ab\xe2", fin=False) + frame(OP_CLOSE, close_payload(1000, b"\x82\xac")))
    ws.expect_close(1007, reply=False)


@case("7.5.6", "close reason valid although an open text message is mid-sequence: 'ab E2' "
      "then close 1000 'ok' -> close 1000")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame(OP_TEXT, b"ab\xe2", fin=False) + frame(OP_CLOSE, close_payload(1000, "ok")))
    ws.expect_close(1000, reply=False)


@case("7.6.1", "server shutdown (SIGTERM) with an open WebSocket -> close 1001, TCP closed, "
      "exit status 0")
def _(ctx):
    if not ctx.managed:
        raise CaseSkip("needs its own server instance (not with --url)")
    srv = start_server()
    try:
        c = WS("127.0.0.1", server_port(srv), ctx.deadline)
        ctx.conns.append(c)
        req, key = build_request("127.0.0.1:%d" % server_port(srv))
        c.send(req)
        check_101(read_response(c), key)
        c.echo(OP_TEXT, "before shutdown")
        srv.wait_log(r"ws open .*/echo")
        srv.proc.send_signal(__import__("signal").SIGTERM)
        c.expect_close(1001)
        try:
            srv.proc.wait(10)   # a second SIGTERM (from stop()) would force exit 1
        except Exception:
            raise CaseFail("server still running 10 s after SIGTERM")
    finally:
        try:
            rc = srv.stop()
        except AssertionError as e:
            raise CaseFail("server did not exit cleanly: %s" % "\n".join(str(e).splitlines()[-8:]))
    if rc != 0:
        raise CaseFail("server exited with status %r" % rc)


# ==========================================================================
# 9  Limits (scaled down) / performance
# ==========================================================================

LIMIT_SIZES = [64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB]
LIMIT_FRAGS = [64, 256, 1 * KiB, 4 * KiB, 64 * KiB]


def _size_name(n):
    return "%d MiB" % (n // MiB) if n >= MiB else "%d KiB" % (n // KiB)


def _limit_case(opcode, n, frag):
    def fn(ctx):
        ws = ctx.ws()
        data = payload_for(opcode, n)
        if frag is None:
            ws.send(frame(opcode, data))
        else:
            ws.send(fragmented(opcode, data, frag))
        ws.expect_message(opcode, data)
    return fn


for _i, _n in enumerate(LIMIT_SIZES, 1):
    add("9.1.%d" % _i, "text message of %s in one frame" % _size_name(_n),
        _limit_case(OP_TEXT, _n, None))
for _i, _n in enumerate(LIMIT_SIZES, 1):
    add("9.2.%d" % _i, "binary message of %s in one frame" % _size_name(_n),
        _limit_case(OP_BINARY, _n, None))
_j = 0
for _n in LIMIT_SIZES:
    for _f in LIMIT_FRAGS:
        _j += 1
        add("9.3.%d" % _j, "text message of %s in fragments of %s" % (
            _size_name(_n), _size_name(_f) if _f >= KiB else "%d B" % _f),
            _limit_case(OP_TEXT, _n, _f))
_j = 0
for _n in LIMIT_SIZES:
    for _f in LIMIT_FRAGS:
        _j += 1
        add("9.4.%d" % _j, "binary message of %s in fragments of %s" % (
            _size_name(_n), _size_name(_f) if _f >= KiB else "%d B" % _f),
            _limit_case(OP_BINARY, _n, _f))


def _pipelined(kind, count, size):
    def fn(ctx):
        ws = ctx.ws()
        msgs = []
        for i in range(count):
            if kind == "text":
                op = OP_TEXT
            elif kind == "binary":
                op = OP_BINARY
            elif kind == "ping":
                op = OP_PING
            else:
                op = OP_TEXT if i % 2 == 0 else OP_BINARY
            p = ("%0*d" % (size, i)).encode() if op != OP_BINARY else os.urandom(size)
            msgs.append((op, p))
        ws.send(b"".join(frame(op, p) for op, p in msgs))
        for i, (op, p) in enumerate(msgs):
            try:
                if op == OP_PING:
                    ws.expect_pong(p)
                else:
                    ws.expect_message(op, p)
            except CaseFail as e:
                raise CaseFail("message %d of %d: %s" % (i + 1, count, e))
    return fn


add("9.5.1", "1000 text messages of 16 B written in one go, then all echoes read",
    _pipelined("text", 1000, 16))
add("9.5.2", "1000 binary messages of 16 B written in one go", _pipelined("binary", 1000, 16))
add("9.5.3", "1000 alternating text/binary messages of 16 B written in one go",
    _pipelined("mixed", 1000, 16))
add("9.5.4", "1000 pings of 16 B written in one go -> 1000 pongs in order",
    _pipelined("ping", 1000, 16))
add("9.5.5", "200 text messages of 4 KiB written in one go", _pipelined("text", 200, 4096))


@case("9.5.6", "1000 small messages, one write each, echoes read at the end")
def _(ctx):
    ws = ctx.ws()
    msgs = [("m%05d" % i).encode() for i in range(1000)]
    for m in msgs:
        ws.send(frame(OP_TEXT, m))
    for m in msgs:
        ws.expect_message(OP_TEXT, m)


@case("9.6.1", "--max-message 1 MiB: text message of exactly 1 MiB -> echo", needs_limit=True)
def _(ctx):
    ws = ctx.limited()
    data = text_payload(MiB)
    ws.send(frame(OP_TEXT, data))
    ws.expect_message(OP_TEXT, data)


@case("9.6.2", "--max-message 1 MiB: binary 1 MiB in 64 KiB fragments -> echo", needs_limit=True)
def _(ctx):
    ws = ctx.limited()
    data = binary_payload(MiB)
    ws.send(fragmented(OP_BINARY, data, 64 * KiB))
    ws.expect_message(OP_BINARY, data)


@case("9.6.3", "--max-message 1 MiB: binary 1 MiB + 1 in one frame -> close 1009",
      needs_limit=True)
def _(ctx):
    ws = ctx.limited()
    ws.send(frame(OP_BINARY, binary_payload(MiB + 1)))
    ws.expect_close(1009)


@case("9.6.4", "--max-message 1 MiB: text 1 MiB + 1 in one frame -> close 1009",
      needs_limit=True)
def _(ctx):
    ws = ctx.limited()
    ws.send(frame(OP_TEXT, text_payload(MiB + 1)))
    ws.expect_close(1009)


@case("9.6.5", "--max-message 1 MiB: binary 1 MiB + 1 in 64 KiB fragments -> close 1009",
      needs_limit=True)
def _(ctx):
    ws = ctx.limited()
    ws.send(fragmented(OP_BINARY, binary_payload(MiB + 1), 64 * KiB))
    ws.expect_close(1009)


@case("9.6.6", "--max-message 1 MiB: frame header declaring 1 MiB + 1, no payload sent "
      "-> close 1009", needs_limit=True)
def _(ctx):
    ws = ctx.limited()
    ws.send(frame_header(OP_BINARY, MiB + 1))
    ws.expect_close(1009)


@case("9.6.7", "--max-message 1 MiB: 1 MiB fragment, then a continuation header declaring "
      "1 more byte (payload not sent) -> close 1009", needs_limit=True)
def _(ctx):
    ws = ctx.limited()
    ws.send(frame(OP_BINARY, binary_payload(MiB), fin=False))
    ws.send(frame_header(OP_CONT, 1))
    ws.expect_close(1009)


@case("9.6.8", "--max-message 1 MiB: ping between fragments of an over-limit message is still "
      "answered before the limit is hit", needs_limit=True)
def _(ctx):
    ws = ctx.limited()
    ws.send(frame(OP_TEXT, text_payload(1000), fin=False) + frame(OP_PING, "p"))
    ws.expect_pong("p")
    ws.send(frame(OP_CONT, text_payload(MiB)))
    ws.expect_close(1009)


@case("9.6.9", "--max-message 1 MiB: exactly 1 MiB in 64 KiB fragments with 125-byte pings "
      "between them (pings do not count) -> pongs, echo", needs_limit=True)
def _(ctx):
    ws = ctx.limited()
    data = binary_payload(MiB)
    frames = []
    frags = fragments(OP_BINARY, chunks_of(data, 64 * KiB))
    for i, f in enumerate(frags):
        frames.append(f)
        if i < len(frags) - 1:
            frames.append(frame(OP_PING, bytes([i]) * 125))
    ws.send_frames(frames)
    for i in range(len(frags) - 1):
        ws.expect_pong(bytes([i]) * 125)
    ws.expect_message(OP_BINARY, data)


@case("9.7.1", "default --max-message (16 MiB): header declaring 16 MiB + 1, no payload "
      "-> close 1009")
def _(ctx):
    ws = ctx.ws()
    ws.send(frame_header(OP_BINARY, DEFAULT_MAX_MESSAGE + 1))
    ws.expect_close(1009)


@case("9.8.1", "20 concurrent connections with interleaved fragments and pings -> each gets "
      "its own pong and echo")
def _(ctx):
    conns = [ctx.ws() for _ in range(20)]
    data = [text_payload(1000 + 37 * i, seed=i % 2) for i in range(20)]
    for c, d in zip(conns, data):
        c.send(frame(OP_TEXT, d[:501], fin=False))
    for i, c in enumerate(conns):
        c.send(frame(OP_PING, b"conn %d" % i))
    for i, c in enumerate(conns):
        c.expect_pong(b"conn %d" % i)
    for c, d in zip(conns, data):
        c.send(frame(OP_CONT, d[501:]))
    for c, d in reversed(list(zip(conns, data))):
        c.expect_message(OP_TEXT, d)


@case("9.8.2", "slow reader: 32 binary messages of 128 KiB written while hardly reading, then "
      "all echoes read -> byte-exact, in order")
def _(ctx):
    ws = ctx.ws()
    ws.lazy_read = True
    msgs = [binary_payload(128 * KiB + i) for i in range(32)]
    for m in msgs:
        ws.send(frame(OP_BINARY, m))
    time.sleep(0.3)
    for i, m in enumerate(msgs):
        try:
            ws.expect_message(OP_BINARY, m)
        except CaseFail as e:
            raise CaseFail("message %d: %s" % (i + 1, e))


@case("9.8.3", "ping in the middle of a 4 MiB message sent in 64 KiB fragments -> pong "
      "before the echo")
def _(ctx):
    ws = ctx.ws()
    data = text_payload(4 * MiB)
    frames = fragments(OP_TEXT, chunks_of(data, 64 * KiB))
    frames.insert(32, frame(OP_PING, "halfway"))
    ws.send_frames(frames)
    ws.expect_pong("halfway")
    ws.expect_message(OP_TEXT, data)


@case("9.8.4", "4 MiB binary echo followed by a ping -> echo and pong (pong may be "
      "interleaved between fragments of the echo)")
def _(ctx):
    ws = ctx.ws()
    data = binary_payload(4 * MiB)
    ws.send(frame(OP_BINARY, data) + frame(OP_PING, "after big"))
    ws.expect_message(OP_BINARY, data)
    ws.expect_pong("after big")


@case("9.8.5", "100 connections opened at once, each gets its own echo")
def _(ctx):
    conns = []
    for i in range(100):
        c = ctx.raw()
        req, key = build_request(ctx.host_header())
        c.send(req + frame(OP_TEXT, "conn %d" % i))
        conns.append((c, key))
    for i, (c, key) in enumerate(conns):
        try:
            check_101(read_response(c), key)
            c.expect_message(OP_TEXT, "conn %d" % i)
        except CaseFail as e:
            raise CaseFail("connection %d: %s" % (i, e))


# ==========================================================================
# 10  Auto-fragmentation / reassembly
# ==========================================================================

AUTOFRAG_SIZES = [1, 2, 3, 4, 5, 7, 13, 64, 125, 126, 127, 128, 255, 256, 1000, 1024, 4096,
                  16384, 32767, 65535, 65536]


def _autofrag(opcode, frag, randomized=False):
    def fn(ctx):
        ws = ctx.ws()
        data = text_payload(64 * KiB, seed=1) if opcode == OP_TEXT else binary_payload(64 * KiB)
        if randomized:
            rnd = random.Random(1234)
            pieces, off = [], 0
            while off < len(data):
                s = rnd.choice([1, 2, 3, 5, 17, 126, 999, 4000, 12345])
                pieces.append(data[off:off + s])
                off += s
            ws.send_frames(fragments(opcode, pieces))
        else:
            ws.send(fragmented(opcode, data, frag))
        ws.expect_message(opcode, data)
    return fn


for _i, _s in enumerate(AUTOFRAG_SIZES, 1):
    add("10.1.%d" % _i, "64 KiB text message in fragments of %d B -> byte-exact echo" % _s,
        _autofrag(OP_TEXT, _s))
for _i, _s in enumerate([1, 125, 126, 4096, 65535], 1):
    add("10.2.%d" % _i, "64 KiB binary message in fragments of %d B -> byte-exact echo" % _s,
        _autofrag(OP_BINARY, _s))
add("10.3.1", "64 KiB text message in fragments of random sizes -> byte-exact echo",
    _autofrag(OP_TEXT, None, randomized=True))
add("10.3.2", "64 KiB binary message in fragments of random sizes -> byte-exact echo",
    _autofrag(OP_BINARY, None, randomized=True))


# ==========================================================================
# 12 / 13  permessage-deflate (RFC 7692)
# ==========================================================================
#
# 12: compressed echo of many sizes (Autobahn 12.x), text and binary, in one
#     frame and fragmented (RSV1 on the first frame only), against the server
#     with its default deflater (shared, no context takeover) and with
#     --deflate-takeover on.
# 13: every parameter combination the server can be asked for (Autobahn
#     13.x), several server configurations, plus the error cases (RSV1 on
#     continuation / control frames, bad compressed data, compressed bad
#     UTF-8) and the legal odd forms (empty message, unstripped 00 00 ff ff
#     tail, BFINAL blocks).
#
# The client compresses with Python's zlib: raw deflate (wbits=-N),
# Z_SYNC_FLUSH, the trailing 00 00 ff ff removed; it keeps or resets its
# compressor and decompressor per message as the negotiated parameters say,
# and inflates the server's messages with exactly the window the server
# promised, so a server that reaches past its window or its promised context
# fails the case.

import zlib  # noqa: E402

PMD_TAIL = b"\x00\x00\xff\xff"

# Server configurations (extra instances, started on first use).
SRV_DEFAULT = ()                                    # shared deflater, no takeover
SRV_TAKEOVER = ("--deflate-takeover", "on")
SRV_BITS10 = ("--deflate-window-bits", "10")
SRV_BITS9_TAKEOVER = ("--deflate-window-bits", "9", "--deflate-takeover", "on")
SRV_LEVEL1_MIN0 = ("--deflate-level", "1", "--deflate-mem-level", "1", "--deflate-min-size", "0")
SRV_LIMIT = ("--max-message", str(MAX_MESSAGE_LIMIT))
SRV_NAMES = {SRV_LIMIT: "--max-message 1 MiB server", SRV_DEFAULT: "default server", SRV_TAKEOVER: "--deflate-takeover on",
             SRV_BITS10: "--deflate-window-bits 10",
             SRV_BITS9_TAKEOVER: "--deflate-window-bits 9 --deflate-takeover on",
             SRV_LEVEL1_MIN0: "--deflate-level 1 --deflate-mem-level 1 --deflate-min-size 0"}


def pmd_parse(value):
    """Parses one permessage-deflate response value into a dict
    {snct, cnct, smwb, cmwb} (None when absent); raises CaseFail if it is
    not a single well-formed permessage-deflate response."""
    if value is None:
        raise CaseFail("no Sec-WebSocket-Extensions in the 101")
    if "," in value:
        raise CaseFail("the server accepted more than one extension: %r" % value)
    parts = [p.strip() for p in value.split(";")]
    if parts[0].lower() != "permessage-deflate":
        raise CaseFail("accepted extension %r is not permessage-deflate" % value)
    out = {"snct": False, "cnct": False, "smwb": None, "cmwb": None}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        k, v = k.strip().lower(), v.strip().strip('"')
        if k in ("server_no_context_takeover", "client_no_context_takeover"):
            key = "snct" if k.startswith("server") else "cnct"
            if eq or out[key]:
                raise CaseFail("bad or repeated %s in %r" % (k, value))
            out[key] = True
        elif k in ("server_max_window_bits", "client_max_window_bits"):
            key = "smwb" if k.startswith("server") else "cmwb"
            if not eq or out[key] is not None or not v.isdigit() or not 8 <= int(v) <= 15:
                raise CaseFail("bad or repeated %s in %r" % (k, value))
            out[key] = int(v)
        else:
            raise CaseFail("unknown parameter %r in the response %r" % (k, value))
    return out


def pmd_offer_params(offer):
    """The parameters of one offer string, as pmd_parse would (None: absent,
    0: client_max_window_bits without a value)."""
    out = {"snct": False, "cnct": False, "smwb": None, "cmwb": None}
    for p in [x.strip() for x in offer.split(";")][1:]:
        k, eq, v = p.partition("=")
        k, v = k.strip(), v.strip().strip('"')
        if k == "server_no_context_takeover":
            out["snct"] = True
        elif k == "client_no_context_takeover":
            out["cnct"] = True
        elif k == "server_max_window_bits":
            out["smwb"] = int(v)
        elif k == "client_max_window_bits":
            out["cmwb"] = int(v) if eq else 0
    return out


def pmd_expected(offer, srv_args):
    """What RFC 7692 and the documented uvws policy make the server answer to
    a well-formed `offer`: it keeps context only with --deflate-takeover on
    and never asks the client to drop its own; its window is the smaller of
    its --deflate-window-bits and the client's server_max_window_bits, named
    when limited; it never limits the client's window below what the client
    offered."""
    o = pmd_offer_params(offer)
    a = list(srv_args)
    takeover = "--deflate-takeover" in a and a[a.index("--deflate-takeover") + 1] == "on"
    bits = int(a[a.index("--deflate-window-bits") + 1]) if "--deflate-window-bits" in a else 15
    exp = {"snct": o["snct"] or not takeover, "cnct": o["cnct"], "smwb": None, "cmwb": None}
    sb = min(bits, o["smwb"]) if o["smwb"] else bits
    if o["smwb"] or sb < 15:
        exp["smwb"] = sb
    if o["cmwb"] is not None:
        exp["cmwb"] = o["cmwb"] or 15
    return exp


class PMDWS(WS):
    """A WebSocket client that speaks permessage-deflate."""

    pmd = None  # the negotiated parameters (pmd_parse), once the 101 is read
    level = 6
    # None: Z_SYNC_FLUSH, tail stripped (section 7.2.1); "rfc": Z_FINISH (a block
    # with BFINAL set) plus the 0x00 octet of section 7.2.3.4; "raw": Z_FINISH only
    bfinal = None

    def setup_pmd(self, params):
        self.pmd = params
        self.cbits = params["cmwb"] or 15    # our window
        self.sbits = params["smwb"] or 15    # the server's window, which we inflate with
        self._comp = None
        self._decomp = None
        self.compressed_seen = 0   # server data messages with RSV1
        self.plain_seen = 0        # server data messages without RSV1
        self.wire_bytes = 0

    # -- compression --------------------------------------------------------
    def _compressor(self):
        if self.cbits == 8:
            return None  # see compress()
        if self._comp is None or self.pmd["cnct"] or self.bfinal:
            self._comp = zlib.compressobj(self.level, zlib.DEFLATED, -self.cbits)
        return self._comp

    def compress(self, data):
        if self.cbits == 8:
            # zlib cannot deflate with a 256-byte window: compress 256-byte
            # pieces with fresh streams and join their (non-final, byte-aligned)
            # blocks, so no distance exceeds 255.
            out = []
            for i in range(0, len(data), 256):
                c = zlib.compressobj(self.level, zlib.DEFLATED, -9)
                out.append(c.compress(data[i:i + 256]) + c.flush(zlib.Z_SYNC_FLUSH))
            out = b"".join(out) or b"\x00\x00\x00\xff\xff"
        else:
            c = self._compressor()
            out = c.compress(data) + c.flush(zlib.Z_FINISH if self.bfinal else zlib.Z_SYNC_FLUSH)
            if self.bfinal:
                self._comp = None  # a finished stream cannot go on
                return out + (b"\x00" if self.bfinal == "rfc" else b"")
            if not out.endswith(PMD_TAIL):
                # zlib emits nothing for a flush right after a flush (an empty
                # message with context takeover): section 7.2.1 says to append
                # an empty stored block then
                out += b"\x00" + PMD_TAIL
        if not out.endswith(PMD_TAIL):
            raise CaseFail("test bug: Z_SYNC_FLUSH output without the 00 00 ff ff tail")
        return out[:-4]

    def send_compressed(self, opcode, data, frag=None, **kw):
        z = self.compress(data)
        if frag is None:
            return self.send(frame(opcode, z, rsv=4), **kw)
        return self.send(b"".join(cfragments(opcode, chunks_of(z, frag))), **kw)

    def echo_c(self, opcode, data, frag=None):
        self.send_compressed(opcode, data, frag)
        self.expect_cmessage(opcode, data)

    # -- receiving ------------------------------------------------------------
    def recv_frame(self, what="a frame"):
        """Like WS.recv_frame, but RSV1 is allowed on the first frame of a data
        message once permessage-deflate is negotiated (and nowhere else)."""
        if self.pmd is None:
            return WS.recv_frame(self, what)
        self._need(2, what)
        b0 = self.rbuf[0]
        rsv = (b0 >> 4) & 7
        op = b0 & 0x0F
        if rsv == 4:
            if op not in (OP_TEXT, OP_BINARY):
                raise CaseFail("server sent RSV1 on a %s frame"
                               % OPNAMES.get(op, "0x%X" % op))
            self.rbuf[0] = b0 & ~0x40
            f = WS.recv_frame(self, what)
            f.rsv = 4
            return f
        return WS.recv_frame(self, what)

    def expect_cmessage(self, opcode, payload, what=None, want_compressed=None):
        """The next message must be `payload`, compressed or not (want_compressed
        True/False insists)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        what = what or "%s echo of %d bytes" % (OPNAMES[opcode], len(payload))
        if self.pending:
            raise CaseFail("expected %s, got %s" % (what, self.pending[0].describe()))
        f = self.recv_frame(what)
        if f.opcode != opcode:
            raise CaseFail("expected %s, got %s" % (what, f.describe()))
        compressed = f.rsv == 4
        parts = [f.payload]
        while not f.fin:
            f = self.recv_frame(what + " (continuation)")
            if f.opcode == OP_PONG:
                self.pending.append(f)
                f = Frame(False, 0, OP_CONT, b"")
                continue
            if f.opcode != OP_CONT:
                raise CaseFail("expected continuation of %s, got %s" % (what, f.describe()))
            if f.rsv:
                raise CaseFail("server set RSV1 on a continuation frame of %s" % what)
            parts.append(f.payload)
        wire = b"".join(parts)
        self.wire_bytes += len(wire)
        if want_compressed is not None and compressed != want_compressed:
            raise CaseFail("%s: expected it %s, got RSV1=%d" % (
                what, "compressed (RSV1)" if want_compressed else "uncompressed", compressed))
        if compressed:
            self.compressed_seen += 1
            if self._decomp is None or self.pmd["snct"]:
                # A fresh inflater when the server promised no context takeover:
                # any reference to an earlier message fails.
                self._decomp = zlib.decompressobj(-self.sbits)
            try:
                data = self._decomp.decompress(wire + PMD_TAIL)
            except zlib.error as e:
                raise CaseFail("%s: the server's compressed data does not inflate with a "
                               "%d-bit window%s: %s" % (what, self.sbits, " and no context"
                                                        if self.pmd["snct"] else "", e))
            if self._decomp.eof:
                raise CaseFail("%s: the server set BFINAL (a final deflate block)" % what)
        else:
            self.plain_seen += 1
            data = wire
        if data != payload:
            i = 0
            m = min(len(data), len(payload))
            while i < m and data[i] == payload[i]:
                i += 1
            raise CaseFail("%s: payload differs (got %d bytes, expected %d; first difference at "
                           "offset %d)" % (what, len(data), len(payload), i))
        return compressed


def cfragments(opcode, pieces):
    """Frames of one compressed message: RSV1 on the first frame only."""
    return [frame(opcode if i == 0 else OP_CONT, p, fin=(i == len(pieces) - 1),
                  rsv=4 if i == 0 else 0) for i, p in enumerate(pieces)]


def _servers_of(ctx):
    if not ctx.managed or getattr(ctx, "servers", None) is None:
        raise CaseSkip("needs its own server instances (not with --url)")
    return ctx.servers


def pmd_ws(ctx, offer="permessage-deflate", srv=SRV_DEFAULT, expect=None, extra=()):
    """Opens /echo on the instance started with `srv` flags, offering `offer`;
    checks the response against `expect` (default pmd_expected) and returns a
    PMDWS ready to use."""
    if srv == SRV_DEFAULT:
        port = ctx.port
    elif srv == SRV_LIMIT:
        ctx.limited()  # skips without a --max-message instance
        port = ctx.limit_port
    else:
        port = _servers_of(ctx).extra_port(srv)
    c = PMDWS(ctx.host, port, ctx.deadline)
    ctx.conns.append(c)
    hdrs = ["Sec-WebSocket-Extensions: %s" % offer] if offer is not None else []
    req, key = build_request(ctx.host_header(port), extra=hdrs + list(extra))
    c.send(req)
    resp = read_response(c)
    ext = resp.get_all("sec-websocket-extensions")
    if resp.status != 101:
        raise CaseFail("expected 101, got %s" % resp.summary())
    check_101(resp, key, None, ext[0] if len(ext) == 1 else None)
    c.ws_mode = True
    if expect is False:
        if ext:
            raise CaseFail("offer %r: expected no extension, got %r" % (offer, ext))
        return c
    if len(ext) != 1:
        raise CaseFail("offer %r: expected one Sec-WebSocket-Extensions header, got %r"
                       % (offer, ext))
    got = pmd_parse(ext[0])
    want = expect if expect is not None else pmd_expected(offer, srv)
    if got != want:
        raise CaseFail("offer %r to the %s: response %r, expected parameters %r"
                       % (offer, SRV_NAMES.get(srv, srv), ext[0], want))
    c.setup_pmd(got)
    return c


def compressible_text(n, seed=0):
    """n bytes of UTF-8 chat-like JSON text (compresses well)."""
    k = ("ct", n, seed)
    if k not in _cache:
        rnd = random.Random(n * 31 + seed)
        words = ["hello", "uvws", "deflate", "window", "κόσμε", "日本", "😀", "message", "room",
                 "user", "the", "a", "is", "€"]
        out = []
        size = 0
        while size < n:
            s = ('{"id":%d,"user":"%s","text":"%s"}\n' % (
                rnd.randrange(100000), rnd.choice(words),
                " ".join(rnd.choice(words) for _ in range(rnd.randrange(3, 12)))))
            out.append(s)
            size += len(s.encode("utf-8"))
        data = "".join(out).encode("utf-8")[:n]
        while True:  # cut at a character boundary, pad with ASCII
            try:
                data.decode("utf-8")
                break
            except UnicodeDecodeError:
                data = data[:-1]
        _cache[k] = data + b"x" * (n - len(data))
    return _cache[k]


def compressible_binary(n):
    k = ("cb", n)
    if k not in _cache:
        rnd = random.Random(n)
        unit = bytes(rnd.randrange(256) for _ in range(97))
        _cache[k] = bytes((b ^ (i // 997)) & 0xFF for i, b in enumerate((unit * (n // 97 + 1))[:n]))
    return _cache[k]


def cpayload(opcode, n, kind="c", seed=0):
    if opcode == OP_TEXT:
        return compressible_text(n, seed) if kind == "c" else text_payload(n, seed % 2)
    return compressible_binary(n) if kind == "c" else binary_payload(n)


CSIZES = [16, 64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 128 * KiB]


def _csize(n):
    return "%d KiB" % (n // KiB) if n >= KiB else "%d B" % n


def _c12(srv, opcode, n, frag):
    def fn(ctx):
        ws = pmd_ws(ctx, "permessage-deflate; client_max_window_bits", srv)
        # several messages per case so context takeover (ours, the server's)
        # is exercised; compressible and incompressible ones alternate
        count = 6 if n <= 16 * KiB else 3
        msgs = [cpayload(opcode, n, "c" if i % 3 != 2 else "r", seed=i) for i in range(count)]
        for m in msgs:
            ws.send_compressed(opcode, m, frag=frag)
        for i, m in enumerate(msgs):
            try:
                ws.expect_cmessage(opcode, m, want_compressed=True if n >= 64 else None)
            except CaseFail as e:
                raise CaseFail("message %d of %d: %s" % (i + 1, count, e))
    return fn


_sub = 0
for _srv in (SRV_DEFAULT, SRV_TAKEOVER):
    for _op in (OP_TEXT, OP_BINARY):
        for _frag in (None, "frag"):
            _sub += 1
            for _i, _n in enumerate(CSIZES, 1):
                _f = None if _frag is None else max(1, min(4 * KiB, _n // 5))
                add("12.%d.%d" % (_sub, _i), "%s: compressed %s message of %s%s x several -> "
                    "byte-exact echo, RSV1 on compressed replies" % (
                        SRV_NAMES[_srv], OPNAMES[_op], _csize(_n),
                        " in fragments of %d B (RSV1 on the first)" % _f if _f else
                        " in one frame"), _c12(_srv, _op, _n, _f))


def _c13(offer, srv):
    def fn(ctx):
        ws = pmd_ws(ctx, offer, srv)
        sizes = [0, 1, 63, 64, 200, 5000, 40 * KiB, 128 * KiB]
        msgs = []
        for i, n in enumerate(sizes):
            op = OP_TEXT if i % 2 == 0 else OP_BINARY
            msgs.append((op, cpayload(op, n, "c", seed=i), None))
            msgs.append((op, cpayload(op, n, "c", seed=i), None))  # repeated: takeover pays
            msgs.append((op, cpayload(op, n, "r"), 1000 if n > 2000 else None))
        for op, m, frag in msgs:
            ws.send_compressed(op, m, frag=frag)
        for i, (op, m, _frag) in enumerate(msgs):
            try:
                ws.expect_cmessage(op, m, want_compressed=len(m) >= 64)
            except CaseFail as e:
                raise CaseFail("message %d of %d: %s" % (i + 1, len(msgs), e))
        # and uncompressed messages are still fine on the same connection
        ws.send(frame(OP_TEXT, "plain"))
        ws.expect_cmessage(OP_TEXT, "plain", want_compressed=False)
    return fn


PMD_OFFERS = [
    "permessage-deflate",
    "permessage-deflate; client_no_context_takeover",
    "permessage-deflate; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=8",
    "permessage-deflate; client_max_window_bits=9",
    "permessage-deflate; client_max_window_bits=12",
    "permessage-deflate; client_max_window_bits=15",
    "permessage-deflate; server_max_window_bits=9",
    "permessage-deflate; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=12",
    "permessage-deflate; server_max_window_bits=15",
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
    "permessage-deflate; client_no_context_takeover; client_max_window_bits=9",
    "permessage-deflate; client_no_context_takeover; client_max_window_bits=8; "
    "server_no_context_takeover; server_max_window_bits=9",
    "permessage-deflate; server_max_window_bits=11; client_max_window_bits=11",
    'permessage-deflate; server_max_window_bits="12"; client_max_window_bits="10"',
]

_sub = 0
for _srv in (SRV_DEFAULT, SRV_TAKEOVER, SRV_BITS10, SRV_BITS9_TAKEOVER):
    _sub += 1
    for _i, _offer in enumerate(PMD_OFFERS, 1):
        add("13.%d.%d" % (_sub, _i), "%s: offer '%s' -> the expected response, 24 mixed "
            "messages (0 B .. 128 KiB, some fragmented) echoed byte-exact" % (
                SRV_NAMES[_srv], _offer), _c13(_offer, _srv))


@case("13.5.1", "--deflate-level 1 --deflate-mem-level 1 --deflate-min-size 0: even a 1-byte "
      "and an empty message come back compressed")
def _(ctx):
    ws = pmd_ws(ctx, "permessage-deflate", SRV_LEVEL1_MIN0)
    for n in (0, 1, 2, 63, 64, 100000):
        ws.echo_c(OP_TEXT, compressible_text(n, 3))
    ws.send(frame(OP_BINARY, b""))
    ws.expect_cmessage(OP_BINARY, b"", want_compressed=True)
    ws.send(frame(OP_BINARY, b"x"))
    ws.expect_cmessage(OP_BINARY, b"x", want_compressed=True)


@case("13.5.2", "default --deflate-min-size 64: a 63-byte message comes back uncompressed, a "
      "64-byte one compressed")
def _(ctx):
    ws = pmd_ws(ctx)
    ws.send_compressed(OP_TEXT, b"a" * 63)
    ws.expect_cmessage(OP_TEXT, b"a" * 63, want_compressed=False)
    ws.send_compressed(OP_TEXT, b"a" * 64)
    ws.expect_cmessage(OP_TEXT, b"a" * 64, want_compressed=True)


@case("13.5.3", "server without takeover: 20 identical 2 KiB messages each come back with the "
      "same compressed size (no context reused)")
def _(ctx):
    ws = pmd_ws(ctx)
    m = compressible_text(2048, 9)
    sizes = []
    for _ in range(20):
        ws.echo_c(OP_TEXT, m)
        sizes.append(ws.wire_bytes)
    per = [b - a for a, b in zip([0] + sizes, sizes)]
    if len(set(per)) != 1:
        raise CaseFail("compressed sizes differ between identical messages: %r" % per)


@case("13.5.4", "--deflate-takeover on: repeats of a 2 KiB message come back much smaller than "
      "the first (context kept)")
def _(ctx):
    ws = pmd_ws(ctx, "permessage-deflate", SRV_TAKEOVER)
    m = compressible_text(2048, 9)
    ws.echo_c(OP_TEXT, m)
    first = ws.wire_bytes
    ws.echo_c(OP_TEXT, m)
    second = ws.wire_bytes - first
    if second * 4 > first:
        raise CaseFail("a repeated message compressed to %d bytes, the first to %d: the context "
                       "does not seem to be kept" % (second, first))


@case("13.5.5", "two connections on the shared deflater, messages interleaved -> each echo "
      "inflates on its own (no context leaks between connections)")
def _(ctx):
    a, b = pmd_ws(ctx), pmd_ws(ctx)
    for i in range(30):
        ma = compressible_text(300 + i * 50, i)
        mb = compressible_binary(300 + i * 70)
        a.send_compressed(OP_TEXT, ma)
        b.send_compressed(OP_BINARY, mb)
        a.expect_cmessage(OP_TEXT, ma, want_compressed=True)
        b.expect_cmessage(OP_BINARY, mb, want_compressed=True)


@case("13.5.7", "--deflate-takeover on --deflate-min-size 0: an empty message after a non-empty "
      "one comes back as complete DEFLATE data (the next echo still inflates)")
def _(ctx):
    ws = pmd_ws(ctx, "permessage-deflate", ("--deflate-takeover", "on", "--deflate-min-size", "0"))
    for m in (b"first message " * 10, b"", b"", b"third message " * 10, b"x", b""):
        try:
            ws.echo_c(OP_BINARY, m)
        except CaseFail as e:
            raise CaseFail("message %r: %s" % (m[:20], e))


@case("13.5.6", "20 connections with different offers, pipelined compressed messages "
      "interleaved -> every echo right")
def _(ctx):
    conns = []
    for i in range(20):
        offer = PMD_OFFERS[i % len(PMD_OFFERS)]
        conns.append(pmd_ws(ctx, offer, SRV_TAKEOVER if i % 2 else SRV_DEFAULT))
    for r in range(5):
        for i, c in enumerate(conns):
            c.send_compressed(OP_TEXT, compressible_text(1000 + 37 * i + r, r))
    for r in range(5):
        for i, c in enumerate(conns):
            c.expect_cmessage(OP_TEXT, compressible_text(1000 + 37 * i + r, r))


# ---- 13.6: odd but legal forms ------------------------------------------

@case("13.6.1", "empty compressed message: payload 0x00 (an empty stored block, tail "
      "stripped) -> empty echo")
def _(ctx):
    ws = pmd_ws(ctx)
    ws.send(frame(OP_TEXT, b"\x00", rsv=4))
    ws.expect_cmessage(OP_TEXT, b"")
    ws.send(frame(OP_BINARY, b"\x00", rsv=4))
    ws.expect_cmessage(OP_BINARY, b"")


@case("13.6.2", "RSV1 frame with a 0-byte payload (not a complete DEFLATE block even with the "
      "tail) -> either close 1007, or an empty echo with the streams still in sync")
def _(ctx):
    ws = pmd_ws(ctx)
    ws.echo_c(OP_TEXT, compressible_text(300, 1))
    ws.send(frame(OP_BINARY, b"", rsv=4))
    f = ws.recv_frame("close 1007 or an empty binary echo")
    if f.opcode == OP_CLOSE:
        ws.rbuf[0:0] = frame(OP_CLOSE, f.payload, mask=False)  # let expect_close judge it
        ws.expect_close(1007)
        return
    if f.opcode != OP_BINARY or not f.fin or (f.payload if not f.rsv else
                                               zlib.decompress(f.payload + PMD_TAIL, -15)):
        raise CaseFail("expected close 1007 or an empty binary echo, got %s" % f.describe())
    for i in range(3):
        ws.echo_c(OP_TEXT, compressible_text(300 + i, i))


@case("13.6.3", "client_no_context_takeover: messages sent with their 00 00 ff ff tail NOT "
      "stripped -> accepted, echoes")
def _(ctx):
    ws = pmd_ws(ctx, "permessage-deflate; client_no_context_takeover")
    for n in (0, 10, 5000):
        m = compressible_text(n, 1)
        z = ws.compress(m) + PMD_TAIL
        ws.send(frame(OP_TEXT, z, rsv=4))
        ws.expect_cmessage(OP_TEXT, m)


def _bfinal_case(style, offer, srv):
    def fn(ctx):
        ws = pmd_ws(ctx, offer, srv)
        ws.echo_c(OP_TEXT, compressible_text(500, 7))
        ws.bfinal = style
        for i, n in enumerate((0, 1, 100, 3000, 70000)):
            m = compressible_text(n, i)
            try:
                ws.echo_c(OP_TEXT, m)
                ws.echo_c(OP_BINARY, compressible_binary(n), frag=777)
            except CaseFail as e:
                raise CaseFail("BFINAL message of %d bytes: %s" % (n, e))
        ws.bfinal = None
        for i in range(3):
            ws.echo_c(OP_TEXT, compressible_text(500 + i, 1))
    return fn


_j = 0
for _style, _sdesc in (("rfc", "a BFINAL block plus the 0x00 octet of RFC 7692 7.2.3.4"),
                       ("raw", "Z_FINISH only (a BFINAL block, nothing after it)")):
    for _offer, _srv in (("permessage-deflate", SRV_DEFAULT),
                         ("permessage-deflate; client_no_context_takeover", SRV_DEFAULT),
                         ("permessage-deflate", SRV_TAKEOVER)):
        _j += 1
        add("13.6.4.%d" % _j, "%s, offer '%s': messages compressed as %s, several in a row, "
            "single-frame and fragmented, then ordinary ones -> all accepted and echoed"
            % (SRV_NAMES[_srv], _offer, _sdesc), _bfinal_case(_style, _offer, _srv))


@case("13.6.5", "the compressed payloads of RFC 7692 section 7.2.3 ('Hello' in one fixed block, "
      "in a stored block, with BFINAL, in two blocks; a second 'Hello' sharing the window) "
      "-> 'Hello' echoes")
def _(ctx):
    ws = pmd_ws(ctx, "permessage-deflate")
    for h in ("f248cdc9c90700", "f200110000", "000500faff48656c6c6f00", "f348cdc9c9070000",
              "f248050000 00ffffcac9c90700"):
        ws.send(frame(OP_TEXT, bytes.fromhex(h.replace(" ", "")), rsv=4))
        try:
            ws.expect_cmessage(OP_TEXT, b"Hello")
        except CaseFail as e:
            raise CaseFail("payload %s: %s" % (h, e))


@case("13.6.6", "compressed message in 1-byte fragments -> echo")
def _(ctx):
    ws = pmd_ws(ctx)
    m = compressible_text(3000, 4)
    ws.echo_c(OP_TEXT, m, frag=1)


@case("13.6.7", "compressed message whose first fragment is empty -> echo")
def _(ctx):
    ws = pmd_ws(ctx)
    m = compressible_text(3000, 5)
    z = ws.compress(m)
    ws.send(b"".join(cfragments(OP_TEXT, [b"", z[:10], b"", z[10:]])))
    ws.expect_cmessage(OP_TEXT, m)


@case("13.6.8", "ping between the fragments of a compressed message -> pong, then the echo")
def _(ctx):
    ws = pmd_ws(ctx)
    m = compressible_text(20000, 6)
    z = ws.compress(m)
    ws.send(frame(OP_TEXT, z[:100], fin=False, rsv=4) + frame(OP_PING, b"mid")
            + frame(OP_CONT, z[100:]))
    ws.expect_pong(b"mid")
    ws.expect_cmessage(OP_TEXT, m)


@case("13.6.9", "uncompressed and compressed messages alternating on one connection -> echoes")
def _(ctx):
    ws = pmd_ws(ctx, "permessage-deflate", SRV_TAKEOVER)
    for i in range(10):
        m = compressible_text(500 + i, i)
        if i % 2:
            ws.send(frame(OP_TEXT, m))
        else:
            ws.send_compressed(OP_TEXT, m)
        ws.expect_cmessage(OP_TEXT, m)


@case("13.6.10", "a compressed text whose UTF-8 sequences straddle inflate chunk and fragment "
      "boundaries (1 MiB of 4-byte characters, 1000-byte fragments) -> echo")
def _(ctx):
    ws = pmd_ws(ctx)
    m = ("😀𝄞" * (MiB // 8)).encode("utf-8")
    ws.echo_c(OP_TEXT, m, frag=1000)


@case("13.6.11", "--max-message 1 MiB: compressed message inflating to exactly 1 MiB -> echo",
      needs_limit=True)
def _(ctx):
    ws = pmd_ws(ctx, srv=SRV_LIMIT)
    ws.echo_c(OP_BINARY, compressible_binary(MiB))


# ---- 13.7: errors -------------------------------------------------------

def _with_zdict():
    words = b"".join(b"word%04d " % i for i in range(200))
    c = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=words)
    z = c.compress(words[500:1500]) + c.flush(zlib.Z_SYNC_FLUSH)
    return z[:-4]


def _pmd_fail(data_fn, code, srv=SRV_DEFAULT, offer="permessage-deflate", before=()):
    def fn(ctx):
        ws = pmd_ws(ctx, offer, srv, expect=False if offer is None else None)
        ws.send(data_fn(ws))
        for op, payload in before:
            if op == OP_PONG:
                ws.expect_pong(payload)
            else:
                ws.expect_cmessage(op, payload)
        ws.expect_close(code)
    return fn


add("13.7.1", "RSV1 on a continuation frame of a compressed message -> 1002",
    _pmd_fail(lambda ws: frame(OP_TEXT, ws.compress(b"hello world")[:3], fin=False, rsv=4)
              + frame(OP_CONT, b"", rsv=4), 1002))
add("13.7.2", "RSV1 on a continuation frame of an uncompressed message -> 1002",
    _pmd_fail(lambda ws: frame(OP_TEXT, b"abc", fin=False) + frame(OP_CONT, b"\x00", rsv=4), 1002))
add("13.7.3", "RSV1 on a ping -> 1002", _pmd_fail(lambda ws: frame(OP_PING, b"p", rsv=4), 1002))
add("13.7.4", "RSV1 on a pong -> 1002", _pmd_fail(lambda ws: frame(OP_PONG, b"p", rsv=4), 1002))
add("13.7.5", "RSV1 on a close -> 1002",
    _pmd_fail(lambda ws: frame(OP_CLOSE, close_payload(1000), rsv=4), 1002))
add("13.7.6", "RSV1 on a ping between compressed fragments -> 1002",
    _pmd_fail(lambda ws: frame(OP_TEXT, ws.compress(b"x" * 100), fin=False, rsv=4)
              + frame(OP_PING, b"p", rsv=4), 1002))
add("13.7.7", "permessage-deflate not offered: RSV1 on a text frame -> 1002",
    _pmd_fail(lambda ws: frame(OP_TEXT, b"\x00", rsv=4), 1002, offer=None))
add("13.7.8", "--deflate-takeover on, echo first, then RSV2 on a text frame -> 1002",
    _pmd_fail(lambda ws: frame(OP_TEXT, b"hi" * 40) + frame(OP_TEXT, b"\x00", rsv=2), 1002,
              srv=SRV_TAKEOVER,
              before=[(OP_TEXT, b"hi" * 40)]))
add("13.7.9", "RSV1|RSV3 on a text frame -> 1002",
    _pmd_fail(lambda ws: frame(OP_TEXT, b"\x00", rsv=5), 1002))
add("13.7.10", "invalid compressed data (0xff 0xff 0xff: reserved block type) -> 1007",
    _pmd_fail(lambda ws: frame(OP_BINARY, b"\xff\xff\xff", rsv=4), 1007))
add("13.7.11", "invalid compressed data after a good compressed message -> echo, then 1007",
    _pmd_fail(lambda ws: frame(OP_TEXT, ws.compress(b"good " * 20), rsv=4)
              + frame(OP_BINARY, b"\x07" + os.urandom(200), rsv=4), 1007,
              before=[(OP_TEXT, b"good " * 20)]))
add("13.7.12", "compressed data referring to a preset dictionary the server never saw "
    "(distances before the start of the stream) -> 1007",
    _pmd_fail(lambda ws: frame(OP_BINARY, _with_zdict(), rsv=4), 1007))
add("13.7.13", "the second fragment of a compressed message starts a block of the reserved "
    "type 3 -> 1007",
    _pmd_fail(lambda ws: frame(OP_BINARY, ws.compress(compressible_binary(3000)), fin=False,
                               rsv=4) + frame(OP_CONT, PMD_TAIL + b"\x07" + b"\xff" * 64), 1007))
add("13.7.14", "compressed text that is not UTF-8 (0xC0 0xAF) -> 1007",
    _pmd_fail(lambda ws: frame(OP_TEXT, ws.compress(b"ok \xc0\xaf ok"), rsv=4), 1007))
add("13.7.15", "compressed text ending inside a UTF-8 sequence -> 1007",
    _pmd_fail(lambda ws: frame(OP_TEXT, ws.compress("abc€".encode()[:-1]), rsv=4), 1007))
add("13.7.16", "compressed text, 64 KiB of valid UTF-8 then a lone 0xFF, fragmented -> 1007",
    _pmd_fail(lambda ws: b"".join(cfragments(OP_TEXT, chunks_of(ws.compress(
        compressible_text(64 * KiB) + b"\xff" + b"z" * 1000), 333))), 1007))
add("13.7.17", "--deflate-takeover on: invalid UTF-8 in the 3rd compressed message -> 2 echoes, "
    "then 1007", _pmd_fail(lambda ws: b"".join(
        frame(OP_TEXT, ws.compress(m), rsv=4) for m in (b"one " * 30, b"two " * 30,
                                                        b"three \xed\xa0\x80")),
        1007, srv=SRV_TAKEOVER, before=[(OP_TEXT, b"one " * 30), (OP_TEXT, b"two " * 30)]))
@case("13.7.18", "--max-message 1 MiB: compressed message inflating to 1 MiB + 1 -> 1009",
      needs_limit=True)
def _(ctx):
    ws = pmd_ws(ctx, srv=SRV_LIMIT)
    ws.send_compressed(OP_BINARY, bytes(MiB + 1))
    ws.expect_close(1009)


@case("13.7.19", "--max-message 1 MiB: 64 MiB of zeros compressed to ~64 KiB, fragmented -> "
      "1009", needs_limit=True)
def _(ctx):
    ws = pmd_ws(ctx, srv=SRV_LIMIT)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    z = b"".join(c.compress(bytes(MiB)) for _ in range(64)) + c.flush(zlib.Z_SYNC_FLUSH)
    ws.send(b"".join(cfragments(OP_BINARY, chunks_of(z[:-4], 8 * KiB))))
    ws.expect_close(1009)


@case("13.7.20", "compressed message that ends inside a stored block (truncated deflate data) "
      "-> 1007")
def _(ctx):
    ws = pmd_ws(ctx)
    z = ws.compress(os.urandom(3000))  # incompressible: stored blocks
    ws.send(frame(OP_BINARY, z[:1500], rsv=4))
    ws.expect_close(1007)


# ==========================================================================
# H  Opening handshake
# ==========================================================================

def _hs_status(status, check=None, **kw):
    def fn(ctx):
        req, _key = build_request(ctx.host_header(), **kw)
        c, resp = ctx.http(req)
        if resp.status != status:
            raise CaseFail("expected %d, got %s" % (status, resp.summary()))
        if check:
            check(resp)
    return fn


@case("H.1", "RFC 6455 sample key dGhlIHNhbXBsZSBub25jZQ== -> accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
def _(ctx):
    req, key = build_request(ctx.host_header(), key="dGhlIHNhbXBsZSBub25jZQ==")
    c, resp = ctx.http(req)
    if resp.status != 101:
        raise CaseFail("expected 101, got %s" % resp.summary())
    if resp.get_all("sec-websocket-accept") != ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]:
        raise CaseFail("Sec-WebSocket-Accept is %r" % resp.get_all("sec-websocket-accept"))
    check_101(resp, key)
    c.echo(OP_TEXT, "sample")


@case("H.2", "random key -> 101 with the right accept, Upgrade: websocket, Connection: Upgrade")
def _(ctx):
    ws = ctx.ws()
    ws.echo(OP_TEXT, "hi")


@case("H.3", "Connection: keep-alive, Upgrade -> 101")
def _(ctx):
    req, key = build_request(ctx.host_header(), connection="keep-alive, Upgrade")
    c, resp = ctx.http(req)
    check_101(resp, key)
    c.echo(OP_TEXT, "ok")


@case("H.4", "Upgrade: WebSocket (mixed case) and Connection: upgrade (lower case) -> 101")
def _(ctx):
    req, key = build_request(ctx.host_header(), upgrade="WebSocket", connection="upgrade")
    c, resp = ctx.http(req)
    check_101(resp, key)
    c.echo(OP_TEXT, "ok")


@case("H.5", "Sec-WebSocket-Version: 8 -> 426 with Sec-WebSocket-Version: 13")
def _(ctx):
    req, _ = build_request(ctx.host_header(), ws_version="8")
    c, resp = ctx.http(req)
    if resp.status != 426:
        raise CaseFail("expected 426, got %s" % resp.summary())
    if "13" not in resp.tokens("sec-websocket-version"):
        raise CaseFail("426 lacks Sec-WebSocket-Version: 13 (has %r)"
                       % resp.get_all("sec-websocket-version"))


add("H.6", "missing Sec-WebSocket-Key -> 400", _hs_status(400, key=None))
add("H.7", "Sec-WebSocket-Key not base64 -> 400", _hs_status(400, key="not*base64*at*all!!!!!"))
add("H.8", "Sec-WebSocket-Key base64 of 15 bytes -> 400",
    _hs_status(400, key=base64.b64encode(b"x" * 15).decode()))
add("H.9", "Sec-WebSocket-Key base64 of 17 bytes -> 400",
    _hs_status(400, key=base64.b64encode(b"x" * 17).decode()))


@case("H.10", "missing Host -> 400")
def _(ctx):
    req, _ = build_request(None)
    c, resp = ctx.http(req)
    if resp.status != 400:
        raise CaseFail("expected 400, got %s" % resp.summary())


add("H.11", "POST upgrade request -> 400", _hs_status(400, method="POST",
                                                      extra=["Content-Length: 0"]))
add("H.12", "HTTP/1.0 upgrade request -> 400", _hs_status(400, version="HTTP/1.0"))
add("H.13", "upgrade to /nope (no WebSocket route) -> 404", _hs_status(404, path="/nope"))
add("H.14", "Connection header without upgrade -> 400", _hs_status(400, connection="keep-alive"))
add("H.15", "missing Sec-WebSocket-Version -> 400", _hs_status(400, ws_version=None))


@case("H.16", "400 response has a body, Connection: close, and the server closes TCP")
def _(ctx):
    req, _ = build_request(ctx.host_header(), key=None)
    c, resp = ctx.http(req)
    if resp.status != 400:
        raise CaseFail("expected 400, got %s" % resp.summary())
    if not resp.body.strip():
        raise CaseFail("400 response has an empty body")
    if "close" not in resp.tokens("connection"):
        raise CaseFail("400 response lacks Connection: close (has %r)"
                       % resp.get_all("connection"))
    c.expect_eof("after the 400 response")


@case("H.17", "plain GET /echo without upgrade -> 426 with Upgrade: websocket")
def _(ctx):
    req = ("GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n" % ctx.host_header()).encode()
    c, resp = ctx.http(req)
    if resp.status != 426:
        raise CaseFail("expected 426, got %s" % resp.summary())
    if "websocket" not in resp.tokens("upgrade"):
        raise CaseFail("426 lacks Upgrade: websocket (has %r)" % resp.get_all("upgrade"))


@case("H.18", "subprotocols offered 'foo, uvws-echo, echo' -> selects uvws-echo")
def _(ctx):
    ws = ctx.ws(protocols=["foo, uvws-echo, echo"], expect_protocol="uvws-echo")
    ws.echo(OP_TEXT, "proto")


@case("H.19", "subprotocols offered 'echo, uvws-echo' -> selects echo (client order)")
def _(ctx):
    ctx.ws(protocols=["echo, uvws-echo"], expect_protocol="echo")


@case("H.20", "only subprotocol 'foo' offered -> 101 without Sec-WebSocket-Protocol")
def _(ctx):
    ws = ctx.ws(protocols=["foo"], expect_protocol=None)
    ws.echo(OP_TEXT, "no proto")


@case("H.21", "subprotocol offers split across two headers ('foo' then 'bar, echo') -> echo")
def _(ctx):
    ctx.ws(protocols=["foo", "bar, echo"], expect_protocol="echo")


@case("H.22", "subprotocol offers split across two headers ('x', 'uvws-echo', 'echo' order)")
def _(ctx):
    ctx.ws(protocols=["x", "uvws-echo, echo"], expect_protocol="uvws-echo")


@case("H.23", "permessage-deflate offered -> accepted (RFC 7692), an uncompressed echo still works")
def _(ctx):
    ws = ctx.ws(extra=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
                expect_extensions="permessage-deflate; server_no_context_takeover; "
                                  "client_max_window_bits=15")
    ws.echo(OP_TEXT, "uncompressed")


@case("H.24", "handshake and first masked frame in ONE write -> echo arrives")
def _(ctx):
    c = ctx.raw()
    req, key = build_request(ctx.host_header())
    c.send(req + frame(OP_TEXT, "same segment") + frame(OP_PING, "p"))
    resp = read_response(c)
    check_101(resp, key)
    c.expect_message(OP_TEXT, "same segment")
    c.expect_pong("p")


@case("H.25", "handshake request sent one byte per write -> 101, echo works")
def _(ctx):
    c = ctx.raw()
    req, key = build_request(ctx.host_header())
    c.send(req, chunk=1, delay=0.0005)
    resp = read_response(c)
    check_101(resp, key)
    c.echo(OP_TEXT, "slow handshake")


@case("H.26", "header names in odd case and extra whitespace -> 101")
def _(ctx):
    key = make_key()
    req = ("GET /echo HTTP/1.1\r\nhOsT: %s\r\nUPGRADE:   websocket  \r\nconnection:Upgrade\r\n"
           "SEC-WEBSOCKET-KEY: %s\r\nsec-websocket-version:  13\r\n\r\n"
           % (ctx.host_header(), key)).encode()
    c, resp = ctx.http(req)
    check_101(resp, key)
    c.echo(OP_TEXT, "ok")


@case("H.27", "Upgrade as token list 'foo, websocket' -> 101")
def _(ctx):
    req, key = build_request(ctx.host_header(), upgrade="foo, websocket")
    c, resp = ctx.http(req)
    check_101(resp, key)


@case("H.28", "handshake + close frame in one write -> 101, close 1000, TCP closed")
def _(ctx):
    c = ctx.raw()
    req, key = build_request(ctx.host_header())
    c.send(req + frame(OP_CLOSE, close_payload(1000)))
    check_101(read_response(c), key)
    c.expect_close(1000, reply=False)


@case("H.29", "upgrade on a keep-alive connection after a plain request (404 for a missing "
      "file) -> 101, echo")
def _(ctx):
    c = ctx.raw()
    c.send(("GET /no-such-file-%d.txt HTTP/1.1\r\nHost: %s\r\n\r\n"
            % (os.getpid(), ctx.host_header())).encode())
    resp = read_response(c)
    if resp.status != 404:
        raise CaseFail("plain GET of a missing file: expected 404, got %s" % resp.summary())
    if "close" in resp.tokens("connection"):
        raise CaseFail("404 response closes the connection (Connection: close)")
    req, key = build_request(ctx.host_header())
    c.send(req)
    check_101(read_response(c), key)
    c.echo(OP_TEXT, "after keep-alive")


@case("H.30", "handshake + unmasked frame in one write -> 101, then close 1002")
def _(ctx):
    c = ctx.raw()
    req, key = build_request(ctx.host_header())
    c.send(req + frame(OP_TEXT, "unmasked", mask=False))
    check_101(read_response(c), key)
    c.expect_close(1002)


# --------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------

def matches(cid, prefixes):
    if not prefixes:
        return True
    for p in prefixes:
        if cid == p or cid.startswith(p if p.endswith(".") else p + "."):
            return True
    return False


class Servers:
    """The server instances under test (started here unless --url)."""

    def __init__(self, url, need_limit):
        self.url = url
        self.need_limit = need_limit
        self.main = None
        self.limit = None
        self.restarts = []
        self.extra = {}  # flags tuple -> instance (categories 12 and 13)

    def start(self):
        if self.url:
            return
        self._cls = start_server
        self.main = start_server()
        if self.need_limit:
            self.limit = start_server("--max-message", str(MAX_MESSAGE_LIMIT))

    def extra_port(self, args):
        """The port of an instance started with `args` (started on first use)."""
        args = tuple(args)
        if args not in self.extra:
            self.extra[args] = self._cls(*args)
        return server_port(self.extra[args])

    def endpoint(self):
        if self.url:
            rest = self.url.split("://", 1)[-1].split("/", 1)[0]
            host, _, port = rest.rpartition(":")
            return host.strip("[]"), int(port), None
        return "127.0.0.1", server_port(self.main), (server_port(self.limit) if self.limit else None)

    SANITIZER_MARKS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "Sanitizer:DEADLYSIGNAL", "ERROR: UndefinedBehaviorSanitizer")

    def _dying(self, srv, probe):
        """True if the instance is dead or going to die: it exited, its log
        shows a sanitizer report, or (after a failed case) it refuses
        connections. A dying instance is given 10 s to exit, then killed."""
        if not srv.alive():
            return True
        sick = any(m in srv.log_text() for m in self.SANITIZER_MARKS)
        if not sick and probe:
            try:
                socket.create_connection(("127.0.0.1", server_port(srv)), timeout=2).close()
            except OSError:
                sick = True
        if not sick:
            return False
        try:
            srv.proc.wait(10)
        except Exception:
            srv.proc.kill()
            srv.proc.wait()
        return True

    def check_alive(self, probe=False):
        """Returns a description of any dead instance and restarts it."""
        if self.url:
            return None
        msgs = []
        for attr, args in (("main", ()), ("limit", ("--max-message", str(MAX_MESSAGE_LIMIT))))\
                + tuple((a, a) for a in self.extra):
            srv = getattr(self, attr) if isinstance(attr, str) else self.extra[attr]
            if srv is not None and self._dying(srv, probe):
                rc = srv.proc.returncode
                try:
                    srv._thread.join(2)
                except Exception:
                    pass
                lines = srv.log_text().splitlines()
                first = next((i for i, l in enumerate(lines)
                              if any(m in l for m in self.SANITIZER_MARKS)), None)
                shown = lines[max(0, first - 3):first + 25] if first is not None else lines[-20:]
                msgs.append("server%s died (exit status %s); restarted; its log:\n    %s"
                            % (" (--max-message)" if attr == "limit" else
                               "" if attr == "main" else " (%s)" % " ".join(args), rc,
                               "\n    ".join(shown)))
                if isinstance(attr, str):
                    setattr(self, attr, self._cls(*args))
                else:
                    self.extra[attr] = self._cls(*args)
        return "\n".join(msgs) or None

    def stop(self):
        problems = []
        for srv in (self.main, self.limit) + tuple(self.extra.values()):
            if srv is None:
                continue
            try:
                srv.stop()
            except AssertionError as e:
                problems.append(str(e))
        return problems


def main():
    global TLS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", default=[],
                    help="run only cases whose id is PREFIX or starts with PREFIX. "
                         "(comma-separated or repeated)")
    ap.add_argument("--url", help="test a running server, e.g. ws://127.0.0.1:8080 or "
                                  "wss://127.0.0.1:8443 (cases needing a --max-message server "
                                  "are skipped; a wss:// certificate is not verified)")
    ap.add_argument("--tls", action="store_true",
                    help="run every case over wss://: the servers get --tls-self-signed "
                         "--tls-port 0 --tls-only and each connection is wrapped in TLS")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the time of each case")
    ap.add_argument("--budget", type=float, default=240.0,
                    help="total seconds; once spent, the remaining cases FAIL as not run "
                         "(keeps a badly hanging server under ctest's 300 s TIMEOUT; default 240)")
    args = ap.parse_args()

    if args.url:
        rest = args.url.split("://", 1)[-1].split("/", 1)[0]
        if not args.url.startswith(("ws://", "wss://")) or not rest.rpartition(":")[2].isdigit():
            ap.error("--url must look like ws://HOST:PORT or wss://HOST:PORT")
        if args.tls and not args.url.startswith("wss://"):
            ap.error("--tls with --url needs a wss:// URL")
        if args.url.startswith("wss://"):
            args.tls = True
    if args.tls:
        TLS = tls_client_context()
    prefixes = [p.strip() for o in args.only for p in o.split(",") if p.strip()]
    selected = [c for c in CASES if matches(c.cid, prefixes)]
    if args.list:
        for c in selected:
            print("%s %s" % (c.cid, c.desc))
        print("%d cases" % len(selected))
        return 0

    passed = failed = skipped = 0
    t_start = time.monotonic()
    servers = Servers(args.url, any(c.needs_limit for c in selected))
    try:
        servers.start()
    except Exception as e:
        print("FAIL setup: could not start the server: %s" % e)
        print("0 passed, 1 failed")
        return 1

    slow = []
    for c in selected:
        if time.monotonic() - t_start > args.budget:
            failed += 1
            print("FAIL %s %s: not run: the suite's %.0f s time budget is spent"
                  % (c.cid, c.desc, args.budget))
            continue
        host, port, limit_port = servers.endpoint()
        ctx = Ctx(host, port, limit_port, not args.url)
        ctx.servers = None if args.url else servers
        t0 = time.monotonic()
        err = None
        try:
            c.fn(ctx)
        except CaseSkip as e:
            err = ("SKIP", str(e))
        except CaseFail as e:
            err = ("FAIL", str(e))
        except Exception as e:  # a bug in the case or an unexpected socket error
            err = ("FAIL", "%s: %s" % (type(e).__name__, e))
            if args.verbose:
                traceback.print_exc()
        finally:
            ctx.cleanup()
        dt = time.monotonic() - t0
        dead = servers.check_alive(probe=err is not None and err[0] == "FAIL")
        if dead:
            err = ("FAIL", (err[1] + "; " if err and err[0] == "FAIL" else "") + dead)
        tail = " (%.2f s)" % dt if args.verbose else ""
        if err is None:
            passed += 1
            print("PASS %s %s%s" % (c.cid, c.desc, tail))
        elif err[0] == "SKIP":
            skipped += 1
            print("SKIP %s %s: %s" % (c.cid, c.desc, err[1]))
        else:
            failed += 1
            print("FAIL %s %s: %s%s" % (c.cid, c.desc, err[1], tail))
        if dt > 2.0:
            slow.append((dt, c.cid))
        sys.stdout.flush()

    for problem in servers.stop():
        failed += 1
        print("FAIL server-exit server did not shut down cleanly: %s" % problem)
    total = time.monotonic() - t_start
    if slow:
        print("# slow cases: " + ", ".join("%s %.1fs" % (cid, dt) for dt, cid in sorted(slow)[::-1]))
    print("# %d cases run in %.1f s%s" % (passed + failed + skipped, total,
                                           ", %d skipped" % skipped if skipped else ""))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
