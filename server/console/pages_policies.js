// Policies: the rules in evaluation order; an editor (JSON, checked by the server, whose
// message is shown beside the text); the explain what-if form.
import { get, post, put, del, enc } from './api.js';
import { h, table, field, input, select, form, action, fmtTime, notice, badge, clear, errorBox } from './ui.js';

const status = (text) => window.dispatchEvent(new CustomEvent('signum-status', { detail: text }));

const TEMPLATE = {
  name: 'new-rule', description: '', effect: 'allow', priority: 100, enabled: true,
  subjects: { users: ['alice'] }, keys: { projects: ['web'] },
  conditions: { approval: { required: 1, project_approvers: true, ttl_seconds: 3600 } },
};

export async function policiesPage(m) {
  m.appendChild(h('h1', { text: 'Policies' }));
  m.appendChild(h('p', {}, h('a', { href: '#/policies/new', class: 'button-link', text: 'New rule' }),
    ' · Rules are tried by priority (higher first; deny before allow at equal priority); the first match decides.'));
  m.appendChild(form('inline', [field('Rule name (also a deleted one)', input('name', { required: true }))], 'Show history', async (v) => {
    location.hash = '#/policies/' + enc(v.name.trim());
  }, { name: 'Find a rule' }));
  const r = await get('/api/v1/admin/policies');
  const rows = r.policies.slice().sort((a, b) => (b.policy.priority ?? 100) - (a.policy.priority ?? 100)
    || (a.policy.effect === 'deny' ? -1 : 0) - (b.policy.effect === 'deny' ? -1 : 0) || a.policy.name.localeCompare(b.policy.name));
  m.appendChild(table([
    ['Name', (p) => h('a', { href: '#/policies/' + enc(p.policy.name), text: p.policy.name })],
    ['Effect', (p) => badge(p.policy.effect, p.policy.effect === 'deny' ? 'bad' : 'ok')],
    ['Priority', (p) => String(p.policy.priority ?? 100)],
    ['Enabled', (p) => (p.policy.enabled === false ? 'no' : 'yes')],
    ['Description', (p) => p.policy.description || ''],
    ['Version', (p) => String(p.version)],
    ['Updated', (p) => fmtTime(p.updated_at)],
  ], rows, { empty: 'No rule: only grants and project signer roles allow signing.', onRow: (p) => { location.hash = '#/policies/' + enc(p.policy.name); } }));
  m.appendChild(h('h2', { text: 'What if? (explain)' }));
  m.appendChild(explainForm());
}

function explainForm() {
  return form('inline', [
    field('User', input('user', { required: true })),
    field('Key', input('key', { required: true })),
    field('Machine', input('machine')),
    field('IP address', input('ip')),
    field('Application', input('application')),
    field('Hash', select('hash', ['sha256', 'sha384', 'sha512'], 'sha256')),
    field('Mechanism', select('mechanism', [['', '(key default)'], 'rsa-pkcs1', 'rsa-pss', 'ecdsa'], '')),
    field('Time (UTC, optional)', input('time', { type: 'datetime-local' })),
  ], 'Explain', async (v) => {
    const body = { user: v.user.trim(), key: v.key.trim(), hash: v.hash };
    for (const k of ['machine', 'ip', 'application', 'mechanism']) if (v[k].trim()) body[k] = v[k].trim();
    if (v.time) body.time = Math.floor(Date.parse(v.time + 'Z') / 1000);
    const r = await post('/api/v1/admin/policies/explain', body);
    return h('div', { class: 'card explain-result', role: 'status' },
      h('p', {}, 'Decision: ', badge(r.decision, r.decision === 'allow' ? 'ok' : r.decision === 'deny' ? 'bad' : 'warn'),
        r.rule ? ' by rule ' : '', r.rule ? h('strong', { text: r.rule }) : ''),
      r.message ? h('p', { text: r.message }) : null,
      r.code ? h('p', { class: 'muted mono', text: r.code }) : null,
      h('pre', { class: 'json', text: JSON.stringify(r.request, null, 2) }));
  }, { name: 'Explain' });
}

