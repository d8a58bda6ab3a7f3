// Keys: list and create (with a certificate choice); one key: certificate, CSR download,
// chain import, renewal, rotation, disable, suspend and enable, project, usage chart.
// Signers see the keys they may use (GET /api/v1/keys).
import { get, post, put, qs, enc, isAdmin } from './api.js';
import { h, table, field, input, select, form, action, fmtTime, notice, badge, clear, kv, certInfo,
  usageChart, download, pemFromB64 } from './ui.js';

const TYPES = ['ec-p256', 'ec-p384', 'rsa2048', 'rsa3072', 'rsa4096'];
const status = (text) => window.dispatchEvent(new CustomEvent('signum-status', { detail: text }));
const rerender = () => window.dispatchEvent(new HashChangeEvent('hashchange'));

function subjectOf(k) {
  if (!k.certificate) return '—';
  const c = certInfo(k.certificate);
  return c ? c.subject : '(unreadable certificate)';
}

export async function keysPage(m) {
  if (!isAdmin()) return myKeys(m);
  m.appendChild(h('h1', { text: 'Keys' }));
  const list = h('div');
  const projects = (await get('/api/v1/admin/projects')).projects.map((p) => p.name);
  m.appendChild(action('Create a key', form('stack', [
    field('Name', input('name', { required: true })),
    field('Type', select('type', TYPES, 'ec-p256')),
    field('Certificate', select('certificate', [['builtin', 'from the built-in CA'], ['external', 'external CA (a CSR comes back)'], ['none', 'none']], 'builtin')),
    field('Common name (built-in or external)', input('common_name', { size: 40 })),
    field('Organization', input('organization')),
    field('Validity (days, built-in)', input('validity_days', { type: 'number', min: 1 })),
    field('Project', select('project', [['', '(none)'], ...projects.map((p) => [p, p])], '')),
  ], 'Create key', async (v) => {
    const body = { name: v.name.trim(), type: v.type, certificate: v.certificate };
    if (v.common_name.trim()) body.common_name = v.common_name;
    if (v.organization.trim()) body.organization = v.organization;
    if (v.validity_days) body.validity_days = Number(v.validity_days);
    if (v.project) body.project = v.project;
    const k = await post('/api/v1/admin/keys', body);
    await load();
    const out = h('div', {}, notice(`Key ${k.name} created.`));
    if (k.csr_pem) {
      out.appendChild(h('p', {}, 'Certificate signing request for your CA: ',
        h('button', { type: 'button', class: 'secondary', text: 'Download CSR', onclick: () => download(k.name + '.csr', k.csr_pem, 'application/pkcs10') })));
    }
    return out;
  }, { name: 'Create a key' })));
  m.appendChild(list);
  async function load() {
    const r = await get('/api/v1/admin/keys');
    clear(list).appendChild(table([
      ['Name', (k) => h('a', { href: '#/keys/' + enc(k.name), text: k.name })],
      ['Type', (k) => k.type],
      ['Project', (k) => k.project || '—'],
      ['State', (k) => badge(k.disabled ? 'disabled' : 'enabled', k.disabled ? 'bad' : 'ok')],
      ['Certificate', (k) => subjectOf(k)],
      ['Expires', (k) => fmtTime(k.certificate_not_after)],
    ], r.keys, { empty: 'No key yet.', onRow: (k) => { location.hash = '#/keys/' + enc(k.name); } }));
  }
  await load();
}

async function myKeys(m) {
  m.appendChild(h('h1', { text: 'My keys' }));
  const r = await get('/api/v1/keys');
  m.appendChild(table([
    ['Name', (k) => k.name], ['Type', (k) => k.type],
    ['Certificate', (k) => subjectOf(k)], ['Expires', (k) => fmtTime(k.certificate_not_after)],
  ], r.keys, { empty: 'No key is available to you.' }));
}

function isoDay(offset) {
  return new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);
}

