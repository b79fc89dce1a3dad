// The frame decoder card: hex pasted by the learner, taken apart by decode.js into /inspect's
// frame descriptions and shown with the inspector's own table row and bit-by-bit anatomy.

import { h } from './util.js';
import { parseHex, decodeFrames } from './decode.js';
import { frameRow, frameAnatomy } from './inspector.js';

const $ = (id) => document.getElementById(id);

// RFC 6455 section 5.7: a masked "Hello", then a fragmented unmasked one with a ping between.
const EXAMPLE = '81 85 37 fa 21 3d 7f 9f 4d 51 58\n01 03 48 65 6c 89 00 80 02 6c 6f';

function showDetail(frame, index, row) {
  for (const r of $('decoder-list').querySelectorAll('tr.selected')) {
    r.classList.remove('selected');
    r.querySelector('.row-select').setAttribute('aria-pressed', 'false');
  }
  row.classList.add('selected');
  row.querySelector('.row-select').setAttribute('aria-pressed', 'true');
  $('decoder-detail').replaceChildren(frameAnatomy(frame, index));
  $('decoder-detail').hidden = false;
}

function decode() {
  const out = $('decoder-result');
  const list = $('decoder-list');
  list.replaceChildren();
  $('decoder-detail').hidden = true;
  let bytes;
  try {
    bytes = parseHex($('decoder-input').value);
  } catch (err) {
    out.className = 'callout bad';
    out.textContent = `Not hex bytes: ${err.message}.`;
    return;
  }
  const { frames, error } = decodeFrames(bytes, { deflate: $('decoder-deflate').checked });
  frames.forEach((f, i) => {
    const row = frameRow(f, i + 1, (frame, r) => showDetail(frame, i + 1, r));
    row.dataset.testid = 'decoded-row';
    list.append(row);
    const said = [...f.problems.map((p) => ['bad', `uvws closes with 1002: ${p}`]), ...f.notes.map((n) => ['muted', n])];
    if (said.length) {
      list.append(h('tr', { class: 'frame-notes', dataset: { testid: 'decoded-notes', index: i + 1 } },
        h('td', { colspan: 12 }, ...said.map(([cls, text]) => h('div', { class: cls }, text)))));
    }
  });
  if (frames.length) showDetail(frames[0], 1, list.querySelector('tr.frame'));
  const bad = frames.reduce((n, f) => n + f.problems.length, 0);
  out.className = error || bad ? 'callout bad' : 'hint';
  out.textContent = `${bytes.length} bytes, ${frames.length} frame${frames.length === 1 ? '' : 's'}` +
    `${bad ? `, ${bad} problem${bad === 1 ? '' : 's'} uvws would close the connection for` : ''}` +
    `${error ? `; then ${error}` : '.'}`;
}

$('decoder-form').addEventListener('submit', (e) => {
  e.preventDefault();
  decode();
});
$('decoder-example').addEventListener('click', () => {
  $('decoder-input').value = EXAMPLE;
  decode();
});
