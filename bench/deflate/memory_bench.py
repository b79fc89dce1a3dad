#!/usr/bin/python3
"""Server memory per permessage-deflate connection (RSS growth / connections).

    bench/deflate/memory_bench.py [--bin build/release/uvws] [--connections 500]

For each configuration: start uvws, open N connections with Python
websockets (which offers permessage-deflate with client context takeover),
have each send one compressible 1 KiB message and read its compressed echo,
so every connection has inflated and the server has deflated; then read the
server's VmRSS. Prints KiB per connection for: deflate off, on (shared
deflater), on with --deflate-takeover, and takeover with a small window
(--deflate-window-bits 9 --deflate-mem-level 1). Loopback only, bounded."""
import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys
import time

import websockets

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


async def hold(port, n, compression):
    conns = []
    msg = ('{"type":"message","room":"lobby","nick":"ada","text":"%s"}' % ("hello " * 160))[:1024]
    for i in range(n):
        ws = await websockets.connect("ws://127.0.0.1:%d/echo" % port, compression=compression,
                                      open_timeout=10, ping_interval=None)
        await ws.send(msg)
        assert await asyncio.wait_for(ws.recv(), 10) == msg
        conns.append(ws)
    return conns


def measure(binary, n, args, compression):
    proc = subprocess.Popen([binary, "--port", "0", "--log-level", "warn", "--ping-interval", "0"] + args,
                            stderr=subprocess.PIPE, text=True)
    # --log-level warn hides the listening line: ask the kernel for the port instead
    port = None
    deadline = time.monotonic() + 10
    while port is None and time.monotonic() < deadline:
        out = subprocess.run(["ss", "-ltnpH"], stdout=subprocess.PIPE, text=True).stdout
        for line in out.splitlines():
            if "pid=%d," % proc.pid in line:
                port = int(line.split()[3].rsplit(":", 1)[1])
        time.sleep(0.05)
    try:
        base = rss_kib(proc.pid)

        async def go():
            conns = await hold(port, n, compression)
            await asyncio.sleep(0.5)
            used = rss_kib(proc.pid) - base
            for ws in conns:
                await ws.close()
            return used
        used = asyncio.run(go())
        return used / n
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "release", "uvws"))
    ap.add_argument("--connections", type=int, default=500)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * a.connections + 100)), hard))
    rows = [("deflate off", ["--deflate", "off"], None),
            ("on, shared deflater (default)", [], "deflate"),
            ("on, --deflate-takeover on", ["--deflate-takeover", "on"], "deflate"),
            ("on, takeover, window 9, memLevel 1", ["--deflate-takeover", "on", "--deflate-window-bits", "9",
                                                   "--deflate-mem-level", "1"], "deflate")]
    print("%-40s %12s" % ("configuration (%d connections)" % a.connections, "KiB/conn"))
    for name, args, comp in rows:
        print("%-40s %12.1f" % (name, measure(a.bin, a.connections, args, comp)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
