#!/usr/bin/python3
"""Integration: uvws over TLS (--tls-cert/--tls-key) with clients nobody here wrote:
Python's websockets, curl and openssl s_client, against a CA made by the test (tls_util.Pki).

Four servers: an EC P-256 and an RSA 2048 certificate signed by the root directly, and the same
two key types signed by an intermediate CA and served as a chain file (leaf + intermediate).
Clients trust only the root, so the chain servers work only if the chain is sent.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/tls_clients_test.py -v
"""
import os
import re
import shutil
import ssl
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tls_util import (Pki, UvwsServer, curl, linked_mbedtls_version, pem_fingerprint,  # noqa: E402
                      s_client, WssClient)
from uvwsproc import uvws_bin  # noqa: E402
from wsimport import need_websockets, websockets  # noqa: E402
from aiohelp import runner, stepper  # noqa: E402

STEP = 10.0
MiB = 1024 * 1024
INDEX = b"<!doctype html><title>uvws tls</title><p>over https</p>\n"

# Suites the server must accept (ECDHE key exchange, AEAD), by certificate key type
# (OpenSSL names), and suites it must refuse: RSA key exchange, CBC, DHE, SHA-1 MACs.
GOOD_SUITES = {
    "ec": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
           "ECDHE-ECDSA-CHACHA20-POLY1305"],
    "rsa": ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-CHACHA20-POLY1305"],
}
BAD_SUITES = {
    "ec": ["AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
           "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"],
    "rsa": ["AES128-SHA", "AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384",
            "AES128-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES128-SHA256",
            "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-CHACHA20-POLY1305"],
}
FAILED_RE = re.compile(r"tls 127\.0\.0\.1:\d+: handshake failed: ")
SUITE_RE = re.compile(r"^ECDHE-(ECDSA|RSA)-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)$")


step = stepper(STEP)
run = runner(60.0)


class Config:
    def __init__(self, name, kind, cert, key, chained):
        self.name, self.kind, self.cert, self.key, self.chained = name, kind, cert, key, chained
        self.srv = None


class TlsClientsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        cls.web = tempfile.mkdtemp(prefix="uvws-it-tls-web-")
        with open(os.path.join(cls.web, "index.html"), "wb") as f:
            f.write(INDEX)
        cls.big = os.urandom(3 * MiB + 17)
        with open(os.path.join(cls.web, "big.bin"), "wb") as f:
            f.write(cls.big)
        p = cls.pki
        cls.configs = [
            Config("ec", "ec", p.ec_cert, p.ec_key, False),
            Config("rsa", "rsa", p.rsa_cert, p.rsa_key, False),
            Config("ec-chain", "ec", p.ec_chain, p.ec_int_key, True),
            Config("rsa-chain", "rsa", p.rsa_chain, p.rsa_int_key, True),
        ]
        try:
            for c in cls.configs:
                c.srv = UvwsServer("--tls-cert", c.cert, "--tls-key", c.key, "--tls-port", "0",
                                   web=cls.web).start()
        except Exception:
            cls._stop_all()
            raise

    @classmethod
    def _stop_all(cls):
        problems = []
        for c in cls.configs:
            if c.srv is not None:
                try:
                    c.srv.stop()  # SIGTERM, exit 0 within 10 s (LeakSanitizer under ASan)
                except AssertionError as e:
                    problems.append("%s: %s" % (c.name, e))
        return problems

    @classmethod
    def tearDownClass(cls):
        problems = cls._stop_all()
        cls.pki.cleanup()
        shutil.rmtree(cls.web, ignore_errors=True)
        if problems:
            raise AssertionError("\n".join(problems))

    def each(self):
        """The configurations, each checked alive; use as `for c in self.each(): with self.subTest`."""
        for c in self.configs:
            self.assertTrue(c.srv.alive(), "uvws (%s) died:\n%s" % (c.name, c.srv.log_text()))
        return self.configs

    # ---- the certificate the server presents ----

    def test_startup_logs_the_leaf_fingerprint(self):
        for c in self.each():
            with self.subTest(cert=c.name):
                self.assertEqual(c.srv.tls_fingerprint, pem_fingerprint(c.cert))
                self.assertIsNotNone(c.srv.port, "the plain listener is there too (no --tls-only)")

    def test_s_client_verifies_chain_and_negotiates_tls12_aead_alpn(self):
        major = linked_mbedtls_version(uvws_bin())[0]
        for c in self.each():
            with self.subTest(cert=c.name):
                r = s_client(c.srv.tls_port, "-CAfile", self.pki.ca, "-verify_return_error",
                             "-verify_hostname", "localhost", "-alpn", "http/1.1", "-showcerts")
                self.assertTrue(r.connected, r)
                self.assertIn("Verify return code: 0 (ok)", r.out, r)
                self.assertEqual(r.field("ALPN protocol"), "http/1.1", r)
                proto = r.field("Protocol")
                if major < 3:
                    self.assertEqual(proto, "TLSv1.2", r)
                self.assertIn(proto, ("TLSv1.2", "TLSv1.3"), r)
                cipher = r.field("Cipher")
                if proto == "TLSv1.2":
                    self.assertRegex(cipher, SUITE_RE, r)
                    self.assertIn("-ECDSA-" if c.kind == "ec" else "-RSA-", cipher, r)
                else:
                    self.assertIn(cipher, ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                           "TLS_CHACHA20_POLY1305_SHA256"), r)
                # -showcerts: the chain file's two certificates, or the lone leaf
                ncerts = r.out.count("-----BEGIN CERTIFICATE-----")
                self.assertEqual(ncerts, 2 if c.chained else 1, r)
                self.assertEqual("depth=2" in r.text, c.chained, r)
                # ALPN with a preference list containing http/1.1 picks it
                r = s_client(c.srv.tls_port, "-CAfile", self.pki.ca, "-alpn", "h2,http/1.1")
                self.assertTrue(r.connected, r)
                self.assertEqual(r.field("ALPN protocol"), "http/1.1", r)

    def test_unknown_ca_is_rejected_by_clients(self):
        """The checks above are real: without the test CA a verifying client refuses."""
        for c in self.each():
            with self.subTest(cert=c.name):
                r = s_client(c.srv.tls_port, "-verify_return_error")
                self.assertFalse(r.connected, r)
                rc, _, err = curl("https://localhost:%d/" % c.srv.tls_port,
                                  "--resolve", "localhost:%d:127.0.0.1" % c.srv.tls_port)
                self.assertEqual(rc, 60, "curl without --cacert: rc %d %s" % (rc, err))

    # ---- protocol versions and cipher suites ----

    def _refused(self, c, *args):
        """s_client ARGS must fail, and the server must have logged why (the ClientHello
        reached it and it said no, rather than OpenSSL refusing to offer it)."""
        before = len(FAILED_RE.findall(c.srv.log_text()))
        r = s_client(c.srv.tls_port, *args)
        self.assertFalse(r.connected, "s_client %s should have been refused:\n%r" % (args, r))
        t0 = time.monotonic()
        while len(FAILED_RE.findall(c.srv.log_text())) <= before:
            if time.monotonic() - t0 > 5.0:
                self.fail("no 'tls PEER: handshake failed' log line for s_client %s:\n%s"
                          % (args, c.srv.log_text()[-3000:]))
            time.sleep(0.02)
        return r

    def test_old_protocol_versions_refused(self):
        major = linked_mbedtls_version(uvws_bin())[0]
        for c in self.each():
            with self.subTest(cert=c.name):
                # SECLEVEL=0: OpenSSL 3 would not even offer TLS 1.0/1.1 otherwise
                self._refused(c, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
                self._refused(c, "-tls1", "-cipher", "DEFAULT@SECLEVEL=0")
                r = s_client(c.srv.tls_port, "-tls1_2", "-CAfile", self.pki.ca)
                self.assertTrue(r.connected, r)
                self.assertEqual(r.field("Protocol"), "TLSv1.2", r)
                if major < 3:
                    # mbedTLS 2.28 has no TLS 1.3: a 1.3-only client must be refused
                    self._refused(c, "-tls1_3")
                else:
                    r = s_client(c.srv.tls_port, "-tls1_3", "-CAfile", self.pki.ca)
                    if r.connected:
                        self.assertEqual(r.field("Protocol"), "TLSv1.3", r)

    def test_only_ecdhe_aead_suites(self):
        for c in self.each():
            with self.subTest(cert=c.name):
                for suite in GOOD_SUITES[c.kind]:
                    r = s_client(c.srv.tls_port, "-tls1_2", "-cipher", suite, "-CAfile", self.pki.ca)
                    self.assertTrue(r.connected, "%s should be accepted:\n%r" % (suite, r))
                    self.assertEqual(r.field("Cipher"), suite, r)
                for suite in BAD_SUITES[c.kind]:
                    self._refused(c, "-tls1_2", "-cipher", suite)

    def test_session_resumption_by_ticket(self):
        for c in self.each():
            with self.subTest(cert=c.name):
                sess = os.path.join(self.pki.dir, "sess-%s.pem" % c.name)
                r = s_client(c.srv.tls_port, "-CAfile", self.pki.ca, "-sess_out", sess)
                self.assertTrue(r.connected, r)
                self.assertRegex(r.out, r"(?m)^New, TLSv1\.2", r)
                self.assertIn("TLS session ticket lifetime hint", r.out, r)
                for i in range(2):
                    r = s_client(c.srv.tls_port, "-CAfile", self.pki.ca, "-sess_in", sess)
                    self.assertRegex(r.out, r"(?m)^Reused, TLSv1\.2", "resumption %d:\n%r" % (i, r))
                # Without the ticket extension the server has nothing to resume from (no cache):
                r = s_client(c.srv.tls_port, "-CAfile", self.pki.ca, "-sess_in", sess, "-no_ticket")
                self.assertRegex(r.out, r"(?m)^New, TLSv1\.2", r)

    # ---- https with curl ----

    def test_curl_static_files(self):
        for c in self.each():
            with self.subTest(cert=c.name):
                port = c.srv.tls_port
                base = "https://localhost:%d" % port
                common = ["--cacert", self.pki.ca, "--resolve", "localhost:%d:127.0.0.1" % port]
                rc, out, err = curl(*common, "-D", "-", base + "/")
                self.assertEqual(rc, 0, err)
                head, _, body = out.partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
                self.assertEqual(body, INDEX)
                self.assertIn(b"content-type: text/html", head.lower())
                # by IP address (SAN IP:127.0.0.1)
                rc, out, err = curl("--cacert", self.pki.ca, "https://127.0.0.1:%d/index.html" % port)
                self.assertEqual((rc, out), (0, INDEX), err)
                # HEAD: headers only
                rc, out, err = curl(*common, "-I", base + "/big.bin")
                self.assertEqual(rc, 0, err)
                self.assertTrue(out.startswith(b"HTTP/1.1 200"), out)
                self.assertIn(b"content-length: %d" % len(self.big), out.lower())
                self.assertNotIn(b"\r\n\r\n" + self.big[:16], out)
                # 404
                rc, out, err = curl(*common, "-o", "/dev/null", "-w", "%{http_code}", base + "/missing.txt")
                self.assertEqual((rc, out), (0, b"404"), err)
                # a 3 MiB file arrives intact
                rc, out, err = curl(*common, base + "/big.bin")
                self.assertEqual(rc, 0, err)
                self.assertTrue(out == self.big, "big.bin: %d bytes, expected %d" % (len(out), len(self.big)))
                # keep-alive: four requests, one connection (and one TLS handshake)
                rc, out, err = curl(*common, "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                                    "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
                                    base + "/", base + "/missing.txt", base + "/big.bin",
                                    base + "/index.html")
                self.assertEqual(rc, 0, err)
                self.assertEqual(out.decode().split("\n"), ["200 1", "404 0", "200 0", "200 0", ""], out)

    def test_metrics_over_https(self):
        for c in self.each():
            with self.subTest(cert=c.name):
                port = c.srv.tls_port
                rc, out, err = curl("--cacert", self.pki.ca, "https://127.0.0.1:%d/metrics" % port)
                self.assertEqual(rc, 0, err)
                self.assertIn(b"uvws_", out)
                rc, out, err = curl("--cacert", self.pki.ca, "-o", "/dev/null", "-w", "%{http_code}",
                                    "https://127.0.0.1:%d/healthz" % port)
                self.assertEqual((rc, out), (0, b"200"), err)

    # ---- WebSockets with Python's websockets ----

    def test_python_websockets_echo(self):
        need_websockets(self)
        ctx = self.pki.client_context()

        async def session(url, compression):
            async with websockets.connect(url, ssl=ctx, open_timeout=STEP, close_timeout=STEP,
                                          ping_interval=None, max_size=None,
                                          compression=compression) as ws:
                exts = ws.response_headers.get("Sec-WebSocket-Extensions")
                if compression:
                    self.assertIsNotNone(exts)
                    self.assertIn("permessage-deflate", exts)
                else:
                    self.assertIsNone(exts)
                for msg in ("hello over wss", "é€😀 unicode", b"\x00\xff" * 100,
                            os.urandom(MiB), "x" * MiB):
                    await step(ws.send(msg))
                    got = await step(ws.recv())
                    self.assertEqual(type(got), type(msg))
                    self.assertTrue(got == msg, "echo of %d bytes differs" % len(msg))
                pong = await step(ws.ping(b"tls-ping"))
                await step(pong)
                await step(ws.close(1000, "bye"))
                self.assertEqual(ws.close_code, 1000)

        for c in self.each():
            with self.subTest(cert=c.name):
                for host in ("localhost", "127.0.0.1"):
                    for compression in ("deflate", None):
                        url = "wss://%s:%d/echo" % (host, c.srv.tls_port)
                        run(session(url, compression))

    def test_python_websockets_refuses_unknown_ca(self):
        need_websockets(self)
        ctx = ssl.create_default_context()  # the system store: our test CA is not in it

        async def attempt(url):
            async with websockets.connect(url, ssl=ctx, open_timeout=STEP):
                pass

        for c in self.each():
            with self.subTest(cert=c.name):
                with self.assertRaises(ssl.SSLCertVerificationError):
                    run(attempt("wss://localhost:%d/echo" % c.srv.tls_port))

    def test_plain_and_tls_listeners_serve_the_same_routes(self):
        for c in self.each():
            with self.subTest(cert=c.name):
                ws = WssClient(c.srv.tls_port, ctx=self.pki.client_context())
                try:
                    ws.check(70000)
                    self.assertEqual(ws.fingerprint, pem_fingerprint(c.cert))
                finally:
                    ws.close()
                rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", c.srv.url("http", "/"))
                self.assertEqual((rc, out), (0, b"200"), err)

    def test_no_sanitizer_reports(self):
        for c in self.each():
            with self.subTest(cert=c.name):
                for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                    self.assertNotIn(mark, c.srv.log_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
