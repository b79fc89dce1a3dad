"""Helpers for the HTTP integration tests: a curl runner, a raw-socket HTTP/1.1 response reader
and a temporary web root. Every network operation is bounded in time; loopback only."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402,F401  (re-exported)

SOCK_TIMEOUT = 10.0
SECRET = "uvws-secret-outside-the-web-root-7f3a9c"

# extension -> (file name, Content-Type the contract promises)
MIME_CASES = [
    ("page.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("mod.mjs", "text/javascript; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("pic.svg", "image/svg+xml"),
    ("pic.png", "image/png"),
    ("favicon.ico", "image/x-icon"),
    ("data.json", "application/json"),
    ("mod.wasm", "application/wasm"),
    ("notes.txt", "text/plain; charset=utf-8"),
    ("blob.bin", "application/octet-stream"),
    ("archive.tar.gz", "application/octet-stream"),
    ("weird.xyz", "application/octet-stream"),
    ("noextension", "application/octet-stream"),
]

INDEX_HTML = b"<!doctype html>\n<html><head><title>uvws test root</title></head><body>root index</body></html>\n"
SUB_INDEX_HTML = b"<!doctype html>\n<title>sub</title><p>sub index</p>\n"
FIXED_MTIME = 1600000000  # Sun, 13 Sep 2020 12:26:40 GMT
FIXED_MTIME_HTTP = "Sun, 13 Sep 2020 12:26:40 GMT"


def need_curl():
    path = shutil.which("curl")
    if path is None:
        raise AssertionError("curl is not installed (deps/install.sh --test installs it)")
    return path


class WebRoot:
    """A temporary directory tree:

    root/                 index.html, one file per MIME case, big.bin (5 MiB random),
                          fixed.txt (mtime FIXED_MTIME), with space.txt
    root/sub/             index.html, inner.txt
    root/empty/           no index.html
    root/etc-link   ->    /etc                      (symlink out of the root)
    root/secret-link.txt -> OUTSIDE/secret.txt      (symlink out of the root)
    root/outside-dir  ->  OUTSIDE                   (symlink out of the root)
    OUTSIDE/secret.txt    contains SECRET (a sibling of the root, never served)
    """

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="uvws-it-http-")
        self.root = os.path.join(self.base, "root")
        self.outside = os.path.join(self.base, "outside")
        os.makedirs(os.path.join(self.root, "sub"))
        os.makedirs(os.path.join(self.root, "empty"))
        os.makedirs(self.outside)
        self.files = {}
        self.put("index.html", INDEX_HTML)
        for name, _ in MIME_CASES:
            self.put(name, ("content of %s\n" % name).encode() + os.urandom(64))
        self.put("big.bin", os.urandom(5 * 1024 * 1024))
        self.put("fixed.txt", b"fixed mtime\n")
        os.utime(os.path.join(self.root, "fixed.txt"), (FIXED_MTIME, FIXED_MTIME))
        self.put("with space.txt", b"a file name with a space\n")
        self.put("sub/index.html", SUB_INDEX_HTML)
        self.put("sub/inner.txt", b"inner file\n")
        with open(os.path.join(self.outside, "secret.txt"), "w") as f:
            f.write(SECRET + "\n")
        os.symlink("/etc", os.path.join(self.root, "etc-link"))
        os.symlink(os.path.join(self.outside, "secret.txt"), os.path.join(self.root, "secret-link.txt"))
        os.symlink(self.outside, os.path.join(self.root, "outside-dir"))
        # A relative symlink that climbs out of the root.
        os.symlink("../outside/secret.txt", os.path.join(self.root, "rel-secret-link.txt"))

    def put(self, rel, data):
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        self.files[rel] = data

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


class CurlResult:
    def __init__(self, rc, status, headers, body, stderr, all_headers):
        self.rc = rc
        self.status = status
        self.headers = headers  # last response: {lower-case name: [values]}
        self.body = body
        self.stderr = stderr
        self.all_headers = all_headers  # list of (status, headers) for every response seen

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[-1] if v else None

    def __repr__(self):
        return "CurlResult(rc=%r, status=%r, headers=%r, body=%r..., stderr=%r)" % (
            self.rc, self.status, self.headers, self.body[:200], self.stderr[-500:])


def parse_header_blocks(text):
    """Parses curl -D output (possibly several responses) into [(status, {name: [values]})]."""
    blocks = []
    cur = None
    for line in text.split("\r\n"):
        if line.startswith("HTTP/"):
            parts = line.split(" ", 2)
            cur = (int(parts[1]), {})
            blocks.append(cur)
        elif line and cur is not None and ":" in line:
            k, v = line.split(":", 1)
            cur[1].setdefault(k.strip().lower(), []).append(v.strip())
    return blocks


def _read(path):
    if not os.path.exists(path):
        return b""
    with open(path, "rb") as f:
        return f.read()


def curl(*args, timeout=20):
    """Runs curl with args (URLs included); returns a CurlResult for the last response."""
    exe = need_curl()
    tmp = tempfile.mkdtemp(prefix="uvws-it-curl-")
    try:
        hdr = os.path.join(tmp, "headers")
        body = os.path.join(tmp, "body")
        cmd = [exe, "-sS", "--max-time", str(timeout - 5), "--noproxy", "*",
               "-D", hdr, "-o", body] + list(args)
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        htext = _read(hdr).decode("latin-1")
        data = _read(body)
        if ("-I" in args or "--head" in args) and data.startswith(htext.encode("latin-1")):
            # curl -I writes the headers to the output too: what follows them would be a body.
            data = data[len(htext):]
        blocks = parse_header_blocks(htext)
        status, headers = blocks[-1] if blocks else (None, {})
        return CurlResult(p.returncode, status, headers, data, p.stderr.decode("utf-8", "replace"), blocks)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def curl_verbose(*args, timeout=20):
    """Runs curl -v (bodies to /dev/null); returns (returncode, stderr text, stdout text)."""
    exe = need_curl()
    cmd = [exe, "-sS", "-v", "--max-time", str(timeout - 5), "--noproxy", "*"] + list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stderr.decode("utf-8", "replace"), p.stdout.decode("utf-8", "replace")


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # {lower-case name: [values]}
        self.body = body

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[-1] if v else None

    def __repr__(self):
        return "Response(%s %d %r, headers=%r, body=%r)" % (
            self.version, self.status, self.reason, self.headers, self.body[:200])


class RawConn:
    """A raw TCP connection to the server with a buffered HTTP/1.1 response reader."""

    def __init__(self, port, host="127.0.0.1", timeout=SOCK_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def send_tolerant(self, data):
        """Sends; tolerates the server having closed already (EPIPE / ECONNRESET)."""
        try:
            self.send(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed while reading a line; have %r" % self.buf[:200])
        i = self.buf.index(b"\r\n")
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed with %d of %d body bytes" % (len(self.buf), n))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_response(self, head=False):
        """Reads one response. head=True: the request was HEAD (no body follows)."""
        line = self._read_line().decode("latin-1")
        parts = line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError("bad status line %r" % line)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = {}
        while True:
            h = self._read_line().decode("latin-1")
            if h == "":
                break
            if ":" not in h:
                raise AssertionError("bad header line %r" % h)
            k, v = h.split(":", 1)
            headers.setdefault(k.strip().lower(), []).append(v.strip())
        body = b""
        if head or status in (204, 304) or 100 <= status < 200:
            pass
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"][-1]))
        elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
            raise AssertionError("chunked responses are not expected from uvws")
        else:
            while self._fill():
                pass
            body = bytes(self.buf)
            self.buf = bytearray()
        return Response(version, status, reason, headers, body)

    def closed_by_server(self, timeout=5.0):
        """True if the server closes the connection (EOF or RST) within timeout with no further bytes."""
        self.sock.settimeout(timeout)
        try:
            while not self.eof:
                if not self._fill():
                    break
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(SOCK_TIMEOUT)
        return self.eof

    def read_all(self, timeout=5.0):
        """Reads until EOF; returns every byte left."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        try:
            while time.monotonic() < deadline and self._fill():
                pass
        except socket.timeout:
            pass
        data = bytes(self.buf)
        self.buf = bytearray()
        return data


def raw_request(port, data, head=False):
    """One request on a fresh connection; returns (Response, RawConn) (caller closes)."""
    c = RawConn(port)
    try:
        c.send_tolerant(data)
        return c.read_response(head=head), c
    except BaseException:
        c.close()
        raise


class ServerTestCase:
    """Mixin: a class-wide uvws server on a WebRoot; tearDownClass checks it is alive, then exits 0."""
    server_args = ()

    @classmethod
    def setUpClass(cls):
        need_curl()
        cls.webroot = WebRoot()
        cls.srv = UvwsServer(*cls.server_args, web=cls.webroot.root).start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        try:
            alive = cls.srv.alive()
            log = cls.srv.log_text()
            cls.srv.stop()  # raises unless exit 0 within 10 s of SIGTERM
            if not alive:
                raise AssertionError("uvws died during the tests:\n" + log)
        finally:
            cls.webroot.cleanup()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)
