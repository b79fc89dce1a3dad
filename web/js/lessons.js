// Lessons: short programs a learner can read and run. What the page shows is each function's own
// source (Function.prototype.toString), so the code on screen is exactly the code that runs. Each
// gets the /echo URL of this server and `log(text)`, and resolves when it is done.

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// 1. Sending a lot without queueing it all: wait while bufferedAmount is above a mark.
async function sendWithBackpressure(url, log) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const chunk = new Uint8Array(256 * 1024); // 256 KiB per message
  const highWater = 1024 * 1024; // never queue more than about 1 MiB
  let peak = 0;
  let waits = 0;
  for (let i = 0; i < 32; i++) {
    while (ws.bufferedAmount > highWater) { // no event tells when it falls: poll
      waits++;
      await sleep(5);
    }
    ws.send(chunk);
    peak = Math.max(peak, ws.bufferedAmount);
  }
  log(`sent 32 × 256 KiB = 8 MiB; bufferedAmount peaked at ${peak} bytes, the loop waited ${waits} times`);
  ws.close(1000, 'done');
  return { peak, waits };
}

// 2. Reconnecting after 1006 with exponential backoff and jitter, giving up after a few tries.
async function reconnectWithBackoff(url, log, { tries = 4, base = 200 } = {}) {
  for (let attempt = 1; attempt <= tries; attempt++) {
    const ws = new WebSocket(url);
    const result = await new Promise((resolve) => {
      ws.onopen = () => resolve({ opened: true });
      ws.onclose = (e) => resolve({ opened: false, code: e.code });
    });
    if (result.opened) {
      log(`attempt ${attempt}: open`);
      ws.close(1000);
      return { attempts: attempt, opened: true };
    }
    const delay = Math.round(base * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)); // jitter: not all clients at once
    log(`attempt ${attempt}: close ${result.code}${attempt < tries ? `, next try in ${delay} ms` : ', giving up'}`);
    if (attempt < tries) await sleep(delay);
  }
  return { attempts: tries, opened: false };
}

// 3. An application-level heartbeat: the page cannot see or send pings, so it sends its own
//    message and expects the echo within a deadline, else it declares the connection dead.
async function heartbeat(url, log, { beats = 3, every = 500, deadline = 2000 } = {}) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const rtts = [];
  for (let i = 1; i <= beats; i++) {
    const sent = performance.now();
    const answered = new Promise((resolve) => {
      ws.onmessage = (e) => { if (JSON.parse(e.data).beat === i) resolve(true); };
    });
    ws.send(JSON.stringify({ type: 'heartbeat', beat: i }));
    const alive = await Promise.race([answered, sleep(deadline).then(() => false)]);
    if (!alive) {
      log(`beat ${i}: no answer within ${deadline} ms, closing`);
      ws.close(4000, 'heartbeat lost');
      return { rtts, alive: false };
    }
    rtts.push(performance.now() - sent);
    log(`beat ${i}: answered in ${rtts[rtts.length - 1].toFixed(1)} ms`);
    await sleep(every);
  }
  ws.close(1000, 'done');
  return { rtts, alive: true };
}

export const LESSONS = {
  backpressure: { fn: sendWithBackpressure, path: '/echo' },
  backoff: { fn: reconnectWithBackoff, path: '/no-server-here' },
  heartbeat: { fn: heartbeat, path: '/echo' },
};

function wsUrl(path) {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

/** Runs lesson `name`, printing to its output box; resolves with the lesson's result. */
export async function runLesson(name) {
  const { fn, path } = LESSONS[name];
  const out = $(`lesson-${name}-out`);
  const button = $(`lesson-${name}-run`);
  out.textContent = '';
  button.disabled = true;
  const log = (text) => { out.textContent += `${text}\n`; };
  try {
    return await fn(wsUrl(path), log);
  } catch (err) {
    log(`failed: ${err && err.message ? err.message : 'the connection could not be opened'}`);
    return null;
  } finally {
    button.disabled = false;
  }
}

for (const name of Object.keys(LESSONS)) {
  const code = $(`lesson-${name}-code`);
  if (!code) continue;
  code.textContent = LESSONS[name].fn.toString();
  $(`lesson-${name}-run`).addEventListener('click', () => runLesson(name));
}
window.uvwsLessons = { runLesson }; // for the console, and the tests
