// Projects: list, create; one project with its keys and members; add and remove members.
import { get, post, enc, isAdmin } from './api.js';
import { h, table, field, input, select, form, action, fmtTime, notice, badge, clear } from './ui.js';

export async function projectsPage(m) {
  m.appendChild(h('h1', { text: 'Projects' }));
  const list = h('div');
  if (isAdmin()) {
    m.appendChild(action('Create a project', form('inline', [
      field('Name', input('name', { required: true, pattern: '[A-Za-z0-9._-]+' })),
      field('Description', input('description', { size: 40 })),
    ], 'Create project', async (v) => {
      const body = { name: v.name.trim() };
      if (v.description.trim()) body.description = v.description;
      const r = await post('/api/v1/admin/projects', body);
      await load();
      return notice(`Project ${r.project} created.`);
    }, { name: 'Create a project' })));
  }
  m.appendChild(list);
  async function load() {
    const r = await get('/api/v1/admin/projects');
    clear(list).appendChild(table([
      ['Name', (p) => h('a', { href: '#/projects/' + enc(p.name), text: p.name })],
      ['Description', (p) => p.description || ''],
      ['Keys', (p) => String(p.keys)],
      ['Created', (p) => fmtTime(p.created_at)],
    ], r.projects, { empty: 'No project yet.', onRow: (p) => { location.hash = '#/projects/' + enc(p.name); } }));
  }
  await load();
}

function memberBody(v) {
  const body = { role: v.role, reason: v.reason };
  body[v.kind] = v.name.trim();
  return body;
}

export async function projectPage(m, name) {
  const p = await get('/api/v1/admin/projects/' + enc(name));
  m.appendChild(h('p', {}, h('a', { href: '#/projects', text: '← Projects' })));
  m.appendChild(h('h1', {}, 'Project ', h('span', { class: 'mono', text: p.name })));
  m.appendChild(h('p', { class: 'description', text: p.description || '' }));
  m.appendChild(h('p', { class: 'muted', text: `Created ${fmtTime(p.created_at)} · ${p.keys} keys` }));
  m.appendChild(h('h2', { text: 'Keys' }));
  m.appendChild(table([
    ['Key', (k) => isAdmin() ? h('a', { href: '#/keys/' + enc(k.name), text: k.name }) : k.name],
    ['Type', (k) => k.type],
    ['State', (k) => badge(k.disabled ? 'disabled' : 'enabled', k.disabled ? 'bad' : 'ok')],
  ], p.key_list || [], { empty: 'No key in this project.' }));

  m.appendChild(h('h2', { text: 'Members' }));
  const reasonFor = h('div');
  m.appendChild(table([
    ['Role', (x) => x.role], ['Kind', (x) => x.kind], ['Name', (x) => x.name],
    ['Since', (x) => fmtTime(x.since)],
    ['', (x) => h('button', {
      type: 'button', class: 'secondary', 'aria-label': `Remove ${x.kind} ${x.name} as ${x.role}`, text: 'Remove…',
      onclick: () => {
        clear(reasonFor).appendChild(h('section', { class: 'card', 'aria-label': 'Remove member' },
          h('h3', { text: `Remove ${x.kind} ${x.name} as ${x.role}` }),
          form('inline', [field('Reason', input('reason', { required: true, size: 40 }))], 'Remove member', async (v) => {
            const kind = x.kind === 'service_account' ? 'service_account' : x.kind;
            await post(`/api/v1/admin/projects/${enc(name)}/members/remove`, memberBody({ role: x.role, kind, name: x.name, reason: v.reason }));
            window.dispatchEvent(new CustomEvent('signum-status', { detail: `Removed ${x.name} (${x.role}).` }));
            route();
          }, { danger: true, name: 'Remove member' })));
        reasonFor.querySelector('input').focus();
      },
    })],
  ], p.members || [], { empty: 'No member yet.' }));
  m.appendChild(reasonFor);
  m.appendChild(action('Add a member', form('inline', [
    field('Role', select('role', [['signer', 'signer'], ['approver', 'approver'], ['admin', 'project admin']])),
    field('Kind', select('kind', [['user', 'user'], ['service_account', 'service account'], ['group', 'user group']])),
    field('Name', input('name', { required: true })),
    field('Reason', input('reason', { required: true, size: 30 })),
  ], 'Add member', async (v) => {
    await post(`/api/v1/admin/projects/${enc(name)}/members`, memberBody(v));
    window.dispatchEvent(new CustomEvent('signum-status', { detail: `Added ${v.name} as ${v.role}.` }));
    route();
  }, { name: 'Add a member' }), true));
}

// Re-renders the current page (after a change).
function route() {
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}
