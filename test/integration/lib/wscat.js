'use strict';
// The `wscat` command-line client for the integration tests: node_modules/.bin/wscat at the repo
// root (npm ci), or $UVWS_WSCAT. It runs under the Node that runs the test (process.execPath).
//
//   const { needWscat, runWscat } = require('./lib/wscat');
//   needWscat(); // throws a clear error when wscat is missing
//   const r = await runWscat(['-c', srv.url('ws', '/echo'), '-w', '2', '-x', 'hello']);
//   r.code; r.signal; r.stdout; r.stderr;

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT } = require('./server');

const WSCAT = process.env.UVWS_WSCAT || path.join(ROOT, 'node_modules', '.bin', 'wscat');

function needWscat() {
  if (!fs.existsSync(WSCAT)) {
    throw new Error(`wscat not found at ${WSCAT}: run "deps/install.sh --test" or "npm ci" in ${ROOT}`);
  }
}

// Runs wscat with `args`, writes `input` to its stdin and keeps stdin open: wscat exits as soon
// as its stdin ends, and with -x it exits by itself after -w seconds. Resolves with
// {code, signal, stdout, stderr}; rejects (after killing it) if wscat runs longer than timeoutMs.
function runWscat(args, { input = '', timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WSCAT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wscat ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    child.stdin.on('error', () => {}); // EPIPE once wscat has exited
    child.stdin.write(input);
  });
}

module.exports = { WSCAT, needWscat, runWscat };
