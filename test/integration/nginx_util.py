#!/usr/bin/python3
"""Helpers for nginx_test.py: a real nginx (Debian's /usr/sbin/nginx) run from a temporary
prefix on loopback, in front of uvws.

    cert, key = self_signed_cert(tmpdir)           # openssl CLI, SAN IP:127.0.0.1
    ng = Nginx(tmpdir, [Site("plain", upstream="http://127.0.0.1:%d" % port),
                        Site("tls", upstream=..., tls=True)], cert=cert, key=key)
    ng.start(); ng.port("plain"); ng.stop()

Everything nginx writes (pid, logs, temp folders) stays in the temporary folder; it listens on
127.0.0.1 ports found free by binding port 0. `user root;` only when running as root (the
workers must read the root-owned 0700 temporary folder). stop() sends SIGQUIT to the master
process this helper started and expects it to exit 0. A missing nginx or openssl raises
AssertionError: the test FAILS with a clear message, never skips.
"""
import os
import shutil
import signal
import socket
import subprocess
import time

NGINX = "/usr/sbin/nginx"
TIMEOUT = 10.0


def need_nginx():
    if not (os.path.isfile(NGINX) and os.access(NGINX, os.X_OK)):
        raise AssertionError("%s is not installed: these tests need Debian's nginx "
                             "(apt-get install nginx; deps/install.sh --test)" % NGINX)
    return NGINX


def need_tool(name):
    path = shutil.which(name)
    if path is None:
        raise AssertionError("%s is not installed (deps/install.sh --test installs it)" % name)
    return path


def run(cmd, timeout=30, check=True):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode,
                                                         p.stdout.decode("utf-8", "replace"),
                                                         p.stderr.decode("utf-8", "replace")))
    return p


def free_port():
    """A loopback TCP port free right now (bind to 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def self_signed_cert(folder):
    """An EC P-256 self-signed certificate for 127.0.0.1/localhost, made with the openssl CLI."""
    openssl = need_tool("openssl")
    cert, key = os.path.join(folder, "nginx.pem"), os.path.join(folder, "nginx.key")
    run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
    return cert, key


class Site:
    """One nginx server block: listens on a free 127.0.0.1 port (TLS if tls) and proxies
    everything to `upstream` (http://... or https://...) with the WebSocket upgrade headers."""

    def __init__(self, name, upstream, tls=False):
        self.name, self.upstream, self.tls = name, upstream, tls
        self.port = None

    def block(self, cert, key):
        lines = ["  server {",
                 "    listen 127.0.0.1:%d%s;" % (self.port, " ssl" if self.tls else ""),
                 "    server_name localhost;"]
        if self.tls:
            lines += ["    ssl_certificate %s;" % cert,
                      "    ssl_certificate_key %s;" % key,
                      "    ssl_protocols TLSv1.2 TLSv1.3;"]
        lines += ["    location / {",
                  "      proxy_pass %s;" % self.upstream,
                  "      proxy_http_version 1.1;",
                  "      proxy_set_header Upgrade $http_upgrade;",
                  "      proxy_set_header Connection $connection_upgrade;",
                  "      proxy_set_header Host $host;",
                  "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                  "      proxy_read_timeout 120s;"]
        if self.upstream.startswith("https://"):
            lines += ["      proxy_ssl_verify off;"]
        lines += ["    }", "  }"]
        return "\n".join(lines)


class Nginx:
    def __init__(self, folder, sites, cert=None, key=None):
        self.folder = folder
        self.sites = {s.name: s for s in sites}
        self.cert, self.key = cert, key
        self.conf = os.path.join(folder, "nginx.conf")
        self.error_log = os.path.join(folder, "error.log")
        self.access_log = os.path.join(folder, "access.log")
        self.pid_file = os.path.join(folder, "nginx.pid")
        self.proc = None
        self._out = os.path.join(folder, "nginx.stdout")

    def port(self, name):
        return self.sites[name].port

    def config_text(self):
        d = self.folder
        user = "user root;\n" if os.geteuid() == 0 else ""
        return ("""# written by test/integration/nginx_util.py
%(user)sdaemon off;
master_process on;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections 512; }
http {
  access_log %(d)s/access.log;
  client_body_temp_path %(d)s/client_body_temp;
  proxy_temp_path %(d)s/proxy_temp;
  fastcgi_temp_path %(d)s/fastcgi_temp;
  uwsgi_temp_path %(d)s/uwsgi_temp;
  scgi_temp_path %(d)s/scgi_temp;
  default_type application/octet-stream;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
%(blocks)s
}
""" % {"user": user, "d": d,
       "blocks": "\n".join(s.block(self.cert, self.key) for s in self.sites.values())})

    def log_text(self):
        out = []
        for f in (self._out, self.error_log):
            try:
                with open(f, "r", errors="replace") as fh:
                    out.append("--- %s\n%s" % (os.path.basename(f), fh.read()))
            except OSError:
                pass
        return "\n".join(out)

    def _listening(self):
        for s in self.sites.values():
            try:
                socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
            except OSError:
                return False
        return True

    def start(self, attempts=3):
        nginx = need_nginx()
        last = ""
        for _ in range(attempts):
            for s in self.sites.values():
                s.port = free_port()
            with open(self.conf, "w") as f:
                f.write(self.config_text())
            # -e: the error log used before the configuration is read (else /var/log/nginx)
            base = [nginx, "-p", self.folder + "/", "-c", self.conf, "-e", self.error_log]
            t = run(base + ["-t"], check=False)
            if t.returncode != 0:
                raise AssertionError("nginx -t rejects the test configuration:\n%s\n%s"
                                     % (t.stderr.decode("utf-8", "replace"), self.config_text()))
            out = open(self._out, "wb")
            self.proc = subprocess.Popen(base, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
            out.close()
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._listening():
                    return self
                time.sleep(0.05)
            last = self.log_text()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("nginx did not listen within %.0fs:\n%s" % (TIMEOUT, last))
            self.proc = None
            if "Address already in use" not in last:
                break
        raise AssertionError("nginx did not start:\n%s\n%s" % (last, self.config_text()))

    def stop(self):
        """SIGQUIT (graceful) to the master this helper started; must exit 0 within 10 s."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT)
            try:
                p.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
                raise AssertionError("nginx did not exit within %.0fs of SIGQUIT:\n%s"
                                     % (TIMEOUT, self.log_text()))
        if p.returncode != 0:
            raise AssertionError("nginx exited with %r:\n%s" % (p.returncode, self.log_text()))
        return p.returncode
