// The uvws browser client: one WebSocket at a time, every event logged, echoes matched to sends,
// and, on /inspect, the server's description of the handshake and of each frame.

import {
  h, utf8, hex, quote, breakable, formatBytes, formatMs, groupDigits, clock, randomBytes,
  READY_STATES, closeCodeMeaning,
} from './util.js';
import { explainFailedConnect } from './diagnose.js';
import { serverRoutes, routeUrls } from './routes.js';
import { addRecord, render, setMode, setQuery, clearRecords, sessionJson } from './timeline.js';
import { parseTrace, endsDataMessage, traceSummary, frameRow, frameAnatomy, renderHandshake, messageAnchor } from './inspector.js';
import { initScenarios, refreshScenarios, scenarioAnswer, scenarioClosed, FRAGMENTED_TEXT } from './scenarios.js';

const $ = (id) => document.getElementById(id);

const ui = {
  connectForm: $('connect-form'), url: $('url'), protocols: $('protocols'), inspect: $('inspect'),
  compression: $('compression'), lengthNote: $('length-note'),
  connectBtn: $('connect-btn'), disconnectBtn: $('disconnect-btn'), connectWhy: $('connect-why'),
  readyState: $('ready-state'), wsUrl: $('ws-url'), wsProtocol: $('ws-protocol'),
  wsExtensions: $('ws-extensions'), wsBinaryType: $('ws-binary-type'),
  text: $('message-text'), sendText: $('send-text'), sendTextBinary: $('send-text-binary'),
  randomSize: $('random-size'), sendRandom: $('send-random'), sendZeros: $('send-zeros'), showSent: $('show-sent'), file: $('file'), sendFile: $('send-file'),
  buffered: $('buffered'), bufferedMeter: $('buffered-meter'), bufferedPeak: $('buffered-peak'),
  closeForm: $('close-form'), closeCode: $('close-code'), closeReason: $('close-reason'),
  closeBtn: $('close-btn'), closeError: $('close-error'),
  messageList: $('message-list'), messageCount: $('message-count'), messagesEmpty: $('messages-empty'),
  eventLog: $('event-log'), eventSummary: $('event-summary'), eventCount: $('event-count'), eventsEmpty: $('events-empty'), logTraces: $('log-traces'),
  frameList: $('frame-list'), frameCount: $('frame-count'), frameDetail: $('frame-detail'),
  inspectorOff: $('inspector-off'), quiet: $('quiet'),
  handshakeView: $('handshake-view'), handshakeEmpty: $('handshake-empty'),
  handshakeRequest: $('handshake-request'), handshakeResponse: $('handshake-response'),
  acceptSteps: $('accept-steps'), acceptCheck: $('accept-check'),
};

const MAX_RANDOM = 64 * 1024 * 1024; // more than uvws accepts by default (--max-message 16M): try it
const PREVIEW_BYTES = 16;

let conn = null; // the current connection: see connect()
let connSeq = 0;
let sendSeq = 0;
let messageSeq = 0;
let eventSeq = 0;
let pinnedFrame = null; // the frame row the user chose to inspect (else the latest "in" frame is shown)

// ---------------------------------------------------------------- URL and inspector switch

function defaultUrl() {
  const secure = location.protocol === 'https:';
  const host = location.host || '127.0.0.1:8080';
  return `${secure ? 'wss' : 'ws'}://${host}/echo`;
}

function urlPath(text) {
  try {
    return new URL(text).pathname;
  } catch {
    return null;
  }
}

function setUrlPath(path) {
  try {
    const u = new URL(ui.url.value);
    u.pathname = path;
    ui.url.value = u.href;
  } catch {
    ui.url.value = defaultUrl().replace(/\/echo$/, path);
  }
}

// The same connection from a terminal: wscat with this URL and these subprotocols, and --slash -P
// so the learner can send control frames and sees pings and pongs.
const shellQuote = (s) => `'${s.replace(/'/g, "'\\''")}'`;
function wscatArgs() {
  return ['wscat', '-c', shellQuote(ui.url.value.trim()),
    ...parseProtocols(ui.protocols.value).flatMap((p) => ['-s', shellQuote(p)]), '--slash', '-P'];
}
const wscatCommand = () => wscatArgs().join(' ');
function showWscat() {
  // One nowrap span per argument, so a narrow screen breaks between them (a URL may still wrap).
  const spans = wscatArgs().map((arg) => h('span', { class: arg.startsWith("'") ? 'arg value' : 'arg' }, arg));
  $('wscat-cmd').replaceChildren(...spans.flatMap((span, i) => (i ? [' ', span] : [span])));
}
$('copy-wscat').addEventListener('click', async () => {
  const button = $('copy-wscat');
  try {
    await navigator.clipboard.writeText(wscatCommand());
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Select the command to copy it';
  }
  setTimeout(() => { button.textContent = 'Copy as wscat command'; }, 2000);
});

