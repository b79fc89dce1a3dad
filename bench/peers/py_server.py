"""Python peer for bench/compare, on Debian's python3-websockets (asyncio):
/echo sends every message back, /broadcast sends every message to all the
other /broadcast connections (websockets.broadcast). No compression.

Usage: /usr/bin/python3 bench/peers/py_server.py [PORT]  (127.0.0.1, default 8093)
"""
import asyncio
import signal
import sys

import websockets

members = set()


async def handler(ws, path=None):
    path = path or ws.path
    if path == "/broadcast":
        members.add(ws)
        try:
            async for msg in ws:
                websockets.broadcast([m for m in members if m is not ws], msg)
        finally:
            members.discard(ws)
    else:
        try:
            async for msg in ws:
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    for s in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(s, stop.set_result, None)
    async with websockets.serve(handler, "127.0.0.1", port, compression=None,
                                max_size=1 << 24, ping_interval=None, backlog=4096):
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8093))
