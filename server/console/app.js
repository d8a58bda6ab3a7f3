// Signum console: hash routing, the session and the login page. Pages live in pages_*.js.
import { api, session, get, post } from './api.js';
import { h, clear, field, input, errorBox, form, notice } from './ui.js';
import { dashboardPage } from './pages_dashboard.js';
import { projectsPage, projectPage } from './pages_projects.js';
import { keysPage, keyPage } from './pages_keys.js';
import { identitiesPage, identityPage } from './pages_identities.js';
import { policiesPage, policyPage } from './pages_policies.js';
import { approvalsPage } from './pages_approvals.js';
import { auditPage } from './pages_audit.js';

const main = () => document.getElementById('main');

// [pattern, page, title, admin only, in the navigation]
const routes = [
  [/^dashboard$/, dashboardPage, 'Dashboard', false, true],
  [/^projects$/, projectsPage, 'Projects', false, true],
  [/^projects\/([^/]+)$/, projectPage, 'Project', false, false],
  [/^keys$/, keysPage, 'Keys', false, true],
  [/^keys\/([^/]+)$/, keyPage, 'Key', true, false],
  [/^identities(?:\/(users|service-accounts|machines))?$/, identitiesPage, 'Identities', true, true],
  [/^identities\/(users|service-accounts|machines)\/([^/]+)$/, identityPage, 'Identity', true, false],
  [/^policies$/, policiesPage, 'Policies', true, true],
  [/^policies\/([^/]+)$/, policyPage, 'Policy', true, false],
  [/^approvals$/, approvalsPage, 'Approvals', false, true],
  [/^audit$/, auditPage, 'Audit', true, true],
];

function setStatus(text) {
  const s = document.getElementById('status');
  s.textContent = text || '';
}
window.addEventListener('signum-status', (e) => setStatus(e.detail));

