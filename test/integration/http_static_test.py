#!/usr/bin/python3
"""Integration: static files from the real uvws server, fetched with curl and raw sockets.

Run: UVWS_BIN=build/default/uvws /usr/bin/python3 test/integration/http_static_test.py -v
"""
import email.utils
import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from ithttp import (FIXED_MTIME, FIXED_MTIME_HTTP, INDEX_HTML, MIME_CASES, SECRET,  # noqa: E402
                    SUB_INDEX_HTML, RawConn, ServerTestCase, curl, curl_verbose)


class HttpStaticTest(ServerTestCase, unittest.TestCase):

    def assertCurlOk(self, r):
        self.assertEqual(r.rc, 0, "curl failed: %r" % r)

    def test_get_root_serves_index_html(self):
        r = curl(self.url("/"))
        self.assertCurlOk(r)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, INDEX_HTML)
        self.assertEqual(r.header("content-type"), "text/html; charset=utf-8")
        self.assertEqual(r.header("content-length"), str(len(INDEX_HTML)))

    def test_get_index_html_by_name(self):
        r = curl(self.url("/index.html"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, INDEX_HTML)

    def test_head_root(self):
        r = curl("-I", self.url("/"))
        self.assertCurlOk(r)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"", "HEAD must not return a body")
        self.assertEqual(r.header("content-length"), str(len(INDEX_HTML)))
        self.assertEqual(r.header("content-type"), "text/html; charset=utf-8")
        self.assertIsNotNone(r.header("last-modified"))

    def test_head_has_same_headers_as_get(self):
        g = curl(self.url("/notes.txt"))
        h = curl("-I", self.url("/notes.txt"))
        for name in ("content-type", "content-length", "last-modified"):
            self.assertEqual(h.header(name), g.header(name), name)
        self.assertEqual(h.body, b"")

    def test_head_sends_no_body_on_the_wire(self):
        # HEAD then GET pipelined: if HEAD carried a body the second status line would be garbage.
        with RawConn(self.port) as c:
            c.send("HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            h = c.read_response(head=True)
            self.assertEqual(h.status, 200)
            self.assertEqual(h.header("content-length"), str(5 * 1024 * 1024))
            g = c.read_response()
            self.assertEqual(g.status, 200)
            self.assertEqual(g.body, self.webroot.files["notes.txt"])

    def test_mime_types(self):
        for name, ctype in MIME_CASES:
            with self.subTest(name=name):
                r = curl(self.url("/" + name))
                self.assertCurlOk(r)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("content-type"), ctype)
                self.assertEqual(r.body, self.webroot.files[name])
                self.assertEqual(r.header("content-length"), str(len(self.webroot.files[name])))

    def test_content_length_always(self):
        for path in ("/", "/notes.txt", "/big.bin", "/sub/", "/missing-file"):
            with self.subTest(path=path):
                r = curl(self.url(path))
                self.assertIsNotNone(r.header("content-length"), "no Content-Length for %s" % path)
                self.assertEqual(int(r.header("content-length")), len(r.body))

    def test_subdirectory_with_index(self):
        r = curl(self.url("/sub/"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, SUB_INDEX_HTML)
        self.assertEqual(r.header("content-type"), "text/html; charset=utf-8")
        r = curl(self.url("/sub/inner.txt"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"inner file\n")

    def test_subdirectory_without_trailing_slash_redirects(self):
        for d in ("/sub", "/empty"):
            with self.subTest(dir=d):
                r = curl(self.url(d))
                self.assertEqual(r.status, 301)
                self.assertEqual(r.header("location"), d + "/")
        r = curl("-L", self.url("/sub"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, SUB_INDEX_HTML)

    def test_subdirectory_without_index_is_404(self):
        r = curl(self.url("/empty/"))
        self.assertEqual(r.status, 404)

    def test_query_string_ignored(self):
        r = curl(self.url("/notes.txt?v=1&x=%2e%2e/y"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.webroot.files["notes.txt"])
        r = curl(self.url("/?a=b"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, INDEX_HTML)

    def test_percent_encoded_name(self):
        r = curl(self.url("/with%20space.txt"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"a file name with a space\n")
        r = curl(self.url("/n%6Ftes.txt"))  # %6F = 'o'
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.webroot.files["notes.txt"])

    def test_big_file_byte_exact(self):
        r = curl(self.url("/big.bin"), timeout=60)
        self.assertCurlOk(r)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-length"), str(5 * 1024 * 1024))
        self.assertEqual(r.header("content-type"), "application/octet-stream")
        self.assertTrue(r.body == self.webroot.files["big.bin"], "5 MiB body differs (got %d bytes)" % len(r.body))

    def test_big_file_raw_slow_reader(self):
        # A client that reads slowly must still get every byte (server handles backpressure).
        with RawConn(self.port) as c:
            c.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(1.0)  # the socket buffers fill up long before 5 MiB: the server must wait
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body == self.webroot.files["big.bin"])
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.webroot.files["notes.txt"])

    def test_last_modified(self):
        r = curl(self.url("/fixed.txt"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("last-modified"), FIXED_MTIME_HTTP)
        # Any file: an IMF-fixdate matching the file's mtime.
        r = curl(self.url("/notes.txt"))
        lm = r.header("last-modified")
        self.assertRegex(lm, r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")
        mtime = int(os.stat(os.path.join(self.webroot.root, "notes.txt")).st_mtime)
        self.assertEqual(email.utils.parsedate_to_datetime(lm).timestamp(), mtime)

    def test_if_modified_since(self):
        later = email.utils.formatdate(FIXED_MTIME + 3600, usegmt=True)
        earlier = email.utils.formatdate(FIXED_MTIME - 3600, usegmt=True)
        for ims, expected in ((FIXED_MTIME_HTTP, 304), (later, 304), (earlier, 200)):
            with self.subTest(ims=ims):
                r = curl("-H", "If-Modified-Since: " + ims, self.url("/fixed.txt"))
                self.assertCurlOk(r)
                self.assertEqual(r.status, expected)
                if expected == 304:
                    self.assertEqual(r.body, b"")
                else:
                    self.assertEqual(r.body, b"fixed mtime\n")

    def test_if_modified_since_304_raw_has_no_body(self):
        # A 304 followed by a pipelined GET on the same connection: the 304 must carry no body.
        with RawConn(self.port) as c:
            c.send("GET /fixed.txt HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: %s\r\n\r\n"
                   "GET /fixed.txt HTTP/1.1\r\nHost: t\r\n\r\n" % FIXED_MTIME_HTTP)
            a = c.read_response()
            self.assertEqual(a.status, 304)
            b = c.read_response()
            self.assertEqual(b.status, 200)
            self.assertEqual(b.body, b"fixed mtime\n")

    def test_if_modified_since_invalid_date_ignored(self):
        # RFC 9110 13.1.3: a recipient MUST ignore an If-Modified-Since that is not a valid HTTP-date.
        r = curl("-H", "If-Modified-Since: not a date", self.url("/fixed.txt"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"fixed mtime\n")

    def test_keep_alive_curl_reuses_connection(self):
        rc, err, _ = curl_verbose("-o", "/dev/null", "-o", "/dev/null",
                                  self.url("/notes.txt"), self.url("/sub/"))
        self.assertEqual(rc, 0, err)
        self.assertIn("Re-using existing connection", err)
        self.assertEqual(err.count("< HTTP/1.1 200"), 2, err)

    def test_pipelining_in_order(self):
        with RawConn(self.port) as c:
            c.send("GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /data.json HTTP/1.1\r\nHost: t\r\n\r\n")
            a = c.read_response()
            b = c.read_response()
            self.assertEqual((a.status, b.status), (200, 200))
            self.assertEqual(a.body, self.webroot.files["notes.txt"])
            self.assertEqual(a.header("content-type"), "text/plain; charset=utf-8")
            self.assertEqual(b.body, self.webroot.files["data.json"])
            self.assertEqual(b.header("content-type"), "application/json")

    def test_pipelining_mixed(self):
        reqs = [("GET", "/style.css", 200), ("GET", "/nope.txt", 404), ("HEAD", "/pic.png", 200),
                ("GET", "/sub/", 200), ("GET", "/big.bin", 200), ("GET", "/", 200)]
        with RawConn(self.port) as c:
            c.send("".join("%s %s HTTP/1.1\r\nHost: t\r\n\r\n" % (m, p) for m, p, _ in reqs))
            for m, p, status in reqs:
                r = c.read_response(head=(m == "HEAD"))
                self.assertEqual(r.status, status, "%s %s" % (m, p))
                if status == 200 and m == "GET":
                    expected = self.webroot.files["sub/index.html" if p == "/sub/" else
                                                  "index.html" if p == "/" else p[1:]]
                    self.assertTrue(r.body == expected, "%s %s body" % (m, p))

    def test_pipelining_byte_by_byte(self):
        data = ("GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /app.js HTTP/1.1\r\nHost: t\r\n\r\n").encode()
        with RawConn(self.port) as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(data)):
                c.send(data[i:i + 1])
            a = c.read_response()
            b = c.read_response()
            self.assertEqual(a.body, self.webroot.files["notes.txt"])
            self.assertEqual(b.body, self.webroot.files["app.js"])

    def test_connection_close_closes(self):
        with RawConn(self.port) as c:
            c.send("GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.webroot.files["notes.txt"])
            self.assertTrue(c.closed_by_server(), "server kept the connection open after Connection: close")

    def test_http10_without_keep_alive_closes(self):
        with RawConn(self.port) as c:
            c.send("GET /notes.txt HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.webroot.files["notes.txt"])
            self.assertTrue(c.closed_by_server(), "server kept an HTTP/1.0 connection open")

    def test_keep_alive_stays_open_for_a_later_request(self):
        with RawConn(self.port) as c:
            c.send("GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            time.sleep(0.3)
            c.send("GET /data.json HTTP/1.1\r\nHost: t\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.webroot.files["data.json"])

    def test_concurrent_keep_alive_clients(self):
        import threading
        names = [n for n, _ in MIME_CASES] + ["sub/inner.txt", "fixed.txt"]
        errors = []

        def client(i):
            try:
                with RawConn(self.port) as c:
                    for r in range(30):
                        name = names[(i + r) % len(names)]
                        c.send("GET /%s HTTP/1.1\r\nHost: t\r\n\r\n" % name)
                        resp = c.read_response()
                        if resp.status != 200 or resp.body != self.webroot.files[name]:
                            errors.append("client %d request %d /%s: %r" % (i, r, name, resp))
                            return
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("client %d: %r" % (i, e))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertFalse(any(t.is_alive() for t in threads), "clients still running after 30 s")
        self.assertEqual(errors, [])

    def test_symlinks_out_of_root_not_served(self):
        for path in ("/secret-link.txt", "/rel-secret-link.txt", "/outside-dir/secret.txt",
                     "/etc-link/passwd", "/etc-link/hostname"):
            with self.subTest(path=path):
                r = curl(self.url(path))
                self.assertEqual(r.status, 404, "%s: %r" % (path, r))
                self.assertNotIn(SECRET.encode(), r.body)
                self.assertNotIn(b"root:", r.body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
