'use strict';
// Helpers for the browser tests: start the real uvws binary on an ephemeral loopback port, and
// launch Debian's Chromium through playwright-core (never a downloaded browser).
//
//   const srv = await startUvws();          // srv.origin = 'http://127.0.0.1:PORT'
//   const browser = await launchChromium(); // { context, close() }
//   ...
//   await srv.stop();                       // SIGTERM; rejects unless exit code 0 within 10 s

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const ROOT = path.resolve(__dirname, '..', '..');
const WEB = path.join(ROOT, 'web');
const CHROMIUM = process.env.UVWS_CHROMIUM || '/usr/bin/chromium';
const LISTEN_RE = /listening on http:\/\/(\S+):(\d+)/;

function uvwsBin() {
  return process.env.UVWS_BIN || path.join(ROOT, 'build', 'default', 'uvws');
}

/** Where screenshots go: $UVWS_ARTIFACTS, else a build dir given as first argument, else the temp dir. */
function artifactsDir() {
  const arg = process.argv.slice(2).find((a) => !a.startsWith('-') && fs.existsSync(a) && fs.statSync(a).isDirectory());
  const dir = process.env.UVWS_ARTIFACTS ||
    (arg ? path.join(arg, 'screenshots') : path.join(os.tmpdir(), 'uvws-browser-screenshots'));
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** playwright-core from the repo's node_modules (or NODE_PATH); throws a clear error when missing. */
function loadPlaywright() {
  const paths = [ROOT, ...(process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean)];
  try {
    return require(require.resolve('playwright-core', { paths }));
  } catch (err) {
    throw new Error(`the browser tests need the npm package playwright-core (${err.message.split('\n')[0]}); ` +
      `run "npm ci" in ${ROOT} (deps/install.sh --test does)`);
  }
}

/** Launches headless Chromium with a fresh profile. Throws a clear error when it is missing.
 *  `extraArgs` are added to the command line (e.g. --ignore-certificate-errors for a test
 *  profile), `viewport` replaces the default size. */
async function launchChromium({ extraArgs = [], viewport = { width: 1440, height: 1000 } } = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`the browser tests need Chromium at ${CHROMIUM} (Debian package "chromium"; ` +
      'deps/install.sh --test installs it); set UVWS_CHROMIUM to use another binary');
  }
  const { chromium } = loadPlaywright();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'uvws-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--disable-dev-shm-usage', ...extraArgs],
      viewport,
      timeout: 60000,
    });
  } catch (err) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw new Error(`cannot start ${CHROMIUM} through playwright-core: ${err.message}`);
  }
  return {
    context,
    async close() {
      try {
        await context.close();
      } finally {
        fs.rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}

/** Starts uvws on 127.0.0.1 with an ephemeral port, serving web/. */
function startUvws({ web = WEB, args = [], timeoutMs = 10000 } = {}) {
  const bin = uvwsBin();
  if (!fs.existsSync(bin)) {
    return Promise.reject(new Error(`uvws binary not found: ${bin} (set UVWS_BIN)`));
  }
  const cmd = [bin, '--host', '127.0.0.1', '--port', '0', '--web', web, '--log-level', 'debug', ...args];
  const proc = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = [];
  const srv = {
    proc,
    lines,
    port: null,
    origin: null,
    exitCode: undefined,
    exitSignal: undefined,
    log: () => lines.join('\n'),
    alive: () => srv.exitCode === undefined,
    /** Resolves with the match of the first log line matching `re`. */
    async waitLog(re, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        for (const line of lines) {
          const m = re.exec(line);
          if (m) return m;
        }
        if (Date.now() > deadline) throw new Error(`no uvws log line matching ${re} within ${ms} ms:\n${srv.log()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    /** SIGTERM; rejects unless uvws exits with code 0 within 10 s. */
    async stop() {
      if (srv.alive()) {
        proc.kill('SIGTERM');
        let timer;
        const late = await Promise.race([
          exited.then(() => false),
          new Promise((r) => { timer = setTimeout(() => r(true), 10000); }),
        ]);
        clearTimeout(timer);
        if (late) {
          proc.kill('SIGKILL');
          await exited;
          throw new Error(`uvws did not exit within 10 s of SIGTERM:\n${srv.log()}`);
        }
      }
      await exited;
      await new Promise((r) => setTimeout(r, 20)); // let the last stderr lines arrive
      if (srv.exitCode !== 0) {
        throw new Error(`uvws exited with code ${srv.exitCode} (signal ${srv.exitSignal}), expected 0:\n${srv.log()}`);
      }
    },
  };
  // Never leave a server behind, whatever happens to the test process.
  const reap = () => { if (srv.alive()) proc.kill('SIGKILL'); };
  process.on('exit', reap);
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      process.removeListener('exit', reap);
      srv.exitCode = code;
      srv.exitSignal = signal;
      resolve();
    });
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    let settled = false;
    const settle = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        try { proc.kill('SIGKILL'); } catch { /* gone */ }
        reject(err);
      } else {
        resolve(srv);
      }
    };
    const timer = setTimeout(() => settle(new Error(
      `uvws did not log "listening on" within ${timeoutMs} ms: ${cmd.join(' ')}\n${srv.log()}`)), timeoutMs);
    proc.on('error', (err) => settle(new Error(`cannot start ${bin}: ${err.message}`)));
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (srv.port === null) {
          const m = LISTEN_RE.exec(line);
          if (m) {
            srv.port = Number(m[2]);
            srv.origin = `http://127.0.0.1:${srv.port}`;
            settle();
          }
        }
      }
    });
    exited.then(() => settle(new Error(
      `uvws exited (code ${srv.exitCode}, signal ${srv.exitSignal}) before listening: ${cmd.join(' ')}\n${srv.log()}`)));
  });
}

