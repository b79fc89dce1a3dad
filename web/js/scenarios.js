// Server-side scenarios: buttons that send one JSON command to /inspect ({"uvws":"command",
// "do":...}, README "The inspector"), which makes the server ping, close first, drop the TCP
// connection, send a message in fragments or send an invalid frame. The page shows the server's
// answer and then what the browser made of it (the CloseEvent's code and wasClean).

import { h, closeCodeMeaning } from './util.js';

const $ = (id) => document.getElementById(id);

/** The text of the message the "fragments" command makes the server send. */
export const FRAGMENTED_TEXT = 'Fragmented: three frames, one message';

/** The command for button `what`; close takes the code and reason typed (the server checks them). */
export function commandText(what, code = '', reason = '') {
  const cmd = { uvws: 'command', do: what };
  if (what === 'close') {
    cmd.code = code.trim() === '' ? null : Number(code.trim());
    if (reason) cmd.reason = reason;
  }
  return JSON.stringify(cmd);
}

const EXPECT = {
  ping: 'look for an out ping and the browser’s in pong in the frame table: no event fires.',
  fragments: 'three frames (FIN 0, continuation, continuation FIN 1) and a ping between them, one message event.',
  close: 'the browser answers the close frame: close event with this code, wasClean true.',
  drop: 'no close frame comes: close event 1006, wasClean false.',
  invalid: 'the browser fails the connection: it sends close 1002 to the server, and the page gets error, then close 1006 with wasClean false.',
};

let api = null;
const buttons = () => document.querySelectorAll('#scenarios button.scenario');
const status = () => $('scenario-status');

function setStatus(parts, data = {}) {
  const el = status();
  el.replaceChildren(...parts);
  for (const key of Object.keys(el.dataset)) if (key !== 'testid') delete el.dataset[key];
  Object.assign(el.dataset, data);
}

/** Enables the buttons while an /inspect socket is open. Called whenever the page refreshes its state. */
export function refreshScenarios(c) {
  const usable = Boolean(c && c.inspect && c.ws.readyState === WebSocket.OPEN);
  for (const b of buttons()) b.disabled = !usable;
}

function run(what) {
  const c = api.current();
  if (!c || !c.inspect || c.ws.readyState !== WebSocket.OPEN) return;
  const text = commandText(what, $('scenario-code').value, $('scenario-reason').value);
  c.scenario = what;
  if (what === 'fragments') c.unpaired = (c.unpaired || 0) + 1; // a message that echoes no send
  c.ws.send(text);
  api.log('call', [h('code', null, `ws.send(${JSON.stringify(text)})`), ` · scenario “${what}”: ${EXPECT[what]}`], { c });
  setStatus([`Sent the “${what}” command; waiting for the server’s answer. Expect: ${EXPECT[what]}`],
    { scenario: what, state: 'sent' });
}

/** The server's {"uvws":"command"} answer. */
export function scenarioAnswer(c, answer) {
  if (c !== api.current()) return;
  setStatus([answer.ok ? `Server: ${answer.detail}` : h('span', { class: 'bad' }, `Server refused “${answer.do}”: ${answer.error}`)],
    { scenario: answer.do, state: answer.ok ? 'answered' : 'refused' });
}

/** The close event of a connection that ran a scenario: what the browser reports. */
export function scenarioClosed(c, ev) {
  if (!c.scenario || c !== api.current()) return;
  const el = status();
  const line = h('span', { class: 'close-result' },
    ` → close event: code ${ev.code} (${closeCodeMeaning(ev.code)}), reason ${JSON.stringify(ev.reason)}, wasClean ${ev.wasClean}.`);
  if (c.scenario === 'invalid') {
    line.append(' The browser sent close 1002 (protocol error) to the server, which its log shows, and tells the page only 1006: ' +
      'the page never learns why a connection failed.');
  }
  el.append(line);
  Object.assign(el.dataset, { state: 'closed', closeCode: String(ev.code), wasClean: String(ev.wasClean) });
}

/** `a` gives the page's state: { current(): conn, log(type, parts, opts) }. */
export function initScenarios(a) {
  api = a;
  for (const b of buttons()) b.addEventListener('click', () => run(b.dataset.do));
}