ui.inspect.addEventListener('change', () => { setUrlPath(ui.inspect.checked ? '/inspect' : '/echo'); showWscat(); });
ui.url.addEventListener('input', () => {
  ui.inspect.checked = urlPath(ui.url.value) === '/inspect';
  ui.compression.checked = !deflateOff(ui.url.value);
  updateLengthNote();
  showWscat();
  fillRouteList();
});
ui.protocols.addEventListener('input', showWscat);

// The compression switch is the URL's ?deflate=off (README: /echo and /inspect then decline
// permessage-deflate), so the URL field always says what the next connection asks for.
function deflateOff(text) {
  try {
    return new URL(text).searchParams.get('deflate') === 'off';
  } catch {
    return false;
  }
}

ui.compression.addEventListener('change', () => {
  try {
    const u = new URL(ui.url.value);
    if (ui.compression.checked) u.searchParams.delete('deflate');
    else u.searchParams.set('deflate', 'off');
    ui.url.value = u.href;
  } catch { /* not a URL yet: the switch waits for one */ }
  updateLengthNote();
  fillRouteList();
});

// The URL field suggests every route the server lists, on the field's host, with the compression
// switch's ?deflate=off.
async function fillRouteList() {
  const routes = await serverRoutes();
  if (!routes) return;
  const urls = routeUrls(routes, ui.url.value, !ui.compression.checked);
  $('url-routes').replaceChildren(...urls.map((value) => h('option', { value })));
}

function lengthBits(n) {
  return n <= 125 ? 7 : n <= 65535 ? 16 : 64;
}

// Why a length-edge button may not give the encoding it names: with permessage-deflate the frame
// carries the compressed bytes, whose count is not the message's.
function updateLengthNote() {
  const n = Number(ui.randomSize.value);
  const size = Number.isInteger(n) && n >= 0 ? `${groupDigits(n)} bytes` : 'the message';
  const ws = conn && conn.ws;
  const live = ws && ws.readyState === WebSocket.OPEN;
  let compressed;
  let text;
  if (live && /permessage-deflate/.test(ws.extensions)) {
    compressed = true;
    text = `This connection compresses (extensions ${JSON.stringify(ws.extensions)}): the browser deflates ${size} ` +
      'before framing them, so the frame’s length is the compressed size, not the one you chose, and may need a ' +
      'different length encoding. Untick Compression and connect again to see exactly the encoding each button names.';
  } else if (live) {
    compressed = false;
    text = `No compression on this connection: ${size} travel as a frame of exactly that length` +
      (Number.isInteger(n) && n >= 0 ? `, a ${lengthBits(n)}-bit length.` : '.');
  } else {
    compressed = ui.compression.checked;
    text = compressed
      ? 'Compression is on: Chromium offers permessage-deflate and the server accepts, so frame lengths will be compressed sizes. Untick Compression to see the length encodings exactly.'
      : 'Compression is off (?deflate=off): each frame’s length will be exactly the message’s.';
  }
  ui.lengthNote.textContent = text;
  ui.lengthNote.dataset.compressed = String(compressed);
}

// ---------------------------------------------------------------- the event log

function sinceOpen(c) {
  return c ? `+${(performance.now() - c.t0).toFixed(1)} ms` : '';
}

/**
 * Adds a line to the event log. `type` is open|message|error|close for events, call for what the
 * page did, info for notes. `parts` are strings or nodes.
 */
