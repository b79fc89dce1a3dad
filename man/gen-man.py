#!/usr/bin/env python3
"""Regenerates man/uvws.1 from `uvws --help` plus the fixed sections below.

    python3 man/gen-man.py build/default/uvws > man/uvws.1

The install test checks that the page names every flag --help lists, so a
new flag fails CI until this is run."""
import re
import subprocess
import sys

help_ = subprocess.run([sys.argv[1], "--help"], stdout=subprocess.PIPE, text=True, check=True).stdout
opts, cur = [], None
for line in help_.splitlines():
    m = re.match(r"^  (--[a-z0-9-]+(?: [A-Z|a-z=\[\],.]+)?)\s*(.*)$", line)
    if m:
        cur = [m.group(1), m.group(2).strip()]
        opts.append(cur)
    elif cur and line.startswith(" " * 24):
        cur[1] = (cur[1] + " " + line.strip()).strip()
    elif not line.strip():
        cur = None


def esc(s):
    return s.replace("\\", "\\\\").replace("-", "\\-")


def default_note(name):
    return ("(default: \\fI<prefix>/share/uvws/%s\\fR when installed, else the source tree's %s/%s)"
            % (name, name, "; \\fBoff\\fR serves none" if name == "docs" else ""))


out = ['.TH UVWS 1 "2026-11-25" "uvws 0.1.0" "User Commands"',
       ".SH NAME\nuvws \\- asynchronous WebSocket and HTTP/1.1 server on libuv",
       ".SH SYNOPSIS\n.B uvws\n[\\fIoptions\\fR]",
       ".SH DESCRIPTION\n.B uvws\nserves WebSocket routes and a folder of static files from one port, with "
       "optional TLS (https:// and wss://) on a second port. It speaks RFC 6455 with permessage-deflate "
       "(RFC 7692).",
       ".SS Routes\n.TP\n.B /echo\nWebSocket echo; subprotocols \\fBecho\\fR and \\fBuvws\\-echo\\fR.\n.TP\n"
       ".B /inspect\nthe same echo, and in addition every frame received and sent, and the opening "
       "handshake, reported to the client as JSON text messages.\n.TP\n.B /metrics\nPrometheus metrics; "
       "\\fB/healthz\\fR answers \\fBok\\fR (503 while shutting down); \\fB/routes.json\\fR lists the "
       "WebSocket routes.\n.TP\n.B /chat\nchat rooms on "
       "publish/subscribe; the JSON protocol is in the README.\n.TP\n.B /docs/\nthe WebSocket "
       "guide (\\fB/guide.html\\fR renders it).\n.TP\nanything else\na static file from \\fB\\-\\-web\\fR; "
       "\\fB/\\fR is the browser client.",
       ".SH OPTIONS"]
for name, desc in opts:
    parts = name.split(" ", 1)
    if parts[0] in ("--web", "--docs"):
        desc = re.sub(r"\(default [^)]*\)(.*)$", "", desc).strip() + " " + default_note(parts[0][2:])
        out.append(".TP\n.B " + esc(parts[0]) + " \\fI" + esc(parts[1]) + "\\fR\n" + desc.replace("-", "\\-")
                   .replace("\\\\fI", "\\fI").replace("\\\\fR", "\\fR").replace("\\\\fB", "\\fB"))
        continue
    arg = (" \\fI" + esc(parts[1]) + "\\fR") if len(parts) > 1 else ""
    out.append(".TP\n.B " + esc(parts[0]) + arg + "\n" + esc(desc))
out += [".PP\nSizes accept K, M and G suffixes; durations are seconds, or take an s, ms or m suffix.",
        ".SH SIGNALS\n.TP\n.B SIGINT, SIGTERM\nStop accepting, send close 1001 to every WebSocket, wait "
        "for the closing handshakes up to \\fB\\-\\-shutdown\\-timeout\\fR, and exit 0. A second signal "
        "exits at once with status 1.\n.TP\n.B SIGHUP\nReload \\fB\\-\\-tls\\-cert\\fR and "
        "\\fB\\-\\-tls\\-key\\fR; open connections keep the old certificate; a file that does not load "
        "keeps the old one and is logged.",
        ".SH EXIT STATUS\n0 after a clean shutdown, 1 when the server cannot start, 2 for a bad command line.",
        ".SH FILES\n.TP\n.I <prefix>/share/uvws/web\nthe browser client, served by default when uvws is "
        "installed.\n.TP\n.I <prefix>/share/uvws/docs\nthe guide, served at /docs/.",
        ".SH EXAMPLES\n.nf\nuvws\nuvws \\-\\-host 0.0.0.0 \\-\\-port 80 \\-\\-tls\\-cert fullchain.pem "
        "\\-\\-tls\\-key key.pem \\-\\-tls\\-port 443\nuvws \\-\\-tls\\-self\\-signed\nwscat \\-n \\-c "
        "wss://127.0.0.1:8443/echo\n.fi",
        ".SH SEE ALSO\n.BR wscat (1),\nRFC 6455, RFC 7692."]
sys.stdout.write("\n".join(out) + "\n")
