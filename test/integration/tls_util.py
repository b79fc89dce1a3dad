#!/usr/bin/python3
"""Helpers for the TLS integration tests (tls_*_test.py, tls_node.test.js).

A throw-away PKI made by the test itself with the openssl command-line tool
(no key is ever committed):

    ca.pem / ca.key           root CA (EC P-256), the only thing clients trust
    int.pem / int.key         intermediate CA, signed by the root
    ec.pem / ec.key           server, EC P-256, signed by the root directly
    rsa.pem / rsa.key         server, RSA 2048, signed by the root directly
    ec-chain.pem / ec-int.key     server (EC) signed by the intermediate,
                                  then the intermediate: a chain file
    rsa-chain.pem / rsa-int.key   the same with an RSA 2048 server key

Every server certificate has SAN DNS:localhost, IP:127.0.0.1 and a random
serial. Run as a program to write the set to a folder (for the Node tests):

    tls_util.py pki OUTDIR

Also: an ssl context that trusts the test CA, a bounded openssl s_client
runner, a curl runner, a blocking wss:// echo client over a raw ssl socket,
and certificate fingerprints. Every operation is bounded in time; loopback
only. A missing openssl or curl raises (the test FAILS, never skips).
"""
import base64
import hashlib
import os
import re
import secrets
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402,F401  (re-exported)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 10.0


def need_tool(name):
    path = shutil.which(name)
    if path is None:
        raise AssertionError("%s is not installed (deps/install.sh --test installs it)" % name)
    return path


def run(cmd, timeout=30, input=None, check=True):
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode,
                                                         p.stdout.decode("utf-8", "replace"),
                                                         p.stderr.decode("utf-8", "replace")))
    return p


# ---------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------

CA_EXT = """[v3]
basicConstraints = critical, CA:TRUE%s
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

LEAF_EXT = """[v3]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature%s
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


