#!/usr/bin/python3
"""Integration: SIGHUP reloads --tls-cert/--tls-key.

The server's certificate files are replaced by a new certificate (new key, new serial, so a new
fingerprint) and the server gets SIGHUP: the log shows the new fingerprint, new connections see
the new certificate (Python ssl and openssl s_client -showcerts), and a wss:// connection opened
before keeps working. Then the files are replaced by broken ones (garbage, a missing file, an
empty key): each time the old certificate stays, the log says why, and new connections work.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/tls_reload_test.py -v
"""
import os
import re
import shutil
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tls_util import (Pki, UvwsServer, WssClient, curl, https_get, peer_fingerprint,  # noqa: E402
                      pem_fingerprint, read_text, replace_file, s_client)

RELOADED = "TLS reload: certificate SHA-256 fingerprint %s"
FAILED = "TLS reload failed, keeping the current certificate: "


def pem_certs(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)


class TlsReloadTest(unittest.TestCase):
    def setUp(self):
        self.pki = Pki()
        self.cert = self.pki.path("server.pem")
        self.key = self.pki.path("server.key")
        shutil.copy(self.pki.ec_cert, self.cert)
        shutil.copy(self.pki.ec_key, self.key)
        self.srv = UvwsServer("--tls-cert", self.cert, "--tls-key", self.key, "--tls-port", "0")
        self.srv.start()

    def tearDown(self):
        try:
            self.assertTrue(self.srv.alive(), "uvws died:\n" + self.srv.log_text())
            for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                self.assertNotIn(mark, self.srv.log_text())
        finally:
            try:
                self.srv.stop()  # SIGTERM, exit 0 (LeakSanitizer under ASan)
            finally:
                self.pki.cleanup()

    def hup(self, expect, timeout=10.0):
        """SIGHUP; waits for the n-th reload log line matching `expect` (a literal prefix)."""
        n = self.srv.log_text().count(expect)
        self.srv.proc.send_signal(signal.SIGHUP)
        t0 = time.monotonic()
        while self.srv.log_text().count(expect) <= n:
            self.assertTrue(self.srv.alive(), "uvws died on SIGHUP:\n" + self.srv.log_text())
            if time.monotonic() - t0 > timeout:
                self.fail("no log line %r within %.0f s of SIGHUP:\n%s"
                          % (expect, timeout, self.srv.log_text()))
            time.sleep(0.02)
        return [l for l in self.srv.log_text().splitlines() if expect in l][-1]

    def assert_serves(self, fingerprint, cert_pem_path):
        """A new connection sees `fingerprint`: Python ssl, s_client -showcerts, curl, wss."""
        port = self.srv.tls_port
        self.assertEqual(peer_fingerprint(port), fingerprint)
        r = s_client(port, "-showcerts", "-CAfile", self.pki.ca, "-verify_return_error")
        self.assertTrue(r.connected, r)
        self.assertEqual(pem_certs(r.out)[0].split(), pem_certs(read_text(cert_pem_path))[0].split(), r)
        rc, out, err = curl("--cacert", self.pki.ca, "https://127.0.0.1:%d/healthz" % port,
                            "-o", "/dev/null", "-w", "%{http_code}")
        self.assertEqual((rc, out), (0, b"200"), err)
        ws = WssClient(port, ctx=self.pki.client_context())
        try:
            self.assertEqual(ws.fingerprint, fingerprint)
            ws.check(5000)
        finally:
            ws.close()

    def test_reload_new_certificate_then_broken_files(self):
        fp1 = pem_fingerprint(self.cert)
        self.assertEqual(self.srv.tls_fingerprint, fp1)
        self.assert_serves(fp1, self.pki.ec_cert)
        old = WssClient(self.srv.tls_port, ctx=self.pki.client_context())
        try:
            old.check(20000)
            self.assertEqual(old.fingerprint, fp1)

            # 1. a new certificate and key (RSA this time): different serial and fingerprint
            new_key = self.pki.new_key("next.key", "rsa")
            new_cert = self.pki.leaf("next", new_key, "rsa")
            fp2 = pem_fingerprint(new_cert)
            self.assertNotEqual(fp1, fp2)
            replace_file(self.cert, read_text(new_cert))
            replace_file(self.key, read_text(new_key))
            line = self.hup("TLS reload: certificate SHA-256 fingerprint")
            self.assertIn(RELOADED % fp2, line)
            self.assert_serves(fp2, new_cert)
            old.check(20000)  # opened under the old certificate: still fine
            mid = WssClient(self.srv.tls_port, ctx=self.pki.client_context())
            try:
                self.assertEqual(mid.fingerprint, fp2)
                mid.check(3000)

                # 2. broken files: each reload fails, the current certificate stays
                for what, cert, key in (
                        ("garbage certificate", "this is not a certificate\n", read_text(new_key)),
                        ("truncated certificate", read_text(new_cert)[:200], read_text(new_key)),
                        ("empty key", read_text(new_cert), ""),
                        ("garbage key", read_text(new_cert), "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                                             "-----END PRIVATE KEY-----\n"),
                        ("key instead of certificate", read_text(new_key), read_text(new_key))):
                    with self.subTest(broken=what):
                        replace_file(self.cert, cert)
                        replace_file(self.key, key)
                        line = self.hup(FAILED)
                        self.assertRegex(line, r"TLS reload failed, keeping the current certificate: \S")
                        self.assertEqual(peer_fingerprint(self.srv.tls_port), fp2)
                        status, _, body = https_get(self.srv.tls_port, "/healthz")
                        self.assertEqual(status, 200, body)
                        old.check(1000)
                        mid.check(1000)
                # a missing file
                os.unlink(self.cert)
                line = self.hup(FAILED)
                self.assertIn(self.cert, line)
                self.assert_serves(fp2, new_cert)
                old.check(1000)
                mid.check(1000)

                # 3. fixed files again (a chain this time): the reload succeeds
                replace_file(self.cert, read_text(self.pki.ec_chain))
                replace_file(self.key, read_text(self.pki.ec_int_key))
                fp3 = pem_fingerprint(self.pki.ec_chain)
                line = self.hup("TLS reload: certificate SHA-256 fingerprint")
                self.assertIn(RELOADED % fp3, line)
                self.assert_serves(fp3, self.pki.ec_chain)
                r = s_client(self.srv.tls_port, "-showcerts", "-CAfile", self.pki.ca)
                self.assertEqual(len(pem_certs(r.out)), 2, r)
                old.check(20000)
                mid.check(20000)
            finally:
                mid.close()
        finally:
            old.close()
        # /metrics over https still answers
        status, _, body = https_get(self.srv.tls_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"uvws_", body)

    def test_many_reloads_with_traffic(self):
        """Twenty reloads alternating two certificates while a connection echoes:
        every reload is logged, nothing leaks (LeakSanitizer checks at exit)."""
        certs = [(self.pki.ec_cert, self.pki.ec_key), (self.pki.rsa_cert, self.pki.rsa_key)]
        ws = WssClient(self.srv.tls_port, ctx=self.pki.client_context())
        try:
            for i in range(20):
                cert, key = certs[(i + 1) % 2]
                replace_file(self.cert, read_text(cert))
                replace_file(self.key, read_text(key))
                line = self.hup("TLS reload: certificate SHA-256 fingerprint")
                self.assertIn(RELOADED % pem_fingerprint(cert), line)
                self.assertEqual(peer_fingerprint(self.srv.tls_port), pem_fingerprint(cert))
                ws.check(2000)
        finally:
            ws.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