/** Registers node:test before/after hooks that launch Chromium (with `launch`, the options of
 *  launchChromium), then uvws (a missing browser must not leave a server running), and stop
 *  both; a browser that fails to close or a server that died meanwhile fails the suite. Returns
 *  an object whose `browser` and `srv` are set once the hooks have run. */
function browserAndServer(before, after, { uvwsArgs = [], timeout = 90000, launch = {} } = {}) {
  const env = { browser: null, srv: null };
  before(async () => {
    env.browser = await launchChromium(launch);
    try {
      env.srv = await startUvws({ args: uvwsArgs });
    } catch (err) {
      await env.browser.close().catch(() => {});
      env.browser = null;
      throw err;
    }
  }, { timeout });
  after(async () => {
    let err = null;
    try {
      if (env.browser) await env.browser.close();
    } catch (e) {
      err = e;
    }
    if (env.srv) {
      if (!env.srv.alive()) {
        throw new Error(`uvws died during the tests (code ${env.srv.exitCode}, signal ${env.srv.exitSignal}):\n${env.srv.log()}`);
      }
      await env.srv.stop(); // SIGTERM: must exit 0 within 10 s
    }
    if (err) throw err;
  }, { timeout: 30000 });
  return env;
}

// A module of web/js (guide.js, decode.js) is an ES module for the browser, but nothing tells
// Node so: web/js has no package.json with "type": "module" (uvws would serve it, and install it,
// as one more public file), and Node before 20.19 / 22.7 loads a .js file outside such a package
// as CommonJS ("SyntaxError: Unexpected token 'export'"). A data: URL of type text/javascript is
// always loaded as a module; the sourceURL comment keeps the file name and its line numbers in
// stack traces. Such a module must import nothing: no relative specifier resolves from a data:
// URL (one would fail loudly).
function importBrowserModule(file) {
  const source = `${fs.readFileSync(file, 'utf8')}\n//# sourceURL=${pathToFileURL(file).href}\n`;
  return import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
}

module.exports = { importBrowserModule, browserAndServer, startUvws, launchChromium, loadPlaywright, artifactsDir, uvwsBin, ROOT, WEB, CHROMIUM };
