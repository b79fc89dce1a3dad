"""Python's `websockets` (Debian's python3-websockets), imported once for every test.

    from wsimport import websockets, need_websockets

A missing or broken library must make the tests FAIL, not skip: the import error is kept in
WS_IMPORT_ERROR (websockets is then None) and need_websockets() raises an AssertionError that
names the Debian package. Call it where the tests start (setUpClass, setUp, a test, or the
module itself); with a TestCase it fails through testcase.fail().

websockets.exceptions and websockets.extensions.permessage_deflate are imported here too, so
`websockets.exceptions.ConnectionClosed` and
`websockets.extensions.permessage_deflate.PerMessageDeflate` are usable wherever websockets is.
"""
import sys

try:
    import websockets
    import websockets.exceptions
    import websockets.extensions.permessage_deflate
    WS_IMPORT_ERROR = None
except ImportError as e:  # must FAIL, not skip
    websockets = None
    WS_IMPORT_ERROR = e


def ws_missing_message():
    return ("python websockets is not importable by %s (%s): install Debian's "
            "python3-websockets (apt-get install python3-websockets; deps/install.sh --test) "
            "and run with /usr/bin/python3"
            % (sys.executable, WS_IMPORT_ERROR))


def need_websockets(testcase=None):
    """Fails (AssertionError, or testcase.fail) unless websockets was imported."""
    if websockets is None:
        if testcase is not None:
            testcase.fail(ws_missing_message())
        raise AssertionError(ws_missing_message())


def connector(timeout):
    """A connect(url, **kw) for websockets.connect with `timeout` as the default open and close
    timeout, no keepalive pings (none interleaved with the test's own) and no max_size."""
    def connect(url, **kw):
        kw.setdefault("open_timeout", timeout)
        kw.setdefault("close_timeout", timeout)
        kw.setdefault("ping_interval", None)
        kw.setdefault("max_size", None)
        return websockets.connect(url, **kw)
    return connect
