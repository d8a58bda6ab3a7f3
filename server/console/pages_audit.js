// Audit: a filter form, the matching records oldest first with cursor paging ("more"), one
// record's detail, and an export of the shown records as JSON lines or CSV.
import { get, qs } from './api.js';
import { h, field, input, select, form, fmtTime, clear, table, download, badge, kv, errorBox } from './ui.js';

const OUTCOMES = [['', '(any)'], 'ok', 'allowed', 'denied', 'error', 'pending'];

function toUnix(local) {
  return local ? String(Math.floor(Date.parse(local + 'Z') / 1000)) : '';
}

function summary(r) {
  const d = r.detail || {};
  const parts = [];
  for (const k of ['key', 'user', 'project', 'code', 'message', 'reason', 'machine', 'rule']) {
    const v = k === 'rule' && d.policy ? d.policy.rule : d[k];
    if (v !== undefined && v !== null && typeof v !== 'object') parts.push(`${k}=${v}`);
  }
  return parts.join(' ');
}

export function csvCell(v) {
  const s = v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  // A leading =, +, - or @ would be a formula in a spreadsheet: quote it as text.
  const safe = /^[=+\-@\t\r]/.test(s) ? "'" + s : s;
  return /[",\n\r]/.test(safe) ? '"' + safe.replace(/"/g, '""') + '"' : safe;
}

// The chain's verified state: every record's hash and link and every signed checkpoint,
// checked by the server (its answer is at most 30 s old).
export async function chainStatus() {
  const box = h('section', { class: 'card audit-status', 'aria-label': 'Chain verification' },
    h('h2', { text: 'Chain verification' }));
  let st;
  try {
    st = await get('/api/v1/admin/audit/status');
  } catch (err) {
    box.appendChild(errorBox(err));
    return box;
  }
  const c = st.checkpoints || {};
  box.dataset.intact = String(!!st.intact);
  box.dataset.lastSeq = String(c.last_seq || 0);
  box.appendChild(h('p', { class: 'verdict' }, badge(st.intact ? 'intact' : 'broken', st.intact ? 'ok' : 'bad'),
    st.intact ? ` All ${st.records} records and their signed checkpoints verify.` : ` The chain does not verify from record ${st.first_bad}.`));
  box.appendChild(kv([
    ['Records', String(st.records)],
    ['First bad record', st.intact ? undefined : String(st.first_bad ?? '—')],
    ['Reason', st.intact ? undefined : h('span', { class: 'reason', text: st.reason || '' })],
    ['Last signed checkpoint', c.last_seq ? h('span', { class: 'last-checkpoint', text: `record ${c.last_seq}` }) : 'none yet'],
    ['Checkpoints', c.verified ? 'verified' : 'not verified'],
    ['Records after it (not yet signed)', String(c.unchecked_records ?? '—')],
    ['Audit key (SHA-256 of its public key)', c.key_sha256 ? h('span', { class: 'mono', text: c.key_sha256 }) : null],
    ['HSM high-water mark', c.hsm_mark_checked ? `checked: record ${c.hsm_mark_seq}` : 'not checked'],
    ['Checked at', fmtTime(st.checked_at)],
  ]));
  return box;
}

export async function auditPage(m) {
  m.appendChild(h('h1', { text: 'Audit' }));
  m.appendChild(await chainStatus());
  let records = [];
  let filter = {};
  let next = 0;
  const tableBox = h('div', { class: 'audit-records' });
  const detail = h('section', { class: 'card audit-detail', 'aria-label': 'Record detail', hidden: true });
  const more = h('button', { type: 'button', class: 'secondary', text: 'More', hidden: true, onclick: () => page(false) });
  const info = h('p', { class: 'muted', role: 'status' });
  const exports = h('div', { class: 'actions' },
    h('button', { type: 'button', class: 'secondary', text: 'Export JSON lines', onclick: () =>
      download('signum-audit.jsonl', records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''), 'application/x-ndjson') }),
    h('button', { type: 'button', class: 'secondary', text: 'Export CSV', onclick: () => {
      const cols = ['seq', 'time', 'actor', 'action', 'outcome', 'hash', 'prev', 'detail'];
      const lines = [cols.join(',')].concat(records.map((r) => cols.map((c) => csvCell(r[c])).join(',')));
      download('signum-audit.csv', lines.join('\r\n') + '\r\n', 'text/csv');
    } }));

  m.appendChild(form('inline', [
    field('Actor (e.g. user:alice)', input('actor')),
    field('Action (e.g. sign)', input('action')),
    field('Outcome', select('outcome', OUTCOMES, '')),
    field('Key', input('key')),
    field('Project', input('project')),
    field('Request id', input('request_id')),
    field('Since (UTC)', input('since', { type: 'datetime-local' })),
    field('Until (UTC)', input('until', { type: 'datetime-local' })),
    field('Page size', input('limit', { type: 'number', min: 1, max: 1000, value: '100' })),
  ], 'Search', async (v) => {
    filter = { actor: v.actor.trim(), action: v.action.trim(), outcome: v.outcome, key: v.key.trim(),
      project: v.project.trim(), request_id: v.request_id.trim(), since: toUnix(v.since), until: toUnix(v.until), limit: v.limit };
    await page(true);
  }, { name: 'Audit filter' }));
  m.appendChild(info);
  m.appendChild(tableBox);
  m.appendChild(h('div', { class: 'actions' }, more, exports));
  m.appendChild(detail);

  function show(r, tr) {
    for (const x of tableBox.querySelectorAll('tr.selected')) x.classList.remove('selected');
    if (tr) tr.classList.add('selected');
    detail.hidden = false;
    clear(detail).appendChild(h('h2', { text: `Record ${r.seq}: ${r.action}` }));
    detail.appendChild(h('p', { class: 'muted', text: `${fmtTime(r.time)} · ${r.actor} · ${r.outcome}` }));
    detail.appendChild(h('pre', { class: 'json', text: JSON.stringify(r, null, 2) }));
  }

  async function page(fresh) {
    if (fresh) { records = []; next = 0; detail.hidden = true; }
    const query = qs(filter);
    const r = await get('/api/v1/admin/audit' + qs(Object.assign({}, filter, { after: next })));
    records = records.concat(r.records);
    next = r.next_after;
    more.hidden = !r.more;
    info.textContent = `${records.length} record${records.length === 1 ? '' : 's'} shown${r.more ? '; more match after record ' + next : ''}.`;
    clear(tableBox).appendChild(table([
      ['Seq', (x) => String(x.seq)],
      ['Time', (x) => fmtTime(x.time)],
      ['Actor', (x) => x.actor],
      ['Action', (x) => x.action],
      ['Outcome', (x) => badge(x.outcome, x.outcome === 'denied' || x.outcome === 'error' ? 'bad' : x.outcome === 'pending' ? 'warn' : 'ok')],
      ['Summary', summary, 'mono'],
    ], records, { empty: 'No record matches.', onRow: show }));
    tableBox.dataset.query = query; // what the table shows (tests wait for it)
  }
  await page(true);
}