class Pki:
    """The certificates above in `dir` (a fresh temporary folder by default)."""

    def __init__(self, dir=None):
        self.openssl = need_tool("openssl")
        self.dir = dir or tempfile.mkdtemp(prefix="uvws-it-tls-")
        self._own_dir = dir is None
        os.makedirs(self.dir, exist_ok=True)
        self.root_key = self.new_key("ca.key", "ec")
        self.ca = self.path("ca.pem")
        run([self.openssl, "req", "-x509", "-new", "-key", self.root_key, "-out", self.ca,
             "-days", "3", "-subj", "/O=uvws tests/CN=uvws test root CA", "-sha256",
             "-set_serial", self.serial(),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash"])
        self.int_key = self.new_key("int.key", "ec")
        self.int_cert = self.sign("int", self.int_key, "/O=uvws tests/CN=uvws test intermediate CA",
                                  self.ca, self.root_key, CA_EXT % ", pathlen:0")
        self.ec_key = self.new_key("ec.key", "ec")
        self.ec_cert = self.leaf("ec", self.ec_key, "ec")
        self.rsa_key = self.new_key("rsa.key", "rsa")
        self.rsa_cert = self.leaf("rsa", self.rsa_key, "rsa")
        self.ec_int_key = self.new_key("ec-int.key", "ec")
        self.ec_chain = self.chain("ec-chain", self.ec_int_key, "ec")
        self.rsa_int_key = self.new_key("rsa-int.key", "rsa")
        self.rsa_chain = self.chain("rsa-chain", self.rsa_int_key, "rsa")

    def path(self, name):
        return os.path.join(self.dir, name)

    @staticmethod
    def serial():
        return "0x%x" % (secrets.randbits(120) | (1 << 119))  # positive, 15 bytes, random

    def new_key(self, name, kind):
        out = self.path(name)
        if kind == "ec":
            run([self.openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", out])
        else:
            run([self.openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", out], timeout=60)
        os.chmod(out, 0o600)
        return out

    def sign(self, name, key, subject, ca_cert, ca_key, ext):
        csr = self.path(name + ".csr")
        extfile = self.path(name + ".ext")
        out = self.path(name + ".pem")
        with open(extfile, "w") as f:
            f.write(ext)
        run([self.openssl, "req", "-new", "-key", key, "-subj", subject, "-out", csr])
        run([self.openssl, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
             "-set_serial", self.serial(), "-days", "2", "-sha256", "-extfile", extfile,
             "-extensions", "v3", "-out", out])
        return out

    def leaf(self, name, key, kind, ca_cert=None, ca_key=None):
        """A server certificate for `key`, signed by the root (or ca_cert/ca_key)."""
        ext = LEAF_EXT % (", keyEncipherment" if kind == "rsa" else "")
        return self.sign(name, key, "/O=uvws tests/CN=localhost", ca_cert or self.ca,
                         ca_key or self.root_key, ext)

    def chain(self, name, key, kind):
        leaf = self.leaf(name + "-leaf", key, kind, self.int_cert, self.int_key)
        out = self.path(name + ".pem")
        with open(out, "w") as f:
            f.write(read_text(leaf) + read_text(self.int_cert))
        return out

    def client_context(self):
        """Verifies the server against the test root CA (hostname included)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def cleanup(self):
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def replace_file(path, data):
    """Atomically replaces `path` with `data` (what a certificate renewal should do)."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def read_text(path):
    with open(path) as f:
        return f.read()


def pem_fingerprint(path):
    """SHA-256 of the first certificate in a PEM file, "AB:CD:..."."""
    text = read_text(path)
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
    return der_fingerprint(base64.b64decode("".join(m.group(1).split())))


def der_fingerprint(der):
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


def peer_fingerprint(port, host="127.0.0.1", timeout=TIMEOUT):
    """Connects without verifying; returns the SHA-256 of the server's certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return der_fingerprint(t.getpeercert(binary_form=True))


def linked_mbedtls_version(binary):
    """(major, minor, patch) of the libmbedcrypto the uvws binary is linked
    with (asked from the library itself), else of the installed headers."""
    try:
        import ctypes
        out = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=10).stdout.decode()
        m = re.search(r"libmbedcrypto\.so\S*\s+=>\s+(\S+)", out)
        if m:
            lib = ctypes.CDLL(m.group(1))
            lib.mbedtls_version_get_number.restype = ctypes.c_uint
            v = lib.mbedtls_version_get_number()
            return (v >> 24, (v >> 16) & 0xFF, (v >> 8) & 0xFF)
    except (OSError, AttributeError, subprocess.SubprocessError):
        pass
    for h in ("/usr/include/mbedtls/build_info.h", "/usr/include/mbedtls/version.h"):
        if os.path.exists(h):
            m = re.search(r'#define MBEDTLS_VERSION_STRING\s+"(\d+)\.(\d+)\.(\d+)"', read_text(h))
            if m:
                return tuple(int(x) for x in m.groups())
    raise AssertionError("cannot tell which mbedTLS %s is linked with" % binary)


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------

class SClient:
    """The result of one openssl s_client run."""

    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err
        self.text = out + "\n" + err

    def field(self, name):
        m = re.search(r"^\s*%s\s*:\s*(.*?)\s*$" % re.escape(name), self.out, re.M)
        return m.group(1) if m else None

    @property
    def connected(self):
        """A handshake completed (s_client printed the negotiated session)."""
        return self.rc == 0 and re.search(r"^(New|Reused), TLSv", self.out, re.M) is not None

    def __repr__(self):
        return "s_client rc=%d\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out[-4000:], self.err[-2000:])


def s_client(port, *args, input=b"", timeout=20, host="127.0.0.1"):
    """openssl s_client -connect host:port ARGS, stdin = input (then EOF)."""
    exe = need_tool("openssl")
    cmd = [exe, "s_client", "-connect", "%s:%d" % (host, port), "-servername", "localhost"] + list(args)
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return SClient(p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))


def curl(*args, timeout=30):
    """curl -sS ARGS; returns (returncode, stdout bytes, stderr text)."""
    exe = need_tool("curl")
    cmd = [exe, "-sS", "--max-time", str(timeout - 5), "--noproxy", "*"] + list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def ws_frame(opcode, payload):
    """One masked client frame."""
    n = len(payload)
    if n < 126:
        hdr = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = os.urandom(4)
    k = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little") if n else b""
    return hdr + key + masked


class WssClient:
    """A blocking wss:// echo client on a raw ssl socket, for holding a
    connection open across a test (reload, attacks) and checking it still works."""

    def __init__(self, port, ctx=None, host="127.0.0.1", path="/echo", timeout=TIMEOUT):
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.fingerprint = der_fingerprint(self.sock.getpeercert(binary_form=True))
        self.buf = b""
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost:%d\r\n"
                          b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " % port
                          + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError("wss upgrade refused: %r" % head)
        want = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if b"sec-websocket-accept: " + want.lower() not in head.lower():
            raise AssertionError("bad Sec-WebSocket-Accept in %r" % head)

    def _more(self):
        d = self.sock.recv(1 << 16)
        if not d:
            raise AssertionError("wss connection closed by the server")
        self.buf += d

    def _need(self, n):
        while len(self.buf) < n:
            self._more()

    def recv_frame(self):
        self._need(2)
        op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        off = 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return op, payload

    def echo(self, data):
        """Sends a binary message, returns what came back (skipping pings)."""
        self.sock.sendall(ws_frame(2, data))
        while True:
            op, payload = self.recv_frame()
            if op == 0x9:
                self.sock.sendall(ws_frame(0xA, payload))
                continue
            if op != 2:
                raise AssertionError("expected a binary echo, got opcode %d %r" % (op, payload[:60]))
            return payload

    def check(self, n=1000):
        data = os.urandom(n)
        got = self.echo(data)
        if got != data:
            raise AssertionError("wss echo differs (%d bytes sent, %d back)" % (len(data), len(got)))

    def close(self):
        try:
            self.sock.sendall(ws_frame(0x8, struct.pack("!H", 1000)))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                op, _ = self.recv_frame()
                if op == 0x8:
                    break
        except (OSError, AssertionError, ssl.SSLError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def https_get(port, path, ctx=None, host="127.0.0.1", timeout=TIMEOUT):
    """One HTTP/1.1 GET over TLS with Connection: close; returns (status, headers text, body)."""
    if ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n"
                       % (path, port)).encode())
            data = b""
            while True:
                try:
                    d = s.recv(65536)
                except ssl.SSLEOFError:
                    break
                if not d:
                    break
                data += d
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else None
    return status, head.decode("latin-1"), body


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "pki":
        pki = Pki(sys.argv[2])
        print(pki.dir)
        sys.exit(0)
    sys.stderr.write("usage: tls_util.py pki OUTDIR\n")
    sys.exit(2)
