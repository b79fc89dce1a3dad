#!/usr/bin/env python3
"""Checks the guide in docs/ against the tree and against a running uvws.

    UVWS_BIN=build/default/uvws /usr/bin/python3 test/docs/check_docs.py [-v] [-k WORD]

1. Code references: every `src/...`, `include/...`, `web/...`, `docs/...` or
   `test/...` path named in the prose exists; every `name()` written after
   such a path (in the same paragraph, table row or list item) is defined in
   that file; a `uvws...()` name after no path is defined somewhere in src/ or
   include/.
2. Links: relative links between the Markdown files, and their #anchors,
   resolve (anchors slugged from headings exactly as web/js/guide.js does);
   RFC 6455 links name a section that exists.
3. Commands: every command in a ```console or ```sh block runs in a
   pseudo-terminal at the repository root and exits 0, against a uvws this
   test starts on a free port (8080 in the text is replaced by that port).
   In ```console blocks, `$ ` lines are commands, `> ` lines are typed into
   the running command, other lines must appear in its output in that order
   (`…` matches any text). A ```sh server block says how to start uvws: the
   same flags are used for the blocks after it in that file.
4. Every ```c block compiles (cc -fsyntax-only) against include/uvws.h.
5. The browser client's help texts link to guide.html?PART#ANCHOR targets
   that exist, guide.js lists every part, and uvws serves docs/ under /docs/.

Prints one line per check and "N passed, M failed" last; exits 1 on failure.
Standard library only (Debian's /usr/bin/python3).
"""
import glob
import http.client
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, os.path.join(ROOT, "test", "pylib"))
from uvwsproc import UvwsServer  # noqa: E402

VERBOSE = "-v" in sys.argv
ONLY = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else None
CMD_TIMEOUT = 60.0   # one command, start to exit
LINE_TIMEOUT = 20.0  # one expected output line

# RFC 6455's sections and subsections (its table of contents).
RFC6455_SECTIONS = set(
    "1 1.1 1.2 1.3 1.4 1.5 1.6 1.7 1.8 1.9 2 2.1 3 4 4.1 4.2 4.2.1 4.2.2 4.3 4.4 "
    "5 5.1 5.2 5.3 5.4 5.5 5.5.1 5.5.2 5.5.3 5.6 5.7 5.8 6 6.1 6.2 "
    "7 7.1 7.1.1 7.1.2 7.1.3 7.1.4 7.1.5 7.1.6 7.1.7 7.2 7.2.1 7.2.2 7.2.3 7.3 7.4 7.4.1 7.4.2 "
    "8 8.1 9 9.1 9.2 10 10.1 10.2 10.3 10.4 10.5 10.6 10.7 10.8 "
    "11 11.1 11.1.1 11.1.2 11.2 11.3 11.3.1 11.3.2 11.3.3 11.3.4 11.3.5 11.4 11.5 11.6 11.7 11.8 "
    "12 13 14".split())

passed = 0
failed = 0