export async function policyPage(m, name) {
  const isNew = name === 'new';
  let doc = { policy: TEMPLATE, version: 0 };
  let deleted = false;
  if (!isNew) {
    try {
      doc = await get('/api/v1/admin/policies/' + enc(name));
    } catch (err) {
      // A deleted rule keeps its versions: show them, and offer its last text to create anew.
      if (err.status !== 404) throw err;
      let hist;
      try {
        hist = await get('/api/v1/admin/policies/' + enc(name) + '/versions');
      } catch (e) {
        throw err;
      }
      const last = hist.versions.find((v) => v.policy);
      doc = { policy: last ? last.policy : TEMPLATE, version: 0 };
      deleted = true;
    }
  }
  m.appendChild(h('p', {}, h('a', { href: '#/policies', text: '← Policies' })));
  m.appendChild(h('h1', {}, isNew ? 'New rule' : 'Rule ', isNew ? '' : h('span', { class: 'mono', text: name }),
    deleted ? ' (deleted)' : ''));
  if (deleted) m.appendChild(notice('This rule was deleted. Its kept versions are below; the editor holds its last text, and saving creates the rule anew.'));
  else if (!isNew) m.appendChild(h('p', { class: 'muted version', text: `Version ${doc.version}` }));
  const create = isNew || deleted;
  const ta = h('textarea', { name: 'policy', class: 'policy', spellcheck: 'false', 'aria-describedby': 'policy-check' });
  ta.value = JSON.stringify(doc.policy, null, 2);
  const check = h('aside', { id: 'policy-check', class: 'policy-check', 'aria-live': 'polite' },
    h('p', { class: 'muted', text: 'The server checks the rule when you save; its message shows here.' }));
  const save = h('button', { type: 'submit', text: create ? 'Create rule' : 'Save rule' });
  const saved = JSON.stringify(doc.policy, null, 2);
  const diffBox = h('div', { class: 'diff-box' });
  const showDiff = h('button', { type: 'button', class: 'secondary', text: 'Show changes', onclick: () => {
    clear(diffBox).appendChild(diffView(saved, ta.value, isNew ? 'template' : deleted ? 'last kept version' : `version ${doc.version}`));
  } });
  const f = h('form', { class: 'editor', 'aria-label': 'Rule editor' },
    h('div', { class: 'policy-editor' }, field('Rule (JSON)', ta), check),
    h('div', { class: 'actions' }, save, showDiff), diffBox);
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(check);
    let rule;
    try {
      rule = JSON.parse(ta.value);
    } catch (err) {
      check.appendChild(errorBox({ message: 'Not valid JSON: ' + err.message, code: 'client' }));
      ta.setAttribute('aria-invalid', 'true');
      return;
    }
    save.disabled = true;
    try {
      const r = create ? await post('/api/v1/admin/policies', rule) : await put('/api/v1/admin/policies/' + enc(name), rule);
      ta.removeAttribute('aria-invalid');
      status(`Rule ${r.policy.name} saved, version ${r.version}.`);
      const target = '#/policies/' + enc(r.policy.name);
      if (location.hash !== target) location.hash = target;
      else window.dispatchEvent(new HashChangeEvent('hashchange'));
    } catch (err) {
      ta.setAttribute('aria-invalid', 'true');
      check.appendChild(errorBox(err));
      const at = fieldAt(ta.value, err.message);
      if (at) {
        check.appendChild(h('p', { class: 'field-at', text: `At "${at.name}", line ${at.line}.` }));
        ta.focus();
        ta.setSelectionRange(at.start, at.end);
        const lh = parseFloat(getComputedStyle(ta).lineHeight) || 18;
        ta.scrollTop = Math.max(0, (at.line - 3) * lh);
      }
    } finally {
      save.disabled = false;
    }
  });
  m.appendChild(f);
  if (!create) {
    m.appendChild(action('Delete this rule', form('inline', [], 'Delete rule', async () => {
      await del('/api/v1/admin/policies/' + enc(name));
      status(`Rule ${name} deleted.`);
      location.hash = '#/policies';
    }, { danger: true, name: 'Delete rule' })));
  }
  if (!isNew) m.appendChild(await versionHistory(name));
  m.appendChild(h('h2', { text: 'What if? (explain)' }));
  m.appendChild(explainForm());
}

