"""Raw-socket /chat flooders for chat_rooms_test.py, run in a process of their own.

In the test's own process the flooders' threads competed with the measured client for the
interpreter's lock, so the quiet room's latency tail was the test's, not the server's. Run:

    chat_flood.py PORT ROOM COUNT

It starts COUNT flooders in ROOM, then answers each line on stdin with one line: the
"message" lines the flooders have received so far, then each one's state. EOF stops them."""
import socket
import sys
import threading

T = 10


class RawFlooder:
    """A /chat member on a plain socket that sends pre-built frames as fast as the
    server takes them (masked with the zero key, so the payload stays as is) and
    reads and discards what comes back, counting "message" lines."""

    def __init__(self, port, room, nick):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=T)
        self.sock.sendall(("GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("flooder: no 101")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError("flooder: %r" % head[:40])
        # No timeout from here on: the server stops reading a member whose own
        # send queue is above its high-water mark, so sendall() may block for
        # seconds; a timeout there used to end the flood silently.
        self.sock.settimeout(None)
        self.lines = 0
        self.sent = 0
        self.ended = {}
        self.stop = threading.Event()
        self.sock.sendall(self.frame('{"type":"join","room":"%s","nick":"%s"}' % (room, nick)))
        line = self.frame('{"type":"send","room":"%s","text":"%s"}' % (room, "f" * 80))
        self.burst = line * 200
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def frame(text):
        data = text.encode()
        assert len(data) < 126
        return bytes([0x81, 0x80 | len(data)]) + b"\0\0\0\0" + data

    def _send(self):
        try:
            while not self.stop.is_set():
                self.sock.sendall(self.burst)
                self.sent += 200
            self.ended["send"] = "stopped"
        except OSError as e:
            self.ended["send"] = repr(e)

    def _read(self):
        try:
            while not self.stop.is_set():
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    self.ended["read"] = "eof"
                    return
                self.lines += chunk.count(b'"type":"message"')
            self.ended["read"] = "stopped"
        except OSError as e:
            self.ended["read"] = repr(e)

    def state(self):
        return "sent %d lines, got %d, ended %s" % (self.sent, self.lines, self.ended or "no")

    def close(self):
        self.stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for t in self.threads:
            t.join(5)
        self.sock.close()


def main():
    port, room, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    flooders = [RawFlooder(port, room, "f%d" % i) for i in range(count)]
    for _ in sys.stdin:
        print("%d %s" % (sum(f.lines for f in flooders),
                         "; ".join("f%d: %s" % (i, f.state()) for i, f in enumerate(flooders))), flush=True)
    for f in flooders:
        f.close()


if __name__ == "__main__":
    main()