function logEvent(type, parts, { c = conn, trace = false, bad = false } = {}) {
  eventSeq++;
  const li = h('li', {
    class: `ev ev-${type}${trace ? ' trace' : ''}${bad ? ' bad' : ''}`,
    dataset: { type, testid: 'event', trace: trace ? 'true' : undefined, conn: c ? c.id : undefined },
  },
  h('span', { class: 'when' }, h('time', null, clock()), h('span', { class: 'rel' }, sinceOpen(c))),
  h('span', { class: `tag ${type}` }, type),
  h('span', { class: 'what' }, ...parts));
  if (trace && !ui.logTraces.checked) li.hidden = true;
  const log = ui.eventLog;
  const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  if (stick) log.scrollTop = log.scrollHeight;
  ui.eventCount.textContent = String(eventSeq);
  ui.eventsEmpty.hidden = true;
  // The only live region of the log: a screen reader hears each event, not the hundreds of traces.
  if (!trace && type !== 'info') ui.eventSummary.textContent = `${type}: ${li.querySelector('.what').textContent}`;
  return li;
}

ui.logTraces.addEventListener('change', () => {
  for (const li of ui.eventLog.querySelectorAll('li.trace')) li.hidden = !ui.logTraces.checked;
});

$('clear-log').addEventListener('click', () => {
  ui.eventLog.replaceChildren();
  eventSeq = 0;
  ui.eventCount.textContent = '0';
  ui.eventsEmpty.hidden = false;
});

// ---------------------------------------------------------------- live state

function stateName(n) {
  return `${READY_STATES[n]} (${n})`;
}

function refreshState() {
  const ws = conn && conn.ws;
  const rs = ws ? ws.readyState : null;
  if (ws) {
    ui.readyState.textContent = stateName(rs);
    ui.readyState.dataset.state = READY_STATES[rs].toLowerCase();
  } else {
    ui.readyState.textContent = 'no socket';
    ui.readyState.dataset.state = 'none';
  }
  showDiagram(rs);
  const open = rs === WebSocket.OPEN;
  const live = rs === WebSocket.CONNECTING || rs === WebSocket.OPEN;
  ui.connectBtn.disabled = live || rs === WebSocket.CLOSING;
  ui.disconnectBtn.disabled = !live;
  ui.closeBtn.disabled = !live;
  for (const b of [ui.sendText, ui.sendTextBinary, ui.sendRandom, ui.sendZeros]) b.disabled = !open;
  ui.sendFile.disabled = !open || !ui.file.files.length;
  ui.wsBinaryType.textContent = ws ? `"${ws.binaryType}"` : '—';
  refreshScenarios(conn);

  showQuiet(open);

  const amount = ws ? ws.bufferedAmount : 0;
  ui.buffered.textContent = formatBytes(amount);
  if (conn && conn.peak) {
    ui.bufferedMeter.max = conn.peak.bytes;
    ui.bufferedMeter.value = amount;
    if (amount === 0 && conn.peak.drainedAt === null) conn.peak.drainedAt = performance.now();
    const drained = conn.peak.drainedAt !== null
      ? `, drained in ${formatMs(conn.peak.drainedAt - conn.peak.at)}` : ', draining…';
    ui.bufferedPeak.textContent = `peak ${formatBytes(conn.peak.bytes)} right after send #${conn.peak.send}${drained}`;
  }
  return ws && (rs !== WebSocket.CLOSED || amount > 0);
}

// The readyState diagram: the current state lit, the ones this socket went through marked, and the
// earlier ones it never reached (OPEN for a connection that failed) struck through: states only move forward.
function showDiagram(rs) {
  const c = conn;
  if (c && rs !== null) c.seen.add(rs);
  for (const li of document.querySelectorAll('#rs-diagram li')) {
    const n = Number(li.dataset.n);
    li.classList.toggle('current', rs === n);
    li.classList.toggle('visited', Boolean(c && c.seen.has(n)) && rs !== n);
    li.classList.toggle('skipped', Boolean(c) && rs !== null && n < rs && !c.seen.has(n));
  }
}

// On /inspect: how long the connection has been quiet, counting towards the server's idle ping.
function showQuiet(open) {
  const c = conn;
  if (!open || !c.inspect) {
    ui.quiet.hidden = true;
    return;
  }
  const s = Math.floor((performance.now() - (c.lastFrameAt || c.t0)) / 1000);
  const text = `No frame for ${s} s: uvws pings a connection that was quiet for 30 s (its default --ping-interval), see “Control frames”.`;
  if (ui.quiet.textContent !== text) ui.quiet.textContent = text;
  ui.quiet.hidden = false;
}