const ruleText = (p) => (p ? JSON.stringify(p, null, 2) : '');

// The kept versions of a rule, newest first; any version opens its diff against the one
// before it (the first against nothing, a deletion as the removal of every line).
async function versionHistory(name) {
  const box = h('section', { class: 'versions', 'aria-labelledby': 'versions-title' },
    h('h2', { id: 'versions-title', text: 'Version history' }));
  let r;
  try {
    r = await get('/api/v1/admin/policies/' + enc(name) + '/versions');
  } catch (err) {
    box.appendChild(errorBox(err));
    return box;
  }
  const list = r.versions;
  const diffBox = h('div', { class: 'version-diff', 'aria-live': 'polite' });
  const show = (i) => {
    const v = list[i], before = list[i + 1];
    const title = before ? `Version ${v.version} against version ${before.version}` : `Version ${v.version} (the first kept)`;
    clear(diffBox).appendChild(diffView(ruleText(before && before.policy), ruleText(v.policy), null, title));
    diffBox.dataset.version = String(v.version);
  };
  box.appendChild(table([
    ['Version', (v) => String(v.version)],
    ['Changed', (v) => fmtTime(v.changed_at)],
    ['State', (v) => (v.deleted ? badge('deleted', 'bad') : v === list[0] ? badge('current', 'ok') : 'earlier')],
    ['Description', (v) => (v.policy && v.policy.description) || ''],
    ['Diff', (v) => h('button', { type: 'button', class: 'secondary', text: 'Show diff',
      'aria-label': `Show the changes of version ${v.version}`, onclick: () => show(list.indexOf(v)) })],
  ], list, { empty: 'No version is kept.', caption: list.length >= 100 ? 'The latest 100 versions' : undefined }));
  box.appendChild(diffBox);
  return box;
}

// The member a server message names first ("conditions.approval.required must be ...",
// "effect must be allow or deny"), found in the JSON text so the editor can select it.
function fieldAt(text, message) {
  const m = /^([A-Za-z_]+(?:(?:\.[A-Za-z_]+)|(?:\[\d+\]))*)/.exec(message || '');
  if (!m) return null;
  const names = m[1].split('.').map((p) => p.replace(/\[\d+\]$/, ''));
  let from = 0;
  for (const n of names) {
    const i = text.indexOf(JSON.stringify(n) + ':', from);
    if (i < 0) return null;
    from = i;
  }
  const name = names[names.length - 1];
  return { name: m[1], start: from, end: from + name.length + 2, line: text.slice(0, from).split('\n').length };
}

// A line diff (longest common subsequence) of the saved rule and the edited text.
export function diffLines(a, b) {
  const x = a.split('\n'), y = b.split('\n');
  if (x.length * y.length > 4000000) return null; // too large to compare here
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { out.push([' ', x[i]]); i++; j++; }
    else if (i < n && (j === m || L[i + 1][j] >= L[i][j + 1])) out.push(['-', x[i++]]);
    else out.push(['+', y[j++]]);
  }
  return out;
}

// label: what the edited text is compared with ("version 3"), or title: the whole heading.
function diffView(a, b, label, title) {
  // Against nothing (a rule's first version, a deletion) every line is new or gone.
  const d = a === '' ? b.split('\n').map((l) => ['+', l]) : b === '' ? a.split('\n').map((l) => ['-', l]) : diffLines(a, b);
  if (!d) return h('p', { class: 'muted', text: 'Too large to compare here.' });
  if (d.every(([t]) => t === ' ')) return h('p', { class: 'muted', text: title ? `${title}: no change.` : `No change against the ${label}.` });
  return h('section', { 'aria-label': title || 'Changes' }, h('h3', { text: title || `Changes against the ${label}` }),
    h('pre', { class: 'diff' }, d.map(([t, line]) => h('span', { class: t === '+' ? 'add' : t === '-' ? 'del' : 'same', text: `${t} ${line}\n` }))));
}
