"""Bounded asyncio for tests: no await and no test coroutine may hang.

    step = stepper(10.0)   # await step(ws.recv()) or step(ws.recv(), 30): wait_for with a bound
    run = runner(60.0)     # run(go()) or run(go(), 90): asyncio.run with an overall bound

Each test file picks its own default bounds; a call can still pass its own.
"""
import asyncio


def stepper(default_timeout):
    """An `async step(aw, timeout=default_timeout)`: awaits aw for at most timeout seconds."""
    async def step(aw, timeout=default_timeout):
        return await asyncio.wait_for(aw, timeout)
    return step


def runner(default_timeout):
    """A `run(coro, timeout=default_timeout)`: runs one test coroutine with an overall bound."""
    def run(coro, timeout=default_timeout):
        return asyncio.run(asyncio.wait_for(coro, timeout))
    return run
