// Identities: users, service accounts and machines. Secrets (API keys, enrollment tokens) are
// shown once, right after they are made; access is taken back with a reason.
import { get, post, del, enc } from './api.js';
import { h, table, field, input, select, form, action, fmtTime, notice, badge, clear, kv, secretBox } from './ui.js';

const status = (text) => window.dispatchEvent(new CustomEvent('signum-status', { detail: text }));
const rerender = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
const TABS = [['users', 'Users'], ['service-accounts', 'Service accounts'], ['machines', 'Machines']];

function tabs(current) {
  return h('nav', { class: 'tabs', 'aria-label': 'Identity kinds' }, TABS.map(([t, label]) => {
    const a = h('a', { href: '#/identities/' + t, text: label });
    if (t === current) a.setAttribute('aria-current', 'page');
    return a;
  }));
}

function state(x) {
  if (x.deleted) return badge('deleted', 'bad');
  if (x.revoked) return badge('revoked', 'bad');
  return badge(x.disabled ? 'disabled' : 'enabled', x.disabled ? 'bad' : 'ok');
}

export async function identitiesPage(m, kind) {
  kind = kind || 'users';
  m.appendChild(h('h1', { text: 'Identities' }));
  m.appendChild(tabs(kind));
  const list = h('div');
  if (kind === 'users') {
    m.appendChild(action('Create a user', form('inline', [
      field('Name', input('name', { required: true })),
      field('Role', select('role', ['signer', 'admin'], 'signer')),
    ], 'Create user', async (v) => {
      const r = await post('/api/v1/admin/users', { name: v.name.trim(), role: v.role });
      await load();
      return secretBox(`API key of ${r.user.name}`, r.api_key);
    }, { name: 'Create a user' })));
  } else if (kind === 'service-accounts') {
    m.appendChild(action('Create a service account', form('inline', [field('Name', input('name', { required: true }))],
      'Create service account', async (v) => {
        const r = await post('/api/v1/admin/service-accounts', { name: v.name.trim() });
        await load();
        return secretBox(`Enrollment token of ${r.service_account.name} (expires ${fmtTime(r.expires_at)})`, r.enrollment_token);
      }, { name: 'Create a service account' })));
  } else {
    m.appendChild(action('Add a machine', form('inline', [field('Name', input('name', { required: true }))],
      'Add machine', async (v) => {
        const r = await post('/api/v1/admin/machines', { name: v.name.trim() });
        await load();
        return secretBox(`Enrollment token of machine ${r.machine.name || v.name} (expires ${fmtTime(r.expires_at)})`, r.enrollment_token);
      }, { name: 'Add a machine' })));
  }
  m.appendChild(list);
  async function load() {
    const path = kind === 'users' ? 'users' : kind === 'service-accounts' ? 'service-accounts' : 'machines';
    const r = await get('/api/v1/admin/' + path);
    const rows = r.users ? r.users.filter((u) => u.kind !== 'service') : r.service_accounts || r.machines;
    const open = (x) => { location.hash = `#/identities/${kind}/${enc(x.name)}`; };
    const cols = kind === 'machines'
      ? [['Name', (x) => h('a', { href: `#/identities/machines/${enc(x.name)}`, text: x.name })],
        ['Enrolled', (x) => x.enrolled ? fmtTime(x.enrolled_at) : 'not yet'],
        ['Certificate until', (x) => fmtTime(x.certificate_not_after)], ['State', state]]
      : [['Name', (x) => h('a', { href: `#/identities/${kind}/${enc(x.name)}`, text: x.name })],
        ['Role', (x) => x.role], ['State', state], ['Created', (x) => fmtTime(x.created_at)]];
    clear(list).appendChild(table(cols, rows, { onRow: open }));
  }
  await load();
}

function reasonAction(title, label, fn, danger) {
  return action(title, form('inline', [field('Reason', input('reason', { required: true, size: 36 }))], label,
    async (v) => { const out = await fn(v.reason); if (out instanceof Node) return out; }, { danger, name: label }));
}

