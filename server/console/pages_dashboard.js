// Dashboard: health of the server's components, recent alerts, usage per day, pending
// approvals, and keys whose certificate expires soon (admins); a signer's keys and approvals (signers).
import { get, qs, isAdmin } from './api.js';
import { h, table, errorBox, usageChart, hourlyChart, fmtTime, badge } from './ui.js';

const DAY = 86400;

function isoDay(offsetDays) {
  return new Date(Date.now() + offsetDays * DAY * 1000).toISOString().slice(0, 10);
}

// Runs each loader into its own card so one failing call does not hide the others.
async function card(parent, title, load, cls) {
  const c = h('section', { class: 'card ' + (cls || ''), 'aria-label': title }, h('h2', { text: title }));
  parent.appendChild(c);
  try {
    const content = await load();
    if (content) c.appendChild(content);
  } catch (err) {
    c.appendChild(errorBox(err));
  }
  return c;
}

// One /healthz answer for the two cards that show it.
async function healthz() {
  const r = await fetch('/healthz', { cache: 'no-store' });
  return r.json();
}

function health(doc) {
  const rows = [];
  for (const [name, v] of Object.entries(doc)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && 'ok' in v) rows.push([name, v]);
  }
  return h('div', {},
    h('p', {}, 'Status: ', badge(doc.status, doc.status === 'ok' ? 'ok' : 'bad')),
    table([
      ['Component', ([n]) => n],
      ['State', ([, v]) => badge(v.ok ? 'ok' : 'failing', v.ok ? 'ok' : 'bad')],
      ['Detail', ([, v]) => {
        if (v.detail) return String(v.detail);
        return Object.entries(v).filter(([k, x]) => k !== 'ok' && typeof x !== 'object').map(([k, x]) => `${k.replace(/_/g, ' ')}: ${x}`).join(' · ');
      }],
    ], rows));
}

// The signing queue and each audit exporter's progress (informative: neither fails /healthz).
function exportersAndQueue(doc) {
  const q = doc.queue;
  return h('div', {},
    q && typeof q === 'object'
      ? h('p', { class: 'queue', 'data-waiting': q.waiting, 'data-limit': q.limit },
        `Signing queue: ${q.waiting} request${q.waiting === 1 ? '' : 's'} waiting (limit ${q.limit}) `,
        badge(q.waiting >= q.limit ? 'full' : 'ok', q.waiting >= q.limit ? 'bad' : 'ok'))
      : h('p', { class: 'muted', text: 'This server does not report its queue.' }),
    Array.isArray(doc.exporters)
      ? table([
        ['Audit exporter', (e) => h('span', { class: 'mono', text: e.sink })],
        ['Delivered up to', (e) => `record ${e.delivered_seq}`],
        ['Behind', (e) => badge(`${e.lag_records} record${e.lag_records === 1 ? '' : 's'} behind`, e.lag_records > 0 ? 'warn' : 'ok')],
        ['Last delivery', (e) => fmtTime(e.updated_at)],
      ], doc.exporters, { empty: 'No audit exporter is configured.',
        rowAttrs: (e) => ({ class: 'exporter', 'data-delivered': e.delivered_seq, 'data-lag': e.lag_records }) })
      : h('p', { class: 'muted', text: 'This server does not report its exporters.' }));
}

const SEVERITY = { info: 'ok', warning: 'warn', high: 'bad', critical: 'bad' };
const DELIVERY = { delivered: 'ok', pending: 'warn', dropped: 'bad', no_webhooks: 'ok' };

// The newest alerts (GET /api/v1/admin/alerts) and how far each webhook has taken them.
async function recentAlerts() {
  const r = await get('/api/v1/admin/alerts' + qs({ limit: 10 }));
  if (!r.enabled) return h('p', { class: 'muted', text: 'No alert rules are configured (alerts_config).' });
  const detail = (a) => {
    const d = (a.event && a.event.details) || {};
    return Object.entries(d).filter(([, x]) => typeof x !== 'object').map(([k, x]) => `${k.replace(/_/g, ' ')}: ${x}`).join(' · ');
  };
  return h('div', {},
    table([
      ['Time', (a) => fmtTime(a.time)],
      ['Rule', (a) => h('span', { class: 'mono', text: a.rule })],
      ['Severity', (a) => badge(a.severity, SEVERITY[a.severity] || 'warn')],
      ['Subject', (a) => a.subject],
      ['Details', detail],
      ['Webhooks', (a) => badge(a.delivery.replace('_', ' '), DELIVERY[a.delivery] || 'warn')],
    ], r.alerts, { empty: 'No alert has been raised.',
      rowAttrs: (a) => ({ class: 'alert', 'data-rule': a.rule, 'data-id': a.id, 'data-delivery': a.delivery }) }),
    ...r.webhooks.map((w) => h('p', { class: 'webhook muted', 'data-failures': w.failures },
      `Webhook ${w.url}: ${w.delivered} delivered`,
      w.failures ? ` · ${w.failures} failed attempt${w.failures === 1 ? '' : 's'} (${w.last_error || ''})` : '')));
}

