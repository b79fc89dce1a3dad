"""The /chat route's JSON messages (README, "Chat") over a websockets connection.

    recv = receiver(10.0)            # m = await recv(ws), or await recv(ws, 30)
    await send(ws, type="join", room="lobby", nick="ada")
"""
import asyncio
import json


def receiver(default_timeout):
    """An `async recv(ws, timeout=default_timeout)`: the next /chat message, parsed (a JSON
    object), within timeout seconds."""
    async def recv(ws, timeout=default_timeout):
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return recv


async def send(ws, **obj):
    """Sends obj as one JSON text message."""
    await ws.send(json.dumps(obj))
