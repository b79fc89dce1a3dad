#!/usr/bin/env python3
"""Each message comes back reversed: one line in, one line out.

    uvws --exec /reverse='python3 examples/exec/reverse.py'

The environment says who is calling (uvws sets it as CGI does): the first
line sent is a greeting built from it. uvws sets PYTHONUNBUFFERED=1, so each
print() reaches the client at once."""
import os
import sys

print("hello %s, you are connection %s" % (os.environ.get("REMOTE_ADDR", "?"),
                                           os.environ.get("UVWS_CONNECTION_ID", "?")))
for line in sys.stdin:
    print(line.rstrip("\n")[::-1])
