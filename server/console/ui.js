// DOM helpers. Every string that comes from the server reaches the page as a text node or an
// attribute value set through the DOM (never innerHTML), so markup in a name or description
// shows as the characters it is.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let fieldSeq = 0;
// A labelled control: <div class="field"><label for=ID>Label</label><input id=ID></div> (the
// label does not wrap the control, so its accessible name is the label text alone).
export function field(label, control) {
  if (!control.id) control.id = 'f' + (++fieldSeq);
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control);
}

export function input(name, attrs = {}) {
  return h('input', Object.assign({ name, type: 'text', autocomplete: 'off' }, attrs));
}

export function select(name, options, value) {
  const s = h('select', { name });
  for (const o of options) {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    const opt = h('option', { value: v, text: label });
    if (v === value) opt.selected = true;
    s.appendChild(opt);
  }
  return s;
}

export function fmtTime(unix) {
  if (unix === undefined || unix === null || unix === 0 || unix === '') return '—';
  // Audit records carry RFC 3339 text; the rest of the API unix seconds.
  const d = typeof unix === 'string' ? new Date(unix) : new Date(unix * 1000);
  if (isNaN(d.getTime())) return String(unix);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function badge(text, kind) {
  return h('span', { class: 'badge ' + kind, text });
}

// A table: columns are [header, (row) => cell content]; onRow makes rows clickable and
// keyboard-activatable (Enter), for lists that open a detail.
// rowAttrs(row) gives attributes of each <tr> (data-* for tests and styles).
export function table(columns, rows, { onRow, caption, empty, rowAttrs } = {}) {
  if (!rows.length) return h('p', { class: 'muted', text: empty || 'Nothing to show.' });
  const thead = h('thead', {}, h('tr', {}, columns.map(([head]) => h('th', { scope: 'col', text: head }))));
  const tbody = h('tbody');
  for (const r of rows) {
    const tr = h('tr', rowAttrs ? rowAttrs(r) : {}, columns.map(([, cell, cls]) => h('td', { class: cls || null }, cell(r))));
    if (onRow) {
      tr.classList.add('clickable');
      tr.tabIndex = 0;
      tr.addEventListener('click', (e) => { if (!e.target.closest('button, a, input, select')) onRow(r, tr); });
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' && e.target === tr) onRow(r, tr); });
    }
    tbody.appendChild(tr);
  }
  return h('div', { class: 'table-wrap' }, h('table', {}, caption ? h('caption', { class: 'muted', text: caption }) : null, thead, tbody));
}

export function kv(pairs) {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    dl.appendChild(h('dt', { text: k }));
    dl.appendChild(h('dd', {}, v === null ? '—' : v));
  }
  return dl;
}

// An API error as its human message, with the machine code secondary.
export function errorBox(err) {
  const box = h('div', { class: 'error', role: 'alert' });
  box.appendChild(h('span', { class: 'msg', text: err && err.message ? err.message : String(err) }));
  if (err && err.code) box.appendChild(h('span', { class: 'code', text: err.code + (err.status ? ' · HTTP ' + err.status : '') }));
  return box;
}

export function notice(text) {
  return h('div', { class: 'notice', role: 'status', text });
}

// A secret shown once (API key, enrollment token).
export function secretBox(title, value, note) {
  return h('div', { class: 'secret', role: 'status' },
    h('strong', { text: title }),
    h('code', { class: 'secret-value', text: value }),
    h('span', { class: 'muted', text: note || 'Shown once: copy it now. The server keeps only its hash.' }));
}

// A form whose submit runs fn(values); errors show in the form, the button is disabled
// meanwhile. values holds every named control's value (checkboxes as booleans).
export function form(cls, controls, submitLabel, fn, opts = {}) {
  const out = h('div', { class: 'form-out' });
  const btn = h('button', { type: 'submit', class: opts.danger ? 'danger' : null, text: submitLabel });
  const f = h('form', { class: cls, novalidate: true }, controls, h('div', { class: 'actions' }, btn));
  if (opts.name) f.setAttribute('aria-label', opts.name);
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = {};
    for (const el of f.elements) {
      if (!el.name) continue;
      values[el.name] = el.type === 'checkbox' ? el.checked : el.value;
    }
    clear(out);
    btn.disabled = true;
    try {
      const r = await fn(values, out, f);
      if (r instanceof Node) out.appendChild(r);
    } catch (err) {
      out.appendChild(errorBox(err));
    } finally {
      btn.disabled = false;
    }
  });
  return h('div', {}, f, out);
}

// A collapsible action panel (keyboard: summary is focusable and toggles with Enter/Space).
export function action(title, body, open) {
  return h('details', { class: 'action', open: !!open }, h('summary', { text: title }), body);
}

export function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type: type || 'application/octet-stream' }));
  const a = h('a', { href: url, download: filename });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// Signatures and denials per day as grouped bars. rows: [{day, signatures, denials}] (one per
// day, days without rows count zero).
export function usageChart(rows, days, label) {
  const byDay = new Map();
  for (const r of rows) {
    const e = byDay.get(r.day) || { signatures: 0, denials: 0 };
    e.signatures += r.signatures || 0;
    e.denials += r.denials || 0;
    byDay.set(r.day, e);
  }
  const list = [];
  const today = new Date();
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    const key = d.toISOString().slice(0, 10);
    const e = byDay.get(key) || { signatures: 0, denials: 0 };
    list.push({ key, attr: { 'data-day': key }, tick: key.slice(5), title: key, signatures: e.signatures, denials: e.denials });
  }
  return barChart(list, label, `${days} days`, 'day');
}