export async function keyPage(m, name) {
  const base = '/api/v1/admin/keys/' + enc(name);
  const k = await get(base);
  const cert = k.certificate ? certInfo(k.certificate) : null;
  m.appendChild(h('p', {}, h('a', { href: '#/keys', text: '← Keys' })));
  m.appendChild(h('h1', {}, 'Key ', h('span', { class: 'mono', text: k.name })));
  m.appendChild(h('section', { class: 'card', 'aria-label': 'Key details' }, kv([
    ['Type', k.type],
    ['State', badge(k.disabled ? 'disabled' : 'enabled', k.disabled ? 'bad' : 'ok')],
    ['Project', k.project || null],
    ['HSM id', h('span', { class: 'mono', text: k.id })],
    ['Created', fmtTime(k.created_at)],
    ['Certificate subject', cert ? h('span', { class: 'cert-subject', text: cert.subject }) : null],
    ['Issuer', cert ? cert.issuer : undefined],
    ['Not after', k.certificate_not_after ? fmtTime(k.certificate_not_after) : null],
    ['Earlier certificates', String((k.previous_certificates || []).length)],
  ])));
  if (k.certificate) {
    m.appendChild(h('p', {}, h('button', { type: 'button', class: 'secondary', text: 'Download certificate (PEM)',
      onclick: () => download(k.name + '.crt', pemFromB64(k.certificate, 'CERTIFICATE') + (k.chain || []).map((c) => pemFromB64(c, 'CERTIFICATE')).join(''), 'application/x-pem-file') })));
  }

  m.appendChild(h('h2', { text: 'Usage, last 30 days' }));
  const usage = h('div');
  m.appendChild(usage);
  try {
    const u = await get('/api/v1/admin/usage' + qs({ key: name, from: isoDay(-29), to: isoDay(0) }));
    usage.appendChild(usageChart(u.usage, 30, 'Key ' + name));
  } catch (err) {
    usage.appendChild(h('p', { class: 'muted', text: err.message }));
  }

  m.appendChild(h('h2', { text: 'Lifecycle' }));
  m.appendChild(action('Download a CSR (for an external CA)', form('inline', [
    field('Common name', input('common_name', { required: true, size: 30 })),
    field('Organization', input('organization')),
  ], 'Make CSR', async (v) => {
    const body = { common_name: v.common_name };
    if (v.organization.trim()) body.organization = v.organization;
    const r = await post(base + '/csr', body);
    download(name + '.csr', r.csr_pem, 'application/pkcs10');
    return notice('CSR downloaded.');
  }, { name: 'Make CSR' })));
  m.appendChild(action('Import a certificate chain (leaf first)', form('stack', [
    field('PEM chain', h('textarea', { name: 'chain_pem', rows: 8, required: true })),
  ], 'Import chain', async (v) => {
    await put(base + '/certificate', { chain_pem: v.chain_pem });
    status('Certificate chain imported.');
    rerender();
  }, { name: 'Import chain' })));
  m.appendChild(action('Renew: issue a certificate from the built-in CA', form('inline', [
    field('Common name', input('common_name', { required: true, size: 30, value: cert ? (cert.subject.match(/CN=([^,]*)/) || [, ''])[1] : '' })),
    field('Organization', input('organization')),
    field('Validity (days)', input('validity_days', { type: 'number', min: 1, value: '365' })),
  ], 'Issue certificate', async (v) => {
    const body = { common_name: v.common_name };
    if (v.organization.trim()) body.organization = v.organization;
    if (v.validity_days) body.validity_days = Number(v.validity_days);
    await post(base + '/certificate', body);
    status('Certificate issued.');
    rerender();
  }, { name: 'Issue certificate' })));
  m.appendChild(action('Rotate: a new key takes the name', form('inline', [
    field('Reason', input('reason', { required: true, size: 30 })),
    field('Common name (optional)', input('common_name')),
  ], 'Rotate key', async (v) => {
    const body = { reason: v.reason };
    if (v.common_name.trim()) body.common_name = v.common_name;
    await post(base + '/rotate', body);
    status('Key rotated.');
    rerender();
  }, { name: 'Rotate key', danger: true })));
  // Disable / suspend, or enable: redrawn in place after a suspension, so its answer (the
  // signatures made since) stays on the page.
  const stateBox = h('div');
  const suspendOut = h('div');
  m.appendChild(stateBox);
  m.appendChild(suspendOut);
  const drawState = (disabled) => {
    clear(stateBox);
    if (disabled) {
      stateBox.appendChild(action('Enable', form('inline', [field('Reason', input('reason', { required: true, size: 30 }))],
        'Enable key', async (v) => {
          await post(base + '/enable', { reason: v.reason });
          status('Key enabled.');
          rerender();
        }, { name: 'Enable key' }), true));
      return;
    }
    stateBox.appendChild(action('Disable', form('inline', [field('Reason', input('reason', { required: true, size: 30 }))],
      'Disable key', async (v) => {
      await post(base + '/disable', { reason: v.reason });
      status('Key disabled.');
      rerender();
    }, { name: 'Disable key', danger: true })));
    stateBox.appendChild(action('Suspend (compromise playbook)', form('inline', [
      field('Reason', input('reason', { required: true, size: 30 })),
      field('Signatures since (UTC date, optional)', input('since', { type: 'date' })),
    ], 'Suspend key', async (v) => {
      const body = { reason: v.reason };
      if (v.since) body.since = Math.floor(Date.parse(v.since + 'T00:00:00Z') / 1000);
      const r = await post(base + '/suspend', body);
      clear(suspendOut).appendChild(h('section', { class: 'card suspended', 'aria-label': 'Suspension' },
        notice(`Key suspended. ${r.signatures_since.length} signatures since then${r.truncated ? ' (truncated)' : ''}:`),
        table([['Audit', (x) => String(x.audit_id)], ['Time', (x) => fmtTime(x.time)], ['Actor', (x) => x.actor],
          ['Machine', (x) => x.machine || ''], ['Request', (x) => x.request_id || '']], r.signatures_since,
        { empty: 'No signature since then.' })));
      drawState(true);
    }, { name: 'Suspend key', danger: true })));
  };
  drawState(k.disabled);
  const projects = (await get('/api/v1/admin/projects')).projects.map((p) => p.name);
  m.appendChild(action('Move to a project', form('inline', [
    field('Project', select('project', [['', '(none)'], ...projects.map((p) => [p, p])], k.project || '')),
    field('Reason', input('reason', { required: true, size: 30 })),
  ], 'Move key', async (v) => {
    await put(base + '/project', { project: v.project || null, reason: v.reason });
    status('Key moved.');
    rerender();
  }, { name: 'Move key' })));

  m.appendChild(h('h2', { text: 'Grants' }));
  const g = await get(base + '/grants');
  m.appendChild(table([['Identity', (x) => x.user], ['Kind', (x) => x.kind], ['Since', (x) => fmtTime(x.created_at)]],
    g.grants, { empty: 'No direct grant (project signers and rules may still sign).' }));
}