// readyState and bufferedAmount change without events (bufferedAmount never fires one), so poll
// them once per animation frame while a socket is alive, and on a timer when the tab is hidden.
let ticking = false;
function tick() {
  if (refreshState()) {
    requestAnimationFrame(tick);
  } else {
    ticking = false;
  }
}
function startTicking() {
  refreshState();
  if (!ticking) {
    ticking = true;
    requestAnimationFrame(tick);
  }
}
setInterval(refreshState, 500);

// ---------------------------------------------------------------- connect

function parseProtocols(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

/** After a connect that never opened: ask the server over HTTP and say why next to the button. */
async function explainFailure(c) {
  delete ui.connectWhy.dataset.status; // set again once the answer is in
  ui.connectWhy.replaceChildren(h('span', { class: 'muted' }, 'The connection could not be opened; asking the server why…'));
  ui.connectWhy.hidden = false;
  const { status, parts } = await explainFailedConnect(c.url, c.protocols);
  if (c !== conn) return;
  ui.connectWhy.dataset.status = status === null ? '' : String(status);
  ui.connectWhy.replaceChildren(...parts);
  logEvent('note', ['Why: ', ui.connectWhy.textContent], { c });
}

function connect() {
  ui.closeError.hidden = true;
  ui.connectWhy.hidden = true;
  const url = ui.url.value.trim();
  const protocols = parseProtocols(ui.protocols.value);
  const call = `new WebSocket(${JSON.stringify(url)}${protocols.length ? `, ${JSON.stringify(protocols)}` : ''})`;
  let ws;
  try {
    ws = protocols.length ? new WebSocket(url, protocols) : new WebSocket(url);
  } catch (err) {
    // SyntaxError: a bad URL (or a fragment), a bad or repeated subprotocol token.
    logEvent('call', [h('code', null, call), ' threw ', h('strong', null, `${err.name}: ${err.message}`)], { c: null, bad: true });
    return;
  }
  const c = {
    id: ++connSeq, ws, t0: performance.now(), url: ws.url, protocols,
    inspect: urlPath(ws.url) === '/inspect',
    pending: [], // sends not yet echoed, oldest first
    outDataTraces: 0, echoes: 0, frames: 0, peak: null, opened: false, closeCalled: false, seen: new Set(),
    received: 0, // messages received that are not traces: "out" message n of the server is the n-th
    unpaired: 0, // messages coming that echo no send (the "fragments" scenario)
    scenario: null,
  };
  conn = c;
  ws.binaryType = document.querySelector('input[name="binary-type"]:checked').value;
  ui.wsUrl.replaceChildren(breakable(ws.url));
  ui.wsProtocol.textContent = '—';
  ui.wsExtensions.textContent = '—';
  ui.bufferedPeak.textContent = '';
  ui.bufferedMeter.value = 0;
  if (eventSeq) logEvent('info', [h('hr', { class: 'sep', 'aria-hidden': 'true' }), `connection ${c.id}`], { c });
  logEvent('call', [h('code', null, call), ` → readyState ${stateName(ws.readyState)}`], { c });

  if (c.inspect) {
    resetInspector();
    ui.inspectorOff.hidden = true;
  }

  ws.addEventListener('open', () => {
    c.opened = true;
    ui.wsProtocol.textContent = JSON.stringify(ws.protocol);
    ui.wsExtensions.replaceChildren(breakable(JSON.stringify(ws.extensions)));
    updateLengthNote();
    logEvent('open', [`protocol ${JSON.stringify(ws.protocol)}, extensions ${JSON.stringify(ws.extensions)}`,
      c.inspect ? ' · inspector on: trace messages follow' : ''], { c });
    refreshState();
    if (c === conn) ui.text.focus({ preventScroll: true });
  });
  ws.addEventListener('message', (ev) => onMessage(c, ev));
  ws.addEventListener('error', () => {
    logEvent('error', [c.opened
      ? 'the connection failed.'
      : 'the connection could not be established. The browser does not tell the page why (the developer console does); this page asks the server over HTTP and shows the answer under the Connect button.'],
    { c, bad: true });
    refreshState();
  });
  ws.addEventListener('close', (ev) => {
    const meaning = closeCodeMeaning(ev.code);
    logEvent('close', [
      h('span', { class: 'kv' }, `code ${ev.code}`), ` (${meaning}), `,
      h('span', { class: 'kv' }, `reason ${JSON.stringify(ev.reason)}`), ', ',
      h('span', { class: `kv ${ev.wasClean ? 'good' : 'warn'}` }, `wasClean ${ev.wasClean}`),
      c.pending.length ? ` · ${c.pending.length} send(s) never echoed` : '',
    ], { c, bad: !ev.wasClean });
    if (!c.opened && !c.closeCalled) explainFailure(c);
    scenarioClosed(c, ev);
    updateLengthNote();
    if (c.inspect && c.closeCalled && c.opened) {
      logEvent('note', ['The page called close(), so the browser dropped the messages that arrived while CLOSING: ' +
        'the traces of both close frames are not shown. Let the server close first to see one (see “Control frames”).'], { c });
    }
    refreshState();
  });
  startTicking();
}

ui.connectForm.addEventListener('submit', (e) => {
  e.preventDefault();
  connect();
});

ui.disconnectBtn.addEventListener('click', () => closeSocket('1000', ''));

// ---------------------------------------------------------------- send

/** Records a send: pending until echoed, and a "sent" row in the message table. */
function track(c, entry) {
  entry.seq = ++sendSeq;
  entry.t = performance.now();
  c.pending.push(entry);
  entry.row = sentRow(c, entry);
  return entry.seq;
}

function sentRow(c, entry) {
  const cell = h('td', { class: entry.kind === 'text' ? 'preview' : 'preview mono' });
  const row = h('tr', { class: 'sent', dataset: { testid: 'sent-row', seq: entry.seq, type: entry.kind, size: entry.size, conn: c.id } },
    h('td', { class: 'num' }, `#${entry.seq}`),
    h('td', null, h('span', { class: 'dir in', title: 'sent by this page' }, 'sent ↑')),
    h('td', null, h('span', { class: `pill ${entry.kind}` }, entry.kind)),
    h('td', null, h('code', null, entry.arg)),
    h('td', { class: 'num' }, formatBytes(entry.size)),
    cell,
    h('td', { class: 'echo-of muted' }, 'not echoed yet'),
    h('td', { class: 'num rtt' }, '—'));
  entry.rec = addRecord({
    row, cell, dir: 'sent', kind: entry.kind, size: entry.size, text: entry.text, head: entry.head, name: entry.name,
    seq: entry.seq, conn: c.id, t: entry.t - c.t0,
  });
  appendMessageRow(row);
  return row;
}

function appendMessageRow(row) {
  const wrap = ui.messageList.closest('.table-scroll');
  const stick = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 40;
  ui.messageList.append(row);
  if (stick) wrap.scrollTop = wrap.scrollHeight; // follow new rows unless the user scrolled up
  ui.messagesEmpty.hidden = true;
}

$('preview-mode').addEventListener('change', (e) => setMode(e.target.value));
$('message-search').addEventListener('input', (e) => {
  const shown = setQuery(e.target.value);
  $('search-count').textContent = e.target.value.trim() ? `${shown} matching` : '';
});

const sessionTraces = []; // every trace of this page's life, for the export (bounded)
$('export-session').addEventListener('click', () => {
  const events = [...ui.eventLog.querySelectorAll('li')].map((li) => ({
    type: li.dataset.type, conn: li.dataset.conn ? Number(li.dataset.conn) : null,
    time: li.querySelector('time').textContent, text: li.querySelector('.what').textContent,
  }));
  const blob = new Blob([JSON.stringify(sessionJson({ events, traces: sessionTraces }), null, 2)], { type: 'application/json' });
  const a = h('a', { href: URL.createObjectURL(blob), download: `uvws-session-${new Date().toISOString().replace(/[:.]/g, '-')}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
});

ui.showSent.addEventListener('change', () => $('message-table').classList.toggle('with-sent', ui.showSent.checked));
$('message-table').classList.toggle('with-sent', ui.showSent.checked);

function afterSend(c, seq) {
  const bytes = c.ws.bufferedAmount; // rises synchronously on send()
  if (!c.peak || c.peak.drainedAt !== null || bytes > c.peak.bytes) {
    c.peak = { bytes, at: performance.now(), send: seq, drainedAt: bytes === 0 ? performance.now() : null };
  }
  startTicking();
}

function sendText() {
  const c = conn;
  if (!c) return;
  const text = ui.text.value;
  const size = utf8(text).length;
  const seq = track(c, { kind: 'text', text, size, arg: 'string' });
  c.ws.send(text);
  logEvent('call', [h('code', null, 'ws.send(string)'), ` send #${seq}: ${text.length} UTF-16 units, ${size} UTF-8 bytes, text frame · ${quote(text, 40)}`], { c });
  afterSend(c, seq);
}

function sendBytes(bytes, what) {
  const c = conn;
  if (!c) return;
  const seq = track(c, { kind: 'binary', size: bytes.byteLength, head: bytes.slice(0, PREVIEW_BYTES), arg: 'Uint8Array' });
  c.ws.send(bytes);
  logEvent('call', [h('code', null, 'ws.send(Uint8Array)'), ` send #${seq}: ${formatBytes(bytes.byteLength)} ${what}, binary frame`], { c });
  afterSend(c, seq);
}

ui.sendText.addEventListener('click', sendText);
ui.text.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !ui.sendText.disabled) {
    e.preventDefault();
    sendText();
  }
});
ui.sendTextBinary.addEventListener('click', () => sendBytes(utf8(ui.text.value), 'from the text as UTF-8'));

ui.sendRandom.addEventListener('click', () => {
  const size = Number(ui.randomSize.value);
  if (!Number.isInteger(size) || size < 0 || size > MAX_RANDOM) {
    ui.randomSize.setCustomValidity(`Choose a whole number from 0 to ${MAX_RANDOM} (the server's default limit).`);
    ui.randomSize.reportValidity();
    return;
  }
  ui.randomSize.setCustomValidity('');
  sendBytes(randomBytes(size), 'of random bytes');
});
// The compressible opposite of random bytes, for the compression help: watch the frame lengths.
ui.sendZeros.addEventListener('click', () => sendBytes(new Uint8Array(70000), 'of zero bytes'));
ui.randomSize.addEventListener('input', () => {
  ui.randomSize.setCustomValidity('');
  updateLengthNote();
});
for (const chip of document.querySelectorAll('.presets [data-size]')) {
  chip.addEventListener('click', () => {
    ui.randomSize.value = chip.dataset.size;
    ui.randomSize.setCustomValidity('');
    updateLengthNote();
    if (!ui.sendRandom.disabled) ui.sendRandom.focus();
  });
}

ui.file.addEventListener('change', refreshState);
ui.sendFile.addEventListener('click', () => {
  const c = conn;
  const file = ui.file.files[0];
  if (!c || !file) return;
  const entry = { kind: 'binary', size: file.size, head: null, name: file.name, arg: 'File' };
  const seq = track(c, entry);
  file.slice(0, PREVIEW_BYTES).arrayBuffer().then((b) => {
    entry.head = new Uint8Array(b);
    entry.rec.head = entry.head;
    render(entry.rec);
  });
  c.ws.send(file); // a File is a Blob: the browser reads and sends it
  logEvent('call', [h('code', null, 'ws.send(File)'), ` send #${seq}: ${JSON.stringify(file.name)}, ${formatBytes(file.size)}, binary frame`], { c });
  afterSend(c, seq);
});

for (const radio of document.querySelectorAll('input[name="binary-type"]')) {
  radio.addEventListener('change', () => {
    if (!radio.checked || !conn) return;
    conn.ws.binaryType = radio.value;
    logEvent('property', [h('code', null, `ws.binaryType = "${radio.value}"`), ' (applies to binary messages received from now on)'], { c: conn });
    refreshState();
  });
}

// ---------------------------------------------------------------- close

function closeSocket(codeText, reason) {
  const c = conn;
  if (!c) return;
  ui.closeError.hidden = true;
  const args = [];
  let call;
  if (codeText.trim() === '') {
    if (reason) args.push(undefined, reason);
    call = reason ? `ws.close(undefined, ${JSON.stringify(reason)})` : 'ws.close()';
  } else {
    // Number() then WebIDL's [Clamp] unsigned short: the browser decides what is allowed.
    const code = Number(codeText.trim());
    args.push(code, reason);
    call = `ws.close(${codeText.trim()}, ${JSON.stringify(reason)})`;
  }
  try {
    c.ws.close(...args);
  } catch (err) {
    const msg = `${err.name}: ${err.message}`;
    ui.closeError.textContent = `The browser refused: ${msg}`;
    ui.closeError.hidden = false;
    logEvent('call', [h('code', null, call), ' threw ', h('strong', null, msg)], { c, bad: true });
    return;
  }
  c.closeCalled = true;
  logEvent('call', [h('code', null, call), ` → readyState ${stateName(c.ws.readyState)}`], { c });
  startTicking();
}

ui.closeForm.addEventListener('submit', (e) => {
  e.preventDefault();
  closeSocket(ui.closeCode.value, ui.closeReason.value);
});

// ---------------------------------------------------------------- receive

function onMessage(c, ev) {
  const { data } = ev;
  if (c.inspect && typeof data === 'string') {
    const trace = parseTrace(data);
    // A trace is never an echo, unless the page itself sent that exact text and the server's
    // "out" frame for it was already reported (an echo always follows its own "out" trace).
    const head = c.pending[0];
    const isEcho = trace && head && head.kind === 'text' && head.text === data && c.outDataTraces > c.echoes;
    if (trace && !isEcho) {
      onTrace(c, trace);
      return;
    }
  }
  c.received++;
  if (c.unpaired && data === FRAGMENTED_TEXT) {
    c.unpaired--;
    addMessage(c, data, null, null);
    return;
  }
  c.echoes++;
  const sent = c.pending.shift() || null;
  const rtt = sent ? performance.now() - sent.t : null;
  addMessage(c, data, sent, rtt);
}

function addMessage(c, data, sent, rtt) {
  const n = ++messageSeq;
  let type;
  let cls;
  let size;
  let sizeNote = '';
  if (typeof data === 'string') {
    type = 'text';
    cls = 'string';
    size = utf8(data).length;
    sizeNote = `${data.length} UTF-16 units`;
  } else if (data instanceof ArrayBuffer) {
    type = 'binary';
    cls = 'ArrayBuffer';
    size = data.byteLength;
  } else {
    type = 'binary';
    cls = 'Blob';
    size = data.size;
  }

  const preview = h('td', { class: type === 'text' ? 'preview' : 'preview mono' });
  const echoCell = h('td', { class: 'echo-of' });
  const row = h('tr', { class: 'received', id: messageAnchor(c.id, 'out', c.received), dataset: { testid: 'message-row', index: n, type, cls, size, conn: c.id } },
    h('td', { class: 'num' }, String(n)),
    h('td', null, h('span', { class: 'dir out', title: 'received by this page' }, 'received ↓')),
    h('td', null, h('span', { class: `pill ${type}` }, type)),
    h('td', null, h('code', null, cls)),
    h('td', { class: 'num', title: sizeNote || undefined }, formatBytes(size), sizeNote ? h('div', { class: 'muted' }, sizeNote) : null,
      c.inspect ? h('div', null, h('a', { href: `#frame-${c.id}-out-${c.received}`, class: 'frame-link' }, 'its frame')) : null),
    preview,
    echoCell,
    h('td', { class: 'num rtt' }, rtt === null ? '—' : formatMs(rtt)));
  appendMessageRow(row);
  ui.messageCount.textContent = String(messageSeq);
  if (sent && sent.row) {
    sent.row.querySelector('.echo-of').replaceChildren(`echoed as #${n}`);
    sent.row.querySelector('.echo-of').classList.remove('muted');
    sent.row.querySelector('.rtt').textContent = formatMs(rtt);
  }

  const rec = addRecord({
    row, cell: preview, dir: 'received', kind: type, size, text: type === 'text' ? data : undefined,
    seq: n, conn: c.id, t: performance.now() - c.t0,
  });
  const whatLog = `${type}${type === 'binary' ? ` (${cls})` : ''}, ${formatBytes(size)}`;
  const logLine = logEvent('message', [whatLog, sent ? ` · echo of send #${sent.seq} after ${formatMs(rtt)}` : ''], { c });

  const showMatch = (head) => {
    if (!sent) {
      echoCell.append(h('span', { class: 'muted' }, 'no send pending'));
      return;
    }
    let same = sent.kind === type && sent.size === size;
    if (same && type === 'text') same = sent.text === data;
    if (same && type === 'binary' && sent.head && head) same = hex(sent.head) === hex(head);
    echoCell.append(`send #${sent.seq} `, h('span', { class: same ? 'ok' : 'bad', title: same ? 'same type and bytes' : 'differs from what was sent' }, same ? '✓' : '✗ differs'));
    row.dataset.match = String(same);
  };

  if (type === 'text') {
    showMatch(null);
  } else if (cls === 'ArrayBuffer') {
    rec.head = new Uint8Array(data, 0, Math.min(48, size)); // 48: base64 previews show more
    render(rec);
    showMatch(rec.head.subarray(0, PREVIEW_BYTES));
  } else {
    // A Blob's bytes can only be read asynchronously.
    data.slice(0, 48).arrayBuffer().then((buf) => {
      rec.head = new Uint8Array(buf);
      render(rec);
      showMatch(rec.head.subarray(0, PREVIEW_BYTES));
    });
  }
  return logLine;
}

$('clear-messages').addEventListener('click', () => {
  ui.messageList.replaceChildren();
  clearRecords();
  messageSeq = 0;
  ui.messageCount.textContent = '0';
  ui.messagesEmpty.hidden = false;
});

// ---------------------------------------------------------------- inspector

function resetInspector() {
  ui.frameList.replaceChildren();
  ui.frameCount.textContent = '0';
  ui.frameDetail.hidden = true;
  ui.frameDetail.replaceChildren();
  pinnedFrame = null;
  ui.handshakeView.hidden = true;
  ui.handshakeEmpty.hidden = false;
}

$('clear-frames').addEventListener('click', () => {
  if (conn) conn.frames = 0;
  ui.frameList.replaceChildren();
  ui.frameCount.textContent = '0';
  ui.frameDetail.hidden = true;
  pinnedFrame = null;
});

function showFrame(frame, index, row) {
  for (const r of ui.frameList.querySelectorAll('tr.selected')) {
    r.classList.remove('selected');
    r.querySelector('.row-select').setAttribute('aria-pressed', 'false');
  }
  row.classList.add('selected');
  row.querySelector('.row-select').setAttribute('aria-pressed', 'true');
  ui.frameDetail.replaceChildren(frameAnatomy(frame, index));
  ui.frameDetail.hidden = false;
}

function onTrace(c, trace) {
  if (sessionTraces.length < 10000) sessionTraces.push({ conn: c.id, ...trace });
  logEvent('message', [traceSummary(trace)], { c, trace: true });
  if (c !== conn) return;
  if (trace.uvws === 'command') {
    scenarioAnswer(c, trace);
    return;
  }
  if (trace.uvws === 'handshake') {
    renderHandshake(trace, {
      request: ui.handshakeRequest, response: ui.handshakeResponse, steps: ui.acceptSteps, check: ui.acceptCheck,
    });
    ui.handshakeView.hidden = false;
    ui.handshakeEmpty.hidden = true;
    return;
  }
  c.lastFrameAt = performance.now();
  if (trace.dir === 'out' && endsDataMessage(trace)) c.outDataTraces++;
  const index = ++c.frames;
  const row = frameRow(trace, index, (f, r) => {
    pinnedFrame = r;
    showFrame(f, index, r);
  }, c.id);
  const wrap = ui.frameList.closest('.table-scroll');
  const stick = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 40;
  ui.frameList.append(row);
  if (stick) wrap.scrollTop = wrap.scrollHeight;
  ui.frameCount.textContent = String(index);
  // Until the user picks a frame, show the anatomy of the latest data frame the browser sent.
  if (!pinnedFrame && trace.dir === 'in' && trace.opcode !== 8) showFrame(trace, index, row);
}

// ---------------------------------------------------------------- start

// A link to a help text (the guide's README links land on #help-trace-format, #help-chat) opens it.
function openTargetHelp() {
  const el = location.hash.length > 1 ? document.getElementById(location.hash.slice(1)) : null;
  if (el && el.tagName === 'DETAILS') {
    el.open = true;
    el.scrollIntoView();
  }
}
window.addEventListener('hashchange', openTargetHelp);
openTargetHelp();

const params = new URLSearchParams(location.search);
ui.url.value = params.get('url') || defaultUrl();
if (params.has('inspect')) {
  ui.inspect.checked = true;
  setUrlPath('/inspect');
} else {
  ui.inspect.checked = urlPath(ui.url.value) === '/inspect';
}
ui.compression.checked = !deflateOff(ui.url.value);
initScenarios({ current: () => conn, log: logEvent });
updateLengthNote();
refreshState();
showWscat();
fillRouteList();
if (params.has('connect')) connect();
document.documentElement.dataset.ready = 'true'; // for tests: the module has run
