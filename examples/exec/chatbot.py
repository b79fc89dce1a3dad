#!/usr/bin/env python3
"""A chat room with a bot in it: one process for every client (--exec-shared).

    uvws --exec-shared /bot='python3 examples/exec/chatbot.py'

Every client message arrives on stdin as "ID<TAB>TEXT", ID being the
connection's number. A line printed plainly goes to every client of the
route (on every thread, and every uvws instance with --redis); a line
"@ID<TAB>TEXT" goes to that connection alone.

    /nick NAME   choose a name        /who    who is here (to you alone)
    /help        this list (to you)   TEXT    said to everyone
"""
import sys

names = {}  # connection id -> nickname


def say(text):
    print(text, flush=True)


def tell(cid, text):
    print("@%s\t%s" % (cid, text), flush=True)


say("bot: I am back (ask me /help)")
for line in sys.stdin:
    cid, _, text = line.rstrip("\n").partition("\t")
    name = names.get(cid, "guest" + cid)
    if text.startswith("/nick "):
        new = text[6:].strip()[:32] or name
        names[cid] = new
        say("bot: %s is now %s" % (name, new))
    elif text == "/who":
        tell(cid, "bot: here: " + ", ".join(sorted(names.values())) if names else "bot: nobody named yet")
    elif text == "/help":
        tell(cid, "bot: /nick NAME, /who, /help; anything else is said to everyone")
    else:
        say("%s: %s" % (name, text))
