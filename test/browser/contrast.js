'use strict';
// WCAG 2 contrast of every piece of text on a page, computed in the page from the rendered
// (computed) colours: the text colour composited over the backgrounds of the element and its
// ancestors, down to the canvas. Used by page.test.js; runs in the browser through
// page.evaluate(contrastProblems, minRatio).

/* eslint-env browser */
function contrastProblems(minRatio) {
  const canvas = document.createElement('canvas');
  canvas.width = 1;
  canvas.height = 1;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  // Any CSS colour (rgb(), color(srgb ...), color-mix results) to [r, g, b, a] in 0..255 / 0..1,
  // through a canvas: the browser parses its own serialisations.
  const rgba = (css) => {
    g.clearRect(0, 0, 1, 1);
    g.fillStyle = '#000';
    g.fillStyle = css;
    g.fillRect(0, 0, 1, 1);
    const [r, gr, b, a] = g.getImageData(0, 0, 1, 1).data;
    return [r, gr, b, a / 255];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
  };
  const lum = ([r, gr, b]) => {
    const f = (v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r) + 0.7152 * f(gr) + 0.0722 * f(b);
  };
  const ratio = (x, y) => {
    const [hi, lo] = [lum(x), lum(y)].sort((p, q) => q - p);
    return (hi + 0.05) / (lo + 0.05);
  };
  const rootBg = () => {
    const b = rgba(getComputedStyle(document.body).backgroundColor);
    return b[3] ? over(b, [255, 255, 255, 1]) : over(rgba(getComputedStyle(document.documentElement).backgroundColor), [255, 255, 255, 1]);
  };
  const background = (el) => {
    const chain = [];
    for (let e = el; e && e !== document.documentElement; e = e.parentElement) chain.push(rgba(getComputedStyle(e).backgroundColor));
    let bg = rootBg();
    for (const c of chain.reverse()) if (c[3]) bg = over(c, bg);
    return bg;
  };
  const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''}`;
  const problems = [];
  const seen = new Set();
  const check = (el, fg, what) => {
    const bg = background(el);
    const r = ratio(over(fg, bg), bg);
    const key = `${describe(el)} ${what}`;
    if (r < minRatio && !seen.has(key)) {
      seen.add(key);
      problems.push(`${key}: ${r.toFixed(2)}:1 (${getComputedStyle(el).color} on rgb(${bg.slice(0, 3).map(Math.round).join(', ')}))`);
    }
    return r;
  };
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.data.trim()) continue;
    const el = n.parentElement;
    if (!el || !el.getClientRects().length || el.closest('[hidden], [aria-hidden="true"], :disabled, noscript')) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden' || cs.opacity === '0') continue;
    check(el, rgba(cs.color), JSON.stringify(n.data.trim().slice(0, 24)));
    checked++;
  }
  for (const el of document.querySelectorAll('input[placeholder]:not(:disabled), textarea[placeholder]:not(:disabled)')) {
    if (!el.getClientRects().length) continue;
    check(el, rgba(getComputedStyle(el, '::placeholder').color), 'placeholder');
  }
  return { checked, problems };
}

module.exports = { contrastProblems };