export async function identityPage(m, kind, name) {
  m.appendChild(h('p', {}, h('a', { href: '#/identities/' + kind, text: '← Identities' })));
  if (kind === 'machines') return machinePage(m, name);
  const isUser = kind === 'users';
  const base = (isUser ? '/api/v1/admin/users/' : '/api/v1/admin/service-accounts/') + enc(name);
  const doc = await get(base);
  const who = isUser ? doc.user : doc.service_account;
  m.appendChild(h('h1', {}, isUser ? 'User ' : 'Service account ', h('span', { class: 'mono', text: who.name })));
  m.appendChild(h('section', { class: 'card', 'aria-label': 'Identity details' }, kv([
    ['Role', who.role], ['State', state(who)], ['Created', fmtTime(who.created_at)],
    ['Deleted', who.deleted_at ? fmtTime(who.deleted_at) : undefined],
  ])));
  const changed = (what) => (r) => {
    const n = ['revoked_api_keys', 'revoked_enrolled_keys', 'revoked_tokens', 'removed_grants', 'removed_project_roles']
      .filter((k) => r && r[k]).map((k) => `${r[k]} ${k.replace(/_/g, ' ')}`);
    status(what + (n.length ? ' (' + n.join(', ') + ')' : ''));
    rerender();
  };
  if (isUser) {
    m.appendChild(h('h2', { text: 'API keys' }));
    const keys = (await get(base + '/api-keys')).api_keys;
    const revokeArea = h('div');
    m.appendChild(table([
      ['Prefix', (k) => k.prefix, 'mono'], ['Created', (k) => fmtTime(k.created_at)],
      ['Last used', (k) => fmtTime(k.last_used_at)],
      ['State', (k) => k.revoked ? badge('revoked ' + fmtTime(k.revoked_at), 'bad') : badge('active', 'ok')],
      ['', (k) => k.revoked ? '' : h('button', {
        type: 'button', class: 'secondary', text: 'Revoke…', 'aria-label': 'Revoke API key ' + k.prefix,
        onclick: () => {
          clear(revokeArea).appendChild(reasonAction('Revoke API key ' + k.prefix, 'Revoke API key', async (reason) => {
            const r = await post(`${base}/api-keys/${enc(k.prefix)}/revoke`, { reason });
            changed(`API key ${k.prefix} revoked`)(r);
          }, true));
          revokeArea.querySelector('details').open = true;
          revokeArea.querySelector('input').focus();
        },
      })],
    ], keys, { empty: 'No API key.' }));
    m.appendChild(revokeArea);
    if (!who.deleted) {
      m.appendChild(action('Make another API key', form('inline', [], 'New API key', async () => {
        const r = await post(base + '/api-keys');
        return secretBox('New API key of ' + name, r.api_key);
      }, { name: 'New API key' })));
      m.appendChild(reasonAction('Revoke every API key', 'Revoke all API keys', async (reason) =>
        changed('Every API key revoked')(await post(base + '/api-keys/revoke-all', { reason })), true));
      // A lost phone: the user enrols a new authenticator at their next console login.
      m.appendChild(reasonAction('Reset the authenticator (TOTP)', 'Reset authenticator', async (reason) => {
        await post(base + '/totp/reset', { reason });
        status('Authenticator reset: a new one is enrolled at the next login; sessions and tokens were revoked.');
        rerender();
      }, true));
    }
  } else {
    m.appendChild(h('h2', { text: 'Enrolled keys' }));
    const keys = doc.keys || (await get(base + '/keys')).keys;
    const revokeArea = h('div');
    m.appendChild(table([
      ['Key id', (k) => k.kid, 'mono'], ['Created', (k) => fmtTime(k.created_at)], ['Last used', (k) => fmtTime(k.last_used_at)],
      ['State', (k) => k.revoked ? badge('revoked', 'bad') : badge('active', 'ok')],
      ['', (k) => k.revoked ? '' : h('button', {
        type: 'button', class: 'secondary', text: 'Revoke…', 'aria-label': 'Revoke enrolled key ' + k.kid,
        onclick: () => {
          clear(revokeArea).appendChild(reasonAction('Revoke enrolled key ' + k.kid, 'Revoke key', async (reason) =>
            changed('Enrolled key revoked')(await post(`${base}/keys/${enc(k.kid)}/revoke`, { reason })), true));
          revokeArea.querySelector('details').open = true;
        },
      })],
    ], keys, { empty: 'No enrolled key yet.' }));
    m.appendChild(revokeArea);
    if (!who.deleted) {
      m.appendChild(action('Make an enrollment token', form('inline', [], 'New enrollment token', async () => {
        const r = await post(base + '/enrollment-tokens');
        return secretBox(`Enrollment token (expires ${fmtTime(r.expires_at)})`, r.enrollment_token);
      }, { name: 'New enrollment token' })));
    }
  }
  if (!who.deleted) {
    m.appendChild(h('h2', { text: 'Access' }));
    m.appendChild(reasonAction(who.disabled ? 'Enable' : 'Disable', who.disabled ? 'Enable' : 'Disable',
      async (reason) => changed(who.disabled ? 'Enabled' : 'Disabled')(await post(base + (who.disabled ? '/enable' : '/disable'), { reason })), !who.disabled));
    m.appendChild(reasonAction('Delete (for good)', 'Delete', async (reason) => {
      changed('Deleted')(await del(base, { reason }));
    }, true));
  }
}

async function machinePage(m, name) {
  const r = await get('/api/v1/admin/machines');
  const x = r.machines.find((y) => y.name === name);
  m.appendChild(h('h1', {}, 'Machine ', h('span', { class: 'mono', text: name })));
  if (!x) return m.appendChild(notice('No such machine.'));
  m.appendChild(h('section', { class: 'card', 'aria-label': 'Machine details' }, kv([
    ['State', state(x)], ['Enrolled', x.enrolled ? fmtTime(x.enrolled_at) : 'not yet'],
    ['Certificate SHA-256', x.certificate_sha256 ? h('span', { class: 'mono', text: x.certificate_sha256 }) : null],
    ['Certificate serial', x.certificate_serial || null], ['Certificate until', fmtTime(x.certificate_not_after)],
    ['Created', fmtTime(x.created_at)],
  ])));
  const base = `/api/v1/admin/machines/${enc(name)}`;
  if (x.revoked) {
    m.appendChild(reasonAction('Enable the machine', 'Enable machine', async (reason) => {
      await post(base + '/enable', { reason });
      status('Machine enabled: its certificate works again.');
      rerender();
    }, false));
    return;
  }
  m.appendChild(action('Make an enrollment token', form('inline', [], 'New enrollment token', async () => {
    const t = await post(base + '/enrollment-tokens');
    return secretBox(`Enrollment token (expires ${fmtTime(t.expires_at)})`, t.enrollment_token);
  }, { name: 'New enrollment token' })));
  m.appendChild(reasonAction('Revoke the machine', 'Revoke machine', async (reason) => {
    const t = await post(base + '/revoke', { reason });
    status(`Machine revoked (${t.revoked_tokens} tokens).`);
    rerender();
  }, true));
}