function renderNav(current) {
  const nav = document.getElementById('nav');
  clear(nav);
  const admin = session.user && session.user.role === 'admin';
  for (const [re, , title, adminOnly, inNav] of routes) {
    if (!inNav || (adminOnly && !admin)) continue;
    const base = re.source.replace(/^\^/, '').replace(/\(.*$/, '').replace(/\$$/, '').replace(/\\\//g, '/');
    const a = h('a', { href: '#/' + base, text: title === 'Keys' && !admin ? 'My keys' : title });
    if (current.split('/')[0] === base) a.setAttribute('aria-current', 'page');
    nav.appendChild(a);
  }
  nav.hidden = false;
  const who = document.getElementById('who');
  document.getElementById('who-name').textContent = `${session.user.name} (${session.user.role})`;
  who.hidden = false;
}

let lastPath = null;
let renderSeq = 0; // the latest render: only it ends the busy state

async function route() {
  const path = (location.hash || '').replace(/^#\/?/, '') || 'dashboard';
  if (path !== lastPath) setStatus('');
  lastPath = path;
  const m = main();
  if (!session.user) {
    document.getElementById('nav').hidden = true;
    document.getElementById('who').hidden = true;
    return loginPage(m);
  }
  renderNav(path);
  for (const [re, page, title, adminOnly] of routes) {
    const match = path.match(re);
    if (!match) continue;
    clear(m);
    document.title = title + ' · Signum console';
    if (adminOnly && session.user.role !== 'admin') {
      m.appendChild(errorBox({ message: 'This page is for administrators.', code: 'forbidden' }));
      return;
    }
    const args = match.slice(1).map((x) => (x === undefined ? x : decodeURIComponent(x)));
    // Busy while the page loads its data: assistive technology waits for the whole page.
    const seq = ++renderSeq;
    m.setAttribute('data-path', path);
    m.setAttribute('aria-busy', 'true');
    try {
      await page(m, ...args);
    } catch (err) {
      m.appendChild(errorBox(err));
    } finally {
      if (seq === renderSeq) m.removeAttribute('aria-busy');
    }
    m.focus({ preventScroll: true });
    return;
  }
  clear(m);
  m.appendChild(h('h1', { text: 'Not found' }));
  m.appendChild(h('p', {}, 'No page at this address. ', h('a', { href: '#/dashboard', text: 'Dashboard' })));
}

function startSession(answer) {
  session.user = answer.user;
  session.csrf = answer.csrf_token;
  session.idle = answer.idle_timeout;
}

function endSession(message, isError) {
  session.user = null;
  session.csrf = null;
  loginMessage = message ? { message, isError } : null;
  if (location.hash !== '#/login') location.hash = '#/login';
  else route();
}
session.onExpired = (err) => endSession(err.message, true);

let loginMessage = null;

function loginPage(m) {
  clear(m);
  document.title = 'Log in · Signum console';
  const box = h('section', { class: 'login card', 'aria-labelledby': 'login-title' });
  m.appendChild(box);
  box.appendChild(h('h1', { id: 'login-title', text: 'Log in to Signum' }));
  if (loginMessage) box.appendChild(loginMessage.isError ? errorBox(loginMessage) : notice(loginMessage.message));
  loginMessage = null;
  const totp = input('totp', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6 });
  const totpField = field('One-time code (administrators: from your authenticator app)', totp);
  const stage = h('div');
  box.appendChild(form('stack', [
    field('API key', input('api_key', { type: 'password', autocomplete: 'current-password', required: true })),
    totpField,
  ], 'Log in', async (v, out) => {
    const body = { api_key: v.api_key.trim() };
    if (v.totp.trim()) body.totp = v.totp.trim();
    let r;
    try {
      r = await post('/console/api/login', body);
    } catch (err) {
      if (err.code === 'totp_required') totp.focus();
      throw err;
    }
    if (r.totp_enrollment) return enrollment(stage, r.totp_enrollment, body.api_key);
    loggedIn(r);
  }, { name: 'Log in' }));
  box.appendChild(stage);
  box.querySelector('input').focus();
}

function svgDataUrl(svgText) {
  // Checked to be one SVG document, then shown through <img> (where it cannot run script).
  const doc = new DOMParser().parseFromString(svgText, 'image/svg+xml');
  if (doc.documentElement.nodeName !== 'svg') return null;
  const bytes = new TextEncoder().encode(new XMLSerializer().serializeToString(doc.documentElement));
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'data:image/svg+xml;base64,' + btoa(bin);
}

// The confirmation proves the API key again, so it is kept (in this closure only) until then.
function enrollment(stage, e, apiKey) {
  clear(stage);
  const url = e.qr_svg ? svgDataUrl(e.qr_svg) : null;
  stage.appendChild(h('section', { class: 'enroll', 'aria-labelledby': 'enroll-title' },
    h('h2', { id: 'enroll-title', text: 'Set up your authenticator' }),
    h('p', { text: 'Administrators log in with a one-time code. Scan the QR code with an authenticator app (or enter the secret by hand), then type the code it shows.' }),
    url ? h('img', { class: 'qr', src: url, alt: 'QR code of the otpauth URI below' }) : null,
    h('p', {}, h('strong', { text: 'otpauth URI: ' }), h('code', { class: 'mono otpauth-uri', text: e.otpauth_uri })),
    h('p', {}, h('strong', { text: 'Secret (base32): ' }), h('code', { class: 'mono totp-secret', text: e.secret_base32 })),
    form('stack', [field('Code from the app', input('code', { inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6 }))],
      'Confirm and log in', async (v) => {
        const r = await post('/console/api/totp/confirm', { api_key: apiKey, enrollment_id: e.enrollment_id, code: v.code.trim() });
        loggedIn(r);
      }, { name: 'Confirm TOTP' })));
  stage.querySelector('input[name=code]').focus();
}

function loggedIn(r) {
  startSession(r);
  const want = sessionStorage.getItem('signum-after-login');
  sessionStorage.removeItem('signum-after-login');
  const target = want && want !== '#/login' ? want : '#/dashboard';
  if (location.hash === target) route();
  else location.hash = target;
}

async function boot() {
  document.getElementById('logout').addEventListener('click', async () => {
    try { await post('/console/api/logout'); } catch (e) { /* the session may be gone already */ }
    endSession('You have logged out.');
  });
  window.addEventListener('hashchange', route);
  try {
    const r = await api('GET', '/console/api/session', undefined, {});
    startSession(r);
  } catch (e) {
    if (location.hash && location.hash !== '#/login') sessionStorage.setItem('signum-after-login', location.hash);
  }
  route();
}

boot();
