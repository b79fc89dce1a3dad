#!/usr/bin/python3
"""Integration: a certificate whose private key is not the one in --tls-key is a bad
configuration, at startup and on SIGHUP, like any other unusable file.

The usual way to get there is a renewal that replaced the certificate but not yet the key (or
the other way round). Accepting such a pair means every later handshake fails ("bad signature"
at the client), so: at startup uvws must refuse to start (exit status 1, a log line naming the
files), and a reload must keep the current certificate and log
"TLS reload failed, keeping the current certificate: ...".

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/tls_keypair_test.py -v
"""
import os
import shutil
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tls_util import (Pki, UvwsServer, WssClient, pem_fingerprint, peer_fingerprint,  # noqa: E402
                      read_text, replace_file, s_client)

FAILED = "TLS reload failed, keeping the current certificate: "


class TlsKeyPairTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()

    @classmethod
    def tearDownClass(cls):
        cls.pki.cleanup()

    def test_startup_refuses_a_key_that_does_not_match(self):
        p = self.pki
        for cert, key, what in ((p.ec_cert, p.ec_int_key, "another EC P-256 key"),
                                (p.ec_cert, p.rsa_key, "an RSA key for an EC certificate"),
                                (p.rsa_cert, p.rsa_int_key, "another RSA key"),
                                (p.ec_chain, p.ec_key, "chain file with the wrong leaf key")):
            with self.subTest(mismatch=what):
                srv = UvwsServer("--tls-cert", cert, "--tls-key", key, "--tls-port", "0",
                                 expect_exit=None)
                try:
                    srv.start()
                except RuntimeError:
                    pass  # it died before listening: what we want; the status is checked below
                else:
                    log = srv.log_text()
                    srv.stop()
                    self.fail("uvws started with %s (certificate %s, key %s) instead of refusing:\n%s"
                              % (what, os.path.basename(cert), os.path.basename(key), log))
                self.assertEqual(srv.proc.returncode, 1, srv.log_text())
                self.assertNotIn("listening on", srv.log_text())

    def test_reload_refuses_a_key_that_does_not_match(self):
        p = self.pki
        cert = p.path("server.pem")
        key = p.path("server.key")
        shutil.copy(p.ec_cert, cert)
        shutil.copy(p.ec_key, key)
        fp = pem_fingerprint(p.ec_cert)
        with UvwsServer("--tls-cert", cert, "--tls-key", key, "--tls-port", "0") as srv:
            ws = WssClient(srv.tls_port, ctx=p.client_context())
            try:
                for what, new_cert, new_key in (
                        ("new certificate, old key", p.rsa_cert, p.ec_key),
                        ("old certificate, new key", p.ec_cert, p.ec_int_key),
                        ("old certificate, RSA key", p.ec_cert, p.rsa_key)):
                    with self.subTest(mismatch=what):
                        replace_file(cert, read_text(new_cert))
                        replace_file(key, read_text(new_key))
                        n = srv.log_text().count(FAILED)
                        srv.proc.send_signal(signal.SIGHUP)
                        t0 = time.monotonic()
                        while srv.log_text().count(FAILED) <= n:
                            if time.monotonic() - t0 > 5 or "TLS reload: certificate" in \
                                    srv.log_text().splitlines()[-1]:
                                break
                            time.sleep(0.02)
                        time.sleep(0.1)
                        self.assertGreater(srv.log_text().count(FAILED), n,
                                           "reload with %s was not refused:\n%s"
                                           % (what, srv.log_text()[-2000:]))
                        self.assertEqual(peer_fingerprint(srv.tls_port), fp)
                        r = s_client(srv.tls_port, "-CAfile", p.ca, "-verify_return_error")
                        self.assertTrue(r.connected, "new handshakes fail after the reload:\n%r" % r)
                        ws.check(1000)
                    # back to the good pair (if the reload was wrongly taken)
                    replace_file(cert, read_text(p.ec_cert))
                    replace_file(key, read_text(p.ec_key))
                    srv.proc.send_signal(signal.SIGHUP)
                    srv.wait_log(r"TLS reload: certificate SHA-256 fingerprint|" + FAILED)
                    time.sleep(0.2)
            finally:
                ws.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