const REQUEST_STATE = { pending: 'warn', approved: 'ok', signed: 'ok', rejected: 'bad', expired: 'bad' };

// The caller's own sign requests that needed approval, newest first, with their state.
async function myRequests() {
  const r = await get('/api/v1/sign/requests');
  return table([
    ['Request', (a) => h('span', { class: 'mono', text: a.approval_id })],
    ['Key', (a) => a.key || (a.request && a.request.key) || ''],
    ['State', (a) => badge(a.status, REQUEST_STATE[a.status] || 'warn')],
    ['Approvals', (a) => `${a.approvals}/${a.required}`],
    ['Requested', (a) => fmtTime(a.created_at)],
    ['Expires', (a) => fmtTime(a.expires_at)],
    ['Application', (a) => (a.request && a.request.context && a.request.context.application) || ''],
  ], r.requests, { empty: 'You have no sign request that needed approval.', caption: 'At most the latest 100' });
}

export async function expiringKeys(days) {
  const r = await get('/api/v1/admin/keys');
  const limit = Date.now() / 1000 + days * DAY;
  return r.keys.filter((k) => k.certificate_not_after && k.certificate_not_after < limit);
}

export async function dashboardPage(m) {
  m.appendChild(h('h1', { text: 'Dashboard' }));
  const grid = h('div', { class: 'grid' });
  m.appendChild(grid);
  const jobs = [];
  if (isAdmin()) {
    const doc = healthz();
    jobs.push(card(grid, 'Health', async () => health(await doc)));
    jobs.push(card(grid, 'Exporters and queue', async () => exportersAndQueue(await doc), 'wide'));
    jobs.push(card(grid, 'Alerts', recentAlerts, 'wide'));
    jobs.push(card(grid, 'Signatures and denials per hour (48 hours)', async () => {
      const u = await get('/api/v1/admin/usage/hourly' + qs({ hours: 48 }));
      return h('div', { class: 'hourly' }, hourlyChart(u.hours, 'All keys, per hour'));
    }, 'wide'));
    jobs.push(card(grid, 'Signatures and denials per day (14 days)', async () => {
      const u = await get('/api/v1/admin/usage' + qs({ from: isoDay(-13), to: isoDay(0), limit: 5000 }));
      return h('div', {}, usageChart(u.usage, 14, 'All keys'),
        h('p', { class: 'muted', text: `Totals: ${u.totals.signatures} signatures, ${u.totals.denials} denials${u.truncated ? ' (truncated)' : ''}` }));
    }, 'wide'));
    jobs.push(card(grid, 'Certificates expiring within 30 days', async () => {
      const keys = await expiringKeys(30);
      return table([
        ['Key', (k) => h('a', { href: '#/keys/' + encodeURIComponent(k.name), text: k.name })],
        ['Expires', (k) => fmtTime(k.certificate_not_after)],
        ['Project', (k) => k.project || '—'],
      ], keys, { empty: 'No certificate expires within 30 days.' });
    }));
  } else {
    jobs.push(card(grid, 'My keys', async () => {
      const r = await get('/api/v1/keys');
      return table([
        ['Key', (k) => k.name], ['Type', (k) => k.type],
        ['Certificate until', (k) => fmtTime(k.certificate_not_after)],
      ], r.keys, { empty: 'No key is available to you.' });
    }));
    jobs.push(card(grid, 'My requests', myRequests, 'wide'));
    jobs.push(card(grid, 'My usage (30 days)', async () => {
      const u = await get('/api/v1/usage' + qs({ from: isoDay(-29), to: isoDay(0) }));
      return h('div', { class: 'my-usage' }, usageChart(u.usage, 30, 'My signatures'),
        h('p', { class: 'muted', text: `Totals: ${u.totals.signatures} signatures, ${u.totals.denials} denials${u.truncated ? ' (truncated)' : ''}` }));
    }, 'wide'));
    jobs.push(card(grid, 'My projects', async () => {
      const r = await get('/api/v1/admin/projects');
      return table([['Project', (p) => h('a', { href: '#/projects/' + encodeURIComponent(p.name), text: p.name })],
        ['Description', (p) => p.description || '']], r.projects, { empty: 'You hold no project role.' });
    }));
  }
  jobs.push(card(grid, 'Pending approvals', async () => {
    const r = await get('/api/v1/approvals');
    const waiting = r.approvals.filter((a) => !a.decided_by_me);
    return h('div', {},
      h('p', { class: 'big', 'data-testid': 'pending-count', text: String(waiting.length) }),
      h('p', {}, h('a', { href: '#/approvals', text: 'Open approvals' })));
  }));
  await Promise.all(jobs);
}
