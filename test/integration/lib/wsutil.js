'use strict';
// Small promise helpers around the `ws` client for the integration tests. Every wait is bounded.

const crypto = require('node:crypto');

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Opens a client; resolves with the open WebSocket; rejects on error / unexpected response.
function openWs(WebSocket, url, protocols, options = {}, ms = 5000) {
  const ws = new WebSocket(url, protocols, { handshakeTimeout: ms, ...options });
  const p = new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', (err) => reject(err));
    ws.once('unexpected-response', (req, res) => {
      req.destroy();
      reject(new Error(`unexpected response ${res.statusCode} to the upgrade of ${url}`));
    });
  });
  return withTimeout(p, ms + 1000, `open ${url}`).catch((err) => {
    ws.terminate();
    throw err;
  });
}

// Starts a handshake that must fail with an HTTP response; resolves with {status, headers, body}.
function expectUpgradeRejected(WebSocket, url, protocols, options = {}, ms = 5000) {
  const ws = new WebSocket(url, protocols, { handshakeTimeout: ms, ...options });
  const p = new Promise((resolve, reject) => {
    ws.on('error', (err) => reject(new Error(`expected an HTTP error response, got error: ${err.message}`)));
    ws.once('open', () => reject(new Error(`the upgrade of ${url} unexpectedly succeeded`)));
    ws.once('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      const done = () => {
        ws.removeAllListeners('error');
        ws.on('error', () => {});
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      };
      res.once('end', done);
      res.once('error', done);
      res.once('close', done);
    });
  });
  return withTimeout(p, ms + 1000, `rejected upgrade of ${url}`).finally(() => {
    ws.removeAllListeners('error');
    ws.on('error', () => {});
    ws.terminate();
  });
}

// A queue of received messages so that none is lost between awaits.
class Inbox {
  constructor(ws) {
    this.ws = ws;
    this.items = [];
    this.waiters = [];
    this.events = []; // 'message' / 'pong' / 'close' in arrival order
    this.pongs = [];
    this.closed = null;
    ws.on('message', (data, isBinary) => {
      this.events.push('message');
      this._push({ data: Buffer.isBuffer(data) ? data : Buffer.concat(data), isBinary });
    });
    ws.on('pong', (data) => {
      this.events.push('pong');
      this.pongs.push(Buffer.from(data));
      this._wake();
    });
    ws.on('close', (code, reason) => {
      this.events.push('close');
      this.closed = { code, reason: reason.toString('utf8') };
      this._wake();
    });
    ws.on('error', (err) => {
      this.error = err;
      this._wake();
    });
  }

  _push(item) {
    this.items.push(item);
    this._wake();
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  _until(pred, ms, what) {
    return withTimeout(new Promise((resolve, reject) => {
      const check = () => {
        let v;
        try {
          v = pred();
        } catch (err) {
          reject(err);
          return;
        }
        if (v !== undefined) resolve(v);
        else this.waiters.push(check);
      };
      check();
    }), ms, what);
  }

  next(ms = 5000) {
    return this._until(() => {
      if (this.items.length) return this.items.shift();
      if (this.closed) throw new Error(`connection closed (${this.closed.code} "${this.closed.reason}") while waiting for a message`);
      return undefined;
    }, ms, 'next message');
  }

  pong(ms = 5000) {
    return this._until(() => {
      if (this.pongs.length) return this.pongs.shift();
      if (this.closed) throw new Error(`connection closed (${this.closed.code}) while waiting for a pong`);
      return undefined;
    }, ms, 'pong');
  }

  close(ms = 5000) {
    return this._until(() => (this.closed ? this.closed : undefined), ms, 'close event');
  }
}

// A text string whose UTF-8 encoding is exactly `n` bytes, mixing 1-4 byte sequences.
function utf8Text(n, seed = 1) {
  const pieces = ['a', 'Z', '~', 'é', 'ж', '€', '中', '😀', '𝄞'];
  let out = '';
  let left = n;
  let x = seed;
  while (left > 0) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    let piece = pieces[x % pieces.length];
    if (Buffer.byteLength(piece) > left) piece = 'b';
    out += piece;
    left -= Buffer.byteLength(piece);
  }
  return out;
}

function randomBytes(n) {
  return crypto.randomBytes(n);
}

module.exports = { withTimeout, openWs, expectUpgradeRejected, Inbox, utf8Text, randomBytes };
