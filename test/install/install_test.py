"""The installed tree works for users: cmake --install into a temporary
prefix, then build examples/echo.c against it with pkg-config and with
find_package(uvws), run both and echo through them; the installed uvws
finds its web client; the shared library exports only uvws_* symbols; the
man page documents every flag --help lists; examples/threads runs on its own
threads and stops on SIGTERM; examples/embed runs its timer,
its TCP service and uvws on one loop.

Env: UVWS_BUILD_DIR (the build tree to install from), UVWS_SOURCE_DIR."""
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import websockets

BUILD = os.environ["UVWS_BUILD_DIR"]
SRC = os.environ["UVWS_SOURCE_DIR"]
# A sanitizer build installs instrumented libraries: programs built against
# them need the same runtime.
SAN = ["-fsanitize=address,undefined"] if os.environ.get("UVWS_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE") else []


def run(cmd, env=None, cwd=None, timeout=300):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, text=True)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout[-4000:]))
    return p.stdout


def start(cmd, pattern, env=None):
    """Starts a server; returns (proc, match of `pattern` in its output)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return proc, m
    proc.kill()
    proc.wait()
    raise AssertionError("no %r from %s:\n%s" % (pattern, cmd, "".join(seen)))


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


async def echo_once(url, msg):
    async with websockets.connect(url, open_timeout=5, close_timeout=5) as ws:
        await ws.send(msg)
        return await asyncio.wait_for(ws.recv(), 5)


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="uvws-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        run(["cmake", "--install", BUILD, "--prefix", cls.prefix])
        cls.libdir = os.path.join(cls.prefix, "lib")
        if not os.path.isdir(os.path.join(cls.libdir, "pkgconfig")):
            cands = [d for d in os.listdir(cls.prefix) if d.startswith("lib")]
            cls.libdir = os.path.join(cls.prefix, sorted(cands)[-1])
        cls.env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(cls.libdir, "pkgconfig"),
                       LD_LIBRARY_PATH=cls.libdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_layout(self):
        for rel in ("bin/uvws", "include/uvws.h", "share/uvws/web/index.html", "share/man/man1/uvws.1",
                    "share/doc/uvws/examples/echo.c"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, rel)), rel)
        for rel in ("libuvws.so", "libuvws.a", "pkgconfig/uvws.pc", "cmake/uvws/uvwsConfig.cmake",
                    "cmake/uvws/uvwsConfigVersion.cmake"):
            self.assertTrue(os.path.exists(os.path.join(self.libdir, rel)), rel)

    def check_echo_binary(self, exe):
        proc, m = start([exe, "0"], r"ws://127\.0\.0\.1:(\d+)/echo", env=self.env)
        try:
            url = "ws://127.0.0.1:%s/echo" % m.group(1)
            self.assertEqual(asyncio.run(echo_once(url, "through the installed library")),
                             "through the installed library")
        finally:
            self.assertEqual(stop(proc), -signal.SIGTERM)  # the example has no signal handler

    def test_pkg_config_build(self):
        flags = run(["pkg-config", "--cflags", "--libs", "uvws"], env=self.env).split()
        exe = os.path.join(self.tmp, "echo-pkgconfig")
        run(["cc", "-Wall", "-Wextra", "-Werror"] + SAN + [os.path.join(SRC, "examples", "echo.c"),
             "-o", exe] + flags, env=self.env)
        self.check_echo_binary(exe)

    def test_find_package_build(self):
        proj = os.path.join(self.tmp, "fp")
        os.makedirs(proj, exist_ok=True)
        shutil.copy(os.path.join(SRC, "examples", "echo.c"), proj)
        with open(os.path.join(proj, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.18)\nproject(user C)\n"
                    "find_package(uvws 0.1 REQUIRED)\n"
                    "add_executable(echo echo.c)\ntarget_link_libraries(echo PRIVATE uvws::uvws)\n"
                    "add_executable(echo_static echo.c)\n"
                    "target_link_libraries(echo_static PRIVATE uvws::uvws_static)\n")
        run(["cmake", "-S", proj, "-B", os.path.join(proj, "build"), "-DCMAKE_PREFIX_PATH=" + self.prefix,
             "-DCMAKE_C_FLAGS=" + " ".join(SAN), "-DCMAKE_EXE_LINKER_FLAGS=" + " ".join(SAN)], env=self.env)
        run(["cmake", "--build", os.path.join(proj, "build")], env=self.env)
        self.check_echo_binary(os.path.join(proj, "build", "echo"))
        self.check_echo_binary(os.path.join(proj, "build", "echo_static"))

    def test_installed_binary_serves_installed_web(self):
        exe = os.path.join(self.prefix, "bin", "uvws")
        proc, m = start([exe, "--port", "0"], r"listening on http://127\.0\.0\.1:(\d+)", env=self.env)
        try:
            out = run(["curl", "-sS", "http://127.0.0.1:%s/" % m.group(1)])
            with open(os.path.join(self.prefix, "share", "uvws", "web", "index.html")) as f:
                self.assertEqual(out, f.read())
            helptext = run([exe, "--help"])
            self.assertIn(os.path.join(self.prefix, "bin", "..", "share", "uvws", "web"), helptext)
        finally:
            self.assertEqual(stop(proc), 0)

    def test_only_uvws_symbols_exported(self):
        out = run(["nm", "-D", "--defined-only", os.path.join(self.libdir, "libuvws.so")])
        names = [line.split()[-1] for line in out.splitlines() if line.strip()]
        self.assertGreater(len(names), 20)
        foreign = [n for n in names if not n.startswith("uvws_")]
        self.assertEqual(foreign, [], "symbols other than uvws_*: %s" % foreign)

    def test_every_public_declaration_documented(self):
        """Each function in the installed header has a /** comment block
        right above it (a group may share one, written just above)."""
        with open(os.path.join(self.prefix, "include", "uvws.h")) as f:
            lines = f.read().split("\n")
        undocumented = []
        for i, line in enumerate(lines):
            if not line.startswith("UVWS_EXTERN"):
                continue
            j = i - 1
            while j >= 0 and lines[j].strip() and not lines[j].startswith("/**") and \
                    not lines[j].rstrip().endswith(";"):
                j -= 1
            if j < 0 or not lines[j].startswith("/**"):
                undocumented.append(line)
        self.assertGreater(sum(l.startswith("UVWS_EXTERN") for l in lines), 30)
        self.assertEqual(undocumented, [])

    def test_man_page_documents_every_flag(self):
        helptext = run([os.path.join(self.prefix, "bin", "uvws"), "--help"])
        flags = set(re.findall(r"^  (--[a-z0-9-]+)", helptext, re.M))
        self.assertGreater(len(flags), 20)
        with open(os.path.join(self.prefix, "share", "man", "man1", "uvws.1")) as f:
            man = f.read().replace("\\-", "-")
        self.assertEqual(sorted(f for f in flags if f not in man), [])

    def test_embed_example(self):
        exe = os.path.join(BUILD, "examples", "embed")
        proc = subprocess.Popen([exe, "0", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ports = {}
        deadline = time.monotonic() + 10
        while len(ports) < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            m = re.search(r"(websocket|tcp) (?:ws://)?127\.0\.0\.1:(\d+)", line)
            if m:
                ports[m.group(1)] = int(m.group(2))
        try:
            self.assertEqual(len(ports), 2)

            async def go():
                async with websockets.connect("ws://127.0.0.1:%d/ticks" % ports["websocket"]) as ws:
                    await ws.send("echo me")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "echo me")
                    self.assertRegex(await asyncio.wait_for(ws.recv(), 5), r"^tick \d+$")
                r, w = await asyncio.open_connection("127.0.0.1", ports["tcp"])
                w.write(b"shout")
                self.assertEqual(await asyncio.wait_for(r.readexactly(5), 5), b"SHOUT")
                w.close()
            asyncio.run(go())
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(10), 0)


    def test_threads_example(self):
        """examples/threads: a server on its own threads, stopped from the main thread."""
        exe = os.path.join(BUILD, "examples", "threads")
        proc = subprocess.Popen([exe, "0", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            m = None
            deadline = time.monotonic() + 10
            while m is None and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                m = re.search(r"echo on ws://127\.0\.0\.1:(\d+)/echo, 2 threads", line)
            self.assertIsNotNone(m, "no 'echo on' line")

            async def go():
                socks = [await websockets.connect("ws://127.0.0.1:%s/echo" % m.group(1)) for _ in range(4)]
                for i, ws in enumerate(socks):
                    for k in range(5):
                        await ws.send("%d:%d" % (i, k))
                        self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "%d:%d" % (i, k))
                proc.send_signal(signal.SIGTERM)
                for ws in socks:  # the graceful stop closes each with 1001
                    with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                        await asyncio.wait_for(ws.recv(), 5)
                    self.assertEqual(cm.exception.rcvd.code, 1001)
            asyncio.run(go())
            out, _ = proc.communicate(timeout=10)
            self.assertEqual(proc.returncode, 0, out)
            self.assertIn("20 messages echoed", out)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    unittest.main(verbosity=2)
