'use strict';
// Starts the real uvws binary on an ephemeral loopback port, for the Node integration tests.
//
//   const { UvwsServer } = require('./lib/server');
//   const srv = await UvwsServer.start({ web: dir, args: ['--max-message', '1024'] });
//   srv.port; srv.url('ws', '/echo'); srv.logText(); await srv.waitLog(/ws open/);
//   await srv.stop();   // SIGTERM; rejects unless the server exits 0 within 10 s
//
// The binary is $UVWS_BIN (ctest sets it), else build/default/uvws in the repo.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const LISTEN_RE = /listening on http:\/\/(\S+):(\d+)/;

function uvwsBin() {
  return process.env.UVWS_BIN || path.join(ROOT, 'build', 'default', 'uvws');
}

// A fresh temporary web root holding `files` ({relative path: string|Buffer}).
function makeWebRoot(files = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvws-it-web-'));
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  return dir;
}

class UvwsServer {
  constructor({ web, host = '127.0.0.1', args = [], expectExit = 0, startTimeoutMs = 10000 } = {}) {
    this.web = web !== undefined ? web : path.join(ROOT, 'web');
    this.host = host;
    this.args = args;
    this.expectExit = expectExit;
    this.startTimeoutMs = startTimeoutMs;
    this.port = null;
    this.proc = null;
    this.lines = [];
    this.exitCode = undefined; // set once the process exited (null + signal when killed)
    this.exitSignal = undefined;
    this._exited = null;
  }

  static async start(opts) {
    const srv = new UvwsServer(opts);
    await srv._start();
    return srv;
  }

  _start() {
    const bin = uvwsBin();
    if (!fs.existsSync(bin)) {
      return Promise.reject(new Error(`uvws binary not found: ${bin} (set UVWS_BIN)`));
    }
    const cmd = [bin, '--host', this.host, '--port', '0', '--web', this.web,
      '--log-level', 'debug', ...this.args];
    this.cmd = cmd;
    this.proc = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    this._exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
    });
    return new Promise((resolve, reject) => {
      let buf = '';
      let done = false;
      const finish = (err) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) {
          try { this.proc.kill('SIGKILL'); } catch (_) { /* already gone */ }
          reject(err);
        } else {
          resolve();
        }
      };
      const timer = setTimeout(() => finish(new Error(
        `uvws did not log "listening on" within ${this.startTimeoutMs} ms: ${cmd.join(' ')}\n${this.logText()}`)),
      this.startTimeoutMs);
      this.proc.on('error', (err) => finish(new Error(`cannot start ${bin}: ${err.message}`)));
      this.proc.stderr.setEncoding('utf8');
      this.proc.stderr.on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.lines.push(line);
          if (this.port === null) {
            const m = LISTEN_RE.exec(line);
            if (m) {
              this.port = Number(m[2]);
              finish();
            }
          }
        }
      });
      this.proc.stderr.on('end', () => {
        if (buf) this.lines.push(buf);
        buf = '';
      });
      this._exited.then(() => finish(new Error(
        `uvws exited (code ${this.exitCode}, signal ${this.exitSignal}) before listening: ` +
        `${cmd.join(' ')}\n${this.logText()}`)));
    });
  }

  url(scheme = 'http', p = '/') {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${scheme}://${host}:${this.port}${p}`;
  }

  logText() {
    return this.lines.join('\n');
  }

  alive() {
    return this.proc !== null && this.exitCode === undefined;
  }

  // Resolves with the match of the first log line matching `re`; rejects after timeoutMs.
  async waitLog(re, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.lines) {
        const m = re.exec(line);
        if (m) return m;
      }
      if (Date.now() >= deadline) {
        throw new Error(`no log line matching ${re} within ${timeoutMs} ms:\n${this.logText()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // SIGTERM (or `signal`), then waits up to 10 s; rejects unless the server exits with expectExit.
  async stop(signal = 'SIGTERM') {
    if (this.proc === null) return undefined;
    if (this.alive()) {
      this.proc.kill(signal);
      let timer;
      const timedOut = await Promise.race([
        this._exited.then(() => false),
        new Promise((r) => { timer = setTimeout(() => r(true), 10000); }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.proc.kill('SIGKILL');
        await this._exited;
        throw new Error(`uvws did not exit within 10 s of ${signal}:\n${this.logText()}`);
      }
    } else {
      await this._exited;
    }
    // Let the stderr reader drain the last lines.
    await new Promise((r) => setTimeout(r, 20));
    if (this.expectExit !== null && this.exitCode !== this.expectExit) {
      throw new Error(`uvws exited with code ${this.exitCode} (signal ${this.exitSignal}), ` +
        `expected ${this.expectExit}:\n${this.logText()}`);
    }
    return this.exitCode;
  }

  // For after() hooks: the server must still be alive, then must exit 0 on SIGTERM.
  async assertAliveAndStop() {
    if (!this.alive()) {
      throw new Error(`uvws died during the tests (code ${this.exitCode}, signal ${this.exitSignal}):\n` +
        this.logText());
    }
    await this.stop();
  }
}

// Loads a package from the repo's node_modules (npm ci at the repo root), failing with a clear message.
function requireDev(name) {
  try {
    return require(require.resolve(name, { paths: [ROOT, ...(process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean)] }));
  } catch (err) {
    throw new Error(`cannot load the npm package "${name}" (${err.message}); ` +
      `run "deps/install.sh --test" or "npm ci" in ${ROOT}`);
  }
}

module.exports = { UvwsServer, makeWebRoot, requireDev, uvwsBin, ROOT };
