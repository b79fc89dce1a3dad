#!/usr/bin/env python3
"""Checks that src/ keeps its layers (docs/inside-uvws.md):

1. includes go down: a file includes only headers of its own layer or of the
   layers it may call;
2. calls go down: no function of a file names a function (or inline helper)
   defined in a layer it may not call (so the transport names no HTTP,
   WebSocket or pub/sub function, and HTTP and WebSocket never call each other);
3. no cycle of calls between files of the middle spans more than three files.

Calls are found by name: every uvws_/uvws__ identifier a file uses that another
file defines. Prints each violation; exits 1 if there is any."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SRC = os.path.join(ROOT, "src")

# layer -> the layers it may call (besides itself)
ALLOWED = {
    "util": set(),
    "proto": {"util"},
    "net": {"util"},
    "http": {"util", "proto", "net"},
    "ws": {"util", "proto", "net"},
    "pubsub": {"util", "proto", "ws"},
    "runtime": {"util", "proto", "net", "http", "ws", "pubsub"},
    "facade": {"util", "proto", "net", "http", "ws", "pubsub", "runtime"},
}
# Headers another layer may include for their types alone.
TYPE_HEADERS = {
    "ws/open.h": {"http"},  # the upgrade hand-off, filled in by whoever accepts upgrades
}
# What ws may see of net: the stream interface, not the TCP transport.
WS_NET_HEADERS = {"net/stream.h"}


def layer_of(rel):
    if rel == "server.c":
        return "facade"
    top = rel.split("/")[0]
    return top if top in ALLOWED else None


def files():
    for d, _, names in os.walk(SRC):
        for n in sorted(names):
            if n.endswith((".c", ".h")):
                rel = os.path.relpath(os.path.join(d, n), SRC)
                if layer_of(rel):
                    yield rel


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return text


DEF_RE = re.compile(r"^(?:static\s+inline\s+|inline\s+)?[A-Za-z_][\w\s\*]*?\b(uvws_{1,2}\w+)\s*\(([^;]*)$", re.M)
MACRO_RE = re.compile(r"^#define\s+(uvws__\w+)\(", re.M)
ID_RE = re.compile(r"\b(uvws_{1,2}[a-z]\w*)\b")
INC_RE = re.compile(r'^#include\s+"([^"]+)"', re.M)


def main():
    problems = []
    texts = {rel: strip_comments(open(os.path.join(SRC, rel), encoding="utf-8").read()) for rel in files()}
    defined = {}  # symbol -> file
    for rel, text in texts.items():
        for m in DEF_RE.finditer(text):
            line = text[m.start():text.find("\n", m.start())]
            if line.startswith("static") and "inline" not in line:
                continue
            if rel.endswith(".h") and "inline" not in line:
                continue  # a declaration
            defined.setdefault(m.group(1), rel)
        for m in MACRO_RE.finditer(text):
            defined.setdefault(m.group(1), rel)

    for rel, text in texts.items():
        lay = layer_of(rel)
        for inc in INC_RE.findall(text):
            il = layer_of(inc)
            if il is None or il == lay:
                continue
            if inc in TYPE_HEADERS and lay in TYPE_HEADERS[inc]:
                continue
            if lay == "ws" and il == "net" and inc not in WS_NET_HEADERS:
                problems.append("%s includes %s: the WebSocket session sees only the stream interface" % (rel, inc))
                continue
            if il not in ALLOWED[lay]:
                problems.append("%s (%s) includes %s (%s)" % (rel, lay, inc, il))

    edges = {}
    for rel, text in texts.items():
        lay = layer_of(rel)
        for sym in set(ID_RE.findall(text)):
            where = defined.get(sym)
            if where is None or where == rel:
                continue
            wl = layer_of(where)
            if wl != lay and wl not in ALLOWED[lay]:
                problems.append("%s (%s) names %s, defined in %s (%s)" % (rel, lay, sym, where, wl))
            if rel.endswith(".c") and where.endswith(".c"):
                edges.setdefault(rel, set()).add(where)

    # Strongly connected components of the file call graph (Tarjan).
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(texts):
        if v.endswith(".c") and v not in index:
            visit(v)
    for comp in comps:
        if len(comp) > 3:
            problems.append("a call cycle spans %d files: %s" % (len(comp), ", ".join(sorted(comp))))
        elif len(comp) > 1:
            print("cycle of %d (allowed): %s" % (len(comp), ", ".join(sorted(comp))))

    for p in problems:
        print("FAIL " + p)
    print("%d files, %d cross-file call edges, %d problems" % (len(texts), sum(len(e) for e in edges.values()), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