// Signatures and denials per hour, from the server's hourly answer: [{start, signatures,
// denials}] oldest first, one entry per hour (zeros included).
export function hourlyChart(hours, label) {
  const list = hours.map((x) => {
    const t = new Date(x.start * 1000).toISOString();
    const stamp = t.slice(0, 10) + ' ' + t.slice(11, 16) + ' UTC';
    return { key: String(x.start), attr: { 'data-start': x.start }, tick: t.slice(11, 13) === '00' ? t.slice(5, 10) : t.slice(11, 13) + 'h',
      title: stamp, signatures: x.signatures || 0, denials: x.denials || 0 };
  });
  return barChart(list, label, `${hours.length} hours`, 'hour');
}

// Grouped bars: list [{attr, tick, title, signatures, denials}], one slot each.
function barChart(list, label, span, cls) {
  const max = Math.max(1, ...list.map((d) => Math.max(d.signatures, d.denials)));
  const W = 720, H = 220, left = 36, bottom = 28, top = 10;
  const plotH = H - bottom - top, slot = (W - left - 8) / Math.max(1, list.length), bw = Math.max(1, slot / 2 - 1);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img' });
  const total = list.reduce((a, d) => [a[0] + d.signatures, a[1] + d.denials], [0, 0]);
  const summary = `${label}: ${total[0]} signatures and ${total[1]} denials in ${span}`;
  svg.setAttribute('aria-label', summary);
  svg.appendChild(s('title', {}, summary));
  svg.appendChild(s('line', { class: 'axis', x1: left, y1: H - bottom, x2: W - 4, y2: H - bottom }));
  svg.appendChild(s('text', { x: 2, y: top + 8 }, String(max)));
  svg.appendChild(s('text', { x: 2, y: H - bottom }, '0'));
  const every = list.length <= 16 ? 1 : Math.ceil(list.length / 12);
  list.forEach((d, i) => {
    const x = left + i * slot;
    const hs = (d.signatures / max) * plotH, hd = (d.denials / max) * plotH;
    const g = s('g', Object.assign({ class: cls, 'data-signatures': d.signatures, 'data-denials': d.denials }, d.attr));
    g.appendChild(s('title', {}, `${d.title}: ${d.signatures} signatures, ${d.denials} denials`));
    g.appendChild(s('rect', { class: 'bar-sig', x: x + 1, y: H - bottom - hs, width: bw, height: hs }));
    g.appendChild(s('rect', { class: 'bar-den', x: x + 1 + bw + 1, y: H - bottom - hd, width: bw, height: hd }));
    if (i % every === 0) g.appendChild(s('text', { x: x + 1, y: H - 10 }, d.tick));
    svg.appendChild(g);
  });
  return h('figure', { class: 'usage', 'data-signatures': total[0], 'data-denials': total[1] },
    svg,
    h('figcaption', { class: 'legend' },
      h('span', {}, h('span', { class: 'sw sig' }), `signatures (${total[0]})`),
      h('span', {}, h('span', { class: 'sw den' }), `denials (${total[1]})`)));
}

// ---- minimal DER reading, to show a certificate's subject CN and validity -------------------

function derItem(b, off) {
  const tag = b[off];
  let len = b[off + 1], hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[off + 2 + i];
    hdr = 2 + n;
  }
  return { tag, start: off + hdr, end: off + hdr + len };
}
function derChildren(b, item) {
  const out = [];
  for (let off = item.start; off < item.end;) {
    const c = derItem(b, off);
    out.push(c);
    off = c.end;
  }
  return out;
}

// {subject: "CN=..., O=...", issuer, notAfter (unix)} or null when it does not parse.
export function certInfo(b64) {
  try {
    const bin = atob(b64);
    const b = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
    const cert = derItem(b, 0);
    const tbs = derChildren(b, derChildren(b, cert)[0]);
    const i0 = tbs[0].tag === 0xa0 ? 1 : 0;
    const name = (item) => {
      const parts = [];
      for (const set of derChildren(b, item)) {
        for (const atv of derChildren(b, set)) {
          const [oid, val] = derChildren(b, atv);
          const o = Array.from(b.slice(oid.start, oid.end)).join('.');
          const label = { '85.4.3': 'CN', '85.4.10': 'O', '85.4.11': 'OU', '85.4.6': 'C' }[o] || 'OID';
          parts.push(label + '=' + new TextDecoder().decode(b.slice(val.start, val.end)));
        }
      }
      return parts.join(', ');
    };
    const validity = derChildren(b, tbs[i0 + 3]);
    const t = new TextDecoder().decode(b.slice(validity[1].start, validity[1].end));
    const full = validity[1].tag === 0x17 ? (parseInt(t.slice(0, 2), 10) >= 50 ? '19' : '20') + t : t;
    const notAfter = Date.UTC(+full.slice(0, 4), +full.slice(4, 6) - 1, +full.slice(6, 8), +full.slice(8, 10),
      +full.slice(10, 12), +full.slice(12, 14)) / 1000;
    return { issuer: name(tbs[i0 + 2]), subject: name(tbs[i0 + 4]), notAfter };
  } catch (e) {
    return null;
  }
}

export function pemFromB64(b64, label) {
  const lines = b64.match(/.{1,64}/g) || [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