def report(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        if VERBOSE:
            print("ok   %s" % what)
    else:
        failed += 1
        print("FAIL %s%s" % (what, ("\n     " + detail.replace("\n", "\n     ")) if detail else ""))
    sys.stdout.flush()


# ---------------------------------------------------------------- Markdown

def parse(path):
    """Returns (blocks, prose): fenced blocks as (info, lines, line_no), and
    prose units (paragraphs, table rows, list items) as (text, line_no)."""
    blocks, prose = [], []
    lines = open(path, encoding="utf-8").read().split("\n")
    i, unit, unit_line = 0, [], 0

    def flush():
        nonlocal unit
        if unit:
            prose.append((" ".join(unit), unit_line))
        unit = []

    while i < len(lines):
        line = lines[i]
        m = re.match(r"^```\s*(.*)$", line)
        if m:
            flush()
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not re.match(r"^```\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            blocks.append((m.group(1).strip(), body, start))
            i += 1
            continue
        if not line.strip():
            flush()
        elif line.startswith("|") or re.match(r"^\s*([-*]|\d+\.) ", line) or line.startswith("#"):
            flush()
            unit, unit_line = [line], i + 1
        else:
            if not unit:
                unit_line = i + 1
            unit.append(line)
        i += 1
    flush()
    return blocks, prose


def inline_text(md):
    """Heading Markdown to plain text, as guide.js inlineText() does."""
    md = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", md)
    md = re.sub(r"`([^`]*)`", r"\1", md)
    return re.sub(r"(\*\*|__|\*|_)(?=\S)([^*_]*?\S)\1", r"\2", md)


def slug(text):
    """guide.js slug(): lower case, keep a-z 0-9 space _ -, spaces to '-'."""
    return re.sub(r"[^a-z0-9 _-]", "", text.lower()).replace(" ", "-")


def anchors(path):
    out, used = set(), {}
    blocks, prose = parse(path)
    for text, _ in prose:
        m = re.match(r"^(#{1,6}) +(.*?)\s*#*\s*$", text)
        if not m:
            continue
        sid = slug(inline_text(m.group(2)))
        n = used.get(sid, 0)
        used[sid] = n + 1
        out.add("%s-%d" % (sid, n) if n else sid)
    return out


# ---------------------------------------------------------------- 1. code references

PATH_RE = r"(?:src|include|web|docs|test)/[A-Za-z0-9_./-]*"
TOKEN_RE = re.compile(r"`(%s)`|`([A-Za-z_][A-Za-z0-9_]*)\(\)`" % PATH_RE)


def defined_in(name, path):
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return False
    n = re.escape(name)
    if path.endswith((".c", ".h")):
        pats = [r"^(?![ \t]).*\b%s\s*\([^;]*$" % n,          # a definition at file scope
                r"^#\s*define\s+%s\(" % n]
        if path.endswith(".h"):
            pats.append(r"^(?![ \t]).*\b%s\s*\(" % n)         # or a declaration
    elif path.endswith(".py"):
        pats = [r"^\s*def\s+%s\(" % n]
    elif path.endswith(".js"):
        pats = [r"\bfunction\s+%s\s*\(" % n, r"^\s*(?:async\s+)?%s\s*\([^)]*\)\s*\{" % n,
                r"\b(?:const|let)\s+%s\s*=" % n]
    else:
        pats = [r"\b%s\s*\(" % n]
    return any(re.search(p, text, re.M) for p in pats)


_all_sources = None


def defined_anywhere(name):
    global _all_sources
    if _all_sources is None:
        _all_sources = sorted(glob.glob(os.path.join(ROOT, "src", "**", "*.[ch]"), recursive=True)
                              + [os.path.join(ROOT, "include", "uvws.h")])
    return any(defined_in(name, p) for p in _all_sources)


def check_code_refs(md, prose):
    """A `name()` right after a `path` must be defined in that file. Otherwise it must be
    defined in a path named earlier in the same unit, or, for uvws* names, anywhere in src/
    or include/. Names in a unit without any path (browser APIs) are not checked."""
    rel = os.path.relpath(md, ROOT)
    for text, line in prose:
        seen = []  # paths named so far in this unit
        prev_end, prev_path = -1, None
        for m in TOKEN_RE.finditer(text):
            if m.group(1):
                path = m.group(1).rstrip(".")
                full = os.path.join(ROOT, path)
                report(os.path.exists(full), "%s:%d: path %s exists" % (rel, line, path))
                if os.path.isfile(full):
                    seen.append(path)
                prev_end, prev_path = m.end(), path
                continue
            name = m.group(2)
            adjacent = prev_path if (prev_path and text[prev_end:m.start()].strip() == ""
                                     and os.path.isfile(os.path.join(ROOT, prev_path))) else None
            prev_end, prev_path = m.end(), None
            if adjacent:
                report(defined_in(name, os.path.join(ROOT, adjacent)),
                       "%s:%d: %s() is defined in %s" % (rel, line, name, adjacent))
            elif any(defined_in(name, os.path.join(ROOT, p)) for p in seen):
                report(True, "%s:%d: %s() is defined in one of %s" % (rel, line, name, ", ".join(seen)))
            elif name.startswith("uvws"):
                report(defined_anywhere(name), "%s:%d: %s() is defined in src/ or include/" % (rel, line, name))
            elif seen:
                report(False, "%s:%d: %s() is defined in one of %s" % (rel, line, name, ", ".join(seen)))


# ---------------------------------------------------------------- 2. links

LINK_RE = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def check_links(md, prose):
    rel = os.path.relpath(md, ROOT)
    for text, line in prose:
        text = re.sub(r"`[^`]*`", "", text)
        for m in LINK_RE.finditer(text):
            target = m.group(1)
            what = "%s:%d: link %s" % (rel, line, target)
            if target.startswith(("http://", "https://")):
                r = re.match(r"https://www\.rfc-editor\.org/rfc/rfc6455(?:#section-([0-9.]+))?$", target)
                if r:
                    report(r.group(1) is None or r.group(1) in RFC6455_SECTIONS, what + " names a real section")
                elif "rfc6455" in target:
                    report(False, what, "RFC 6455 links are written https://www.rfc-editor.org/rfc/rfc6455#section-N")
                continue
            if target.startswith("mailto:"):
                continue
            file_part, _, anchor = target.partition("#")
            dest = md if not file_part else os.path.normpath(os.path.join(os.path.dirname(md), file_part))
            if not os.path.exists(dest):
                report(False, what, "%s does not exist" % os.path.relpath(dest, ROOT))
                continue
            if anchor and dest.endswith(".md"):
                have = anchors(dest)
                report(anchor in have, what + " resolves",
                       "" if anchor in have else "no heading #%s in %s; it has: %s"
                       % (anchor, os.path.relpath(dest, ROOT), ", ".join(sorted(have))))
            else:
                report(True, what + " resolves")


# ---------------------------------------------------------------- 3. commands

ANSI_RE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def render_terminal(raw):
    """What a terminal would show, line by line: \\r returns to column 0 and
    overwrites, ESC[2K / ESC[K clear the line, other escape codes vanish."""
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    lines = []
    for physical in text.split("\n"):
        buf, col = [], 0
        pos = 0
        for m in list(ANSI_RE.finditer(physical)) + [None]:
            chunk = physical[pos:m.start() if m else len(physical)]
            for part_i, part in enumerate(chunk.split("\r")):
                if part_i:
                    col = 0
                for ch in part:
                    if col < len(buf):
                        buf[col] = ch
                    else:
                        buf.append(ch)
                    col += 1
            if m:
                if m.group(2) == "K":
                    if m.group(1) == "2":
                        buf, col = [], 0
                    else:
                        del buf[col:]
                pos = m.end()
        lines.append("".join(buf).rstrip())
    return lines


def line_pattern(expected):
    parts = [re.escape(p) for p in expected.split("…")]
    return re.compile("^" + ".*".join(parts) + "$")


class Pty:
    def __init__(self, cmd, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.chdir(ROOT)
                os.execve("/bin/bash", ["bash", "-c", cmd], env)
            finally:
                os._exit(127)
        self.raw = b""
        self.status = None

    def pump(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if r:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            if data:
                self.raw += data
                return True
            self.reap(block=True)
        else:
            self.reap(block=False)
        return False

    def reap(self, block):
        if self.status is None:
            pid, st = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)

    def write(self, text):
        os.write(self.fd, text.encode() + b"\r")

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.reap(block=True)
        try:
            os.close(self.fd)
        except OSError:
            pass


def run_command(cmd, items, port, env):
    """Runs one command; items: ('in', text) or ('out', expected line). Returns (ok, detail)."""
    cmd = re.sub(r"(?<![0-9])8080(?![0-9])", str(port), cmd)
    p = Pty(cmd, env)
    deadline = time.monotonic() + CMD_TIMEOUT
    cursor = 0
    try:
        for kind, text in items:
            if kind == "in":
                p.write(text)
                continue
            pat = line_pattern(re.sub(r"(?<![0-9])8080(?![0-9])", str(port), text))
            line_deadline = min(deadline, time.monotonic() + LINE_TIMEOUT)
            while True:
                lines = render_terminal(p.raw)
                hit = next((i for i in range(cursor, len(lines)) if pat.match(lines[i])), None)
                if hit is not None:
                    cursor = hit + 1
                    break
                if p.status is not None or time.monotonic() > line_deadline:
                    # drain what is left, then give up
                    while p.status is None and p.pump(0.2):
                        pass
                    lines = render_terminal(p.raw)
                    if any(pat.match(l) for l in lines[cursor:]):
                        cursor = next(i for i in range(cursor, len(lines)) if pat.match(lines[i])) + 1
                        break
                    return False, "expected output line not seen: %r\noutput:\n%s" % (
                        text, "\n".join(lines)[-4000:])
                p.pump(0.1)
        while p.status is None and time.monotonic() < deadline:
            p.pump(0.1)
        if p.status is None:
            return False, "did not exit within %.0f s\noutput:\n%s" % (
                CMD_TIMEOUT, "\n".join(render_terminal(p.raw))[-4000:])
        if p.status != 0:
            return False, "exit status %s\noutput:\n%s" % (p.status, "\n".join(render_terminal(p.raw))[-4000:])
        return True, ""
    finally:
        p.kill()


def console_commands(lines):
    """[(command, items)] from a console block."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            cmd = line[2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            out.append((cmd, []))
        elif out and line.startswith("> "):
            out[-1][1].append(("in", line[2:]))
        elif out and line.strip() and line.strip() != "…":
            out[-1][1].append(("out", line.rstrip()))
        i += 1
    return out


def sh_commands(lines):
    out, cmd = [], ""
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cmd = cmd + " " + line.strip() if cmd else line.strip()
        if cmd.endswith("\\"):
            cmd = cmd[:-1]
            continue
        out.append((cmd, []))
        cmd = ""
    return out


def server_args(cmd):
    words = shlex.split(cmd)
    if not words or not os.path.basename(words[0]) == "uvws":
        return None
    args, i = [], 1
    while i < len(words):
        if words[i] == "--port":
            i += 2
            continue
        if words[i].startswith("--port="):
            i += 1
            continue
        args.append(words[i])
        i += 1
    return args


def check_commands(md, blocks, default_srv, env):
    rel = os.path.relpath(md, ROOT)
    srv, own = default_srv, None
    try:
        for info, lines, line_no in blocks:
            words = info.split()
            lang = words[0] if words else ""
            if lang == "sh" and "server" in words[1:]:
                cmds = sh_commands(lines)
                args = server_args(cmds[0][0]) if len(cmds) == 1 else None
                if args is None:
                    report(False, "%s:%d: sh server block" % (rel, line_no),
                           "a sh server block holds one command that starts uvws")
                    continue
                if own:
                    own.stop()
                    own = None
                if args:
                    try:
                        own = UvwsServer(*args).start()
                        srv = own
                        report(True, "%s:%d: server starts: %s" % (rel, line_no, cmds[0][0]))
                    except Exception as e:  # noqa: BLE001
                        report(False, "%s:%d: server starts: %s" % (rel, line_no, cmds[0][0]), str(e))
                        srv = default_srv
                else:
                    srv = default_srv
                    report(srv.alive(), "%s:%d: server starts: %s" % (rel, line_no, cmds[0][0]))
                continue
            if lang == "console":
                cmds = console_commands(lines)
            elif lang == "sh":
                cmds = sh_commands(lines)
            else:
                continue
            for cmd, items in cmds:
                if ONLY and ONLY not in cmd:
                    continue
                t0 = time.monotonic()
                ok, detail = run_command(cmd, items, srv.port, env)
                report(ok, "%s:%d: command runs (%.1fs): %s" % (rel, line_no, time.monotonic() - t0, cmd[:110]),
                       detail)
    finally:
        if own:
            own.stop()


# ---------------------------------------------------------------- 4. C blocks

def check_c_blocks(md, blocks):
    rel = os.path.relpath(md, ROOT)
    for info, lines, line_no in blocks:
        if info.split()[:1] != ["c"]:
            continue
        cc = os.environ.get("CC", "cc")
        r = subprocess.run([cc, "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                            "-I", os.path.join(ROOT, "include"), "-x", "c", "-"],
                           input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
        report(r.returncode == 0, "%s:%d: C example compiles" % (rel, line_no), r.stderr)


# ---------------------------------------------------------------- 5. the browser client and /docs/

def check_web(srv):
    index = open(os.path.join(ROOT, "web", "index.html"), encoding="utf-8").read()
    guide_js = open(os.path.join(ROOT, "web", "js", "guide.js"), encoding="utf-8").read()
    report(os.path.isfile(os.path.join(ROOT, "web", "guide.html")), "web/guide.html exists")
    parts = set(re.findall(r"^\s*\['([A-Za-z0-9_-]+)',", guide_js, re.M))
    for md in sorted(glob.glob(os.path.join(DOCS, "*.md"))):
        name = os.path.basename(md)[:-3]
        report(name in parts, "web/js/guide.js lists docs/%s.md in PARTS" % name)
    # Each help text (<details id="help-...">) links to the guide, and the target exists.
    for m in re.finditer(r'<details id="(help-[a-z-]+)"(.*?)</details>', index, re.S):
        help_id, body = m.group(1), m.group(2)
        links = re.findall(r'href="guide\.html\?([A-Za-z0-9_-]+)(?:#([^"]*))?"', body)
        report(bool(links), "web/index.html #%s links to the guide" % help_id)
        for part, anchor in links:
            md = os.path.join(DOCS, part + ".md")
            if not os.path.isfile(md):
                report(False, "web/index.html #%s: guide.html?%s" % (help_id, part), "no docs/%s.md" % part)
                continue
            have = anchors(md)
            report(not anchor or anchor in have, "web/index.html #%s: guide.html?%s#%s resolves"
                   % (help_id, part, anchor), "headings: " + ", ".join(sorted(have)))
    # uvws serves the Markdown and the page.
    for path, ctype, local in [("/docs/README.md", "text/markdown", os.path.join(DOCS, "README.md")),
                               ("/docs/frames.md", "text/markdown", os.path.join(DOCS, "frames.md")),
                               ("/guide.html", "text/html", os.path.join(ROOT, "web", "guide.html"))]:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            conn.request("GET", path)
            res = conn.getresponse()
            body = res.read()
            conn.close()
            ok = (res.status == 200 and (res.getheader("Content-Type") or "").startswith(ctype)
                  and body == open(local, "rb").read())
            report(ok, "uvws serves %s as %s" % (path, ctype),
                   "" if ok else "got %d %s (%d bytes)" % (res.status, res.getheader("Content-Type"), len(body)))
        except OSError as e:
            report(False, "uvws serves %s" % path, str(e))


def check_claims(srv, env):
    """What the guide says about failures that no console block can show (they exit non-zero)."""
    demo = os.path.join(DOCS, "examples", "frames_demo.py")
    r = subprocess.run([sys.executable, demo], capture_output=True, text=True, timeout=30)
    report(r.returncode == 2 and r.stderr.startswith("usage: frames_demo.py ws://") and "Traceback" not in r.stderr,
           "docs/examples/frames_demo.py without arguments prints its usage and exits 2",
           "exit %d, stderr: %s" % (r.returncode, r.stderr[-600:]))
    # docs/wscat.md: "/close 1005 crashes it with a stack trace ... exits with status 1".
    wscat = subprocess.Popen(["wscat", "-c", "ws://127.0.0.1:%d/echo" % srv.port, "--slash"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)  # connected: the command is read by wscat's prompt
        out, _ = wscat.communicate("/close 1005\n", timeout=20)
    except subprocess.TimeoutExpired:
        wscat.kill()
        out, _ = wscat.communicate()
    report(wscat.returncode == 1 and "TypeError: First argument must be a valid error code number" in out
           and re.search(r"^\s+at ", out, re.M) is not None,
           "docs/wscat.md: wscat's /close 1005 crashes with a stack trace and exit status 1",
           "exit %s, output: %s" % (wscat.returncode, out[-800:]))
    # docs/exec.md: a 101 without the subprotocol the client asked for makes Node's ws give up
    # ("error: Server sent no subprotocol", exit status 255); /echo negotiates as an exec route does.
    # (in a terminal, as the guide's commands run: without one wscat prints nothing and exits 0)
    p = Pty("wscat -c ws://127.0.0.1:%d/echo -s chat.v3 -w 1" % srv.port, env)
    deadline = time.monotonic() + 20
    try:
        while p.status is None and time.monotonic() < deadline:
            p.pump(0.1)
        while p.pump(0.1):
            pass
        out = "\n".join(render_terminal(p.raw))
    finally:
        p.kill()
    report(p.status == 255 and "error: Server sent no subprotocol" in out,
           "docs/exec.md: wscat -s with a protocol the route does not speak: 'Server sent no subprotocol', exit 255",
           "exit %s, output: %s" % (p.status, out[-800:]))


def main():
    os.chdir(ROOT)  # the servers it starts run at the repository root, as the guide's commands do
    env = dict(os.environ)
    env["PATH"] = os.path.join(ROOT, "node_modules", ".bin") + os.pathsep + env.get("PATH", "")
    env.setdefault("TERM", "xterm")
    env["NO_COLOR"] = "1"
    files = sorted(glob.glob(os.path.join(DOCS, "*.md")))
    if not files:
        report(False, "docs/*.md exist")
    parsed = {md: parse(md) for md in files}
    for md, (blocks, prose) in parsed.items():
        check_code_refs(md, prose)
        check_links(md, prose)
        check_c_blocks(md, blocks)
    with UvwsServer() as srv:
        check_web(srv)
        check_claims(srv, env)
        for md, (blocks, prose) in parsed.items():
            check_commands(md, blocks, srv, env)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
