// Browser test of the Signum console: the system's Chromium, headless, driven by playwright-core,
// against a real signum-server started by test_console.py. Steps that happen outside the
// browser (signing through libsignumpkcs11.so, filing and collecting a sign request) are asked
// of the Python side over a line protocol: "@@PY {json}" on stdout, one JSON answer on stdin.
//
// Env: SIGNUM_URL (https://localhost:PORT), SIGNUM_ADMIN_KEY, SIGNUM_SCREENSHOTS (a directory
// outside the source tree), CHROMIUM (default /usr/bin/chromium).
// TLS: the server's certificate is issued by its own throwaway CA; Chromium takes no CA file
// on the command line, so the test sets ignoreHTTPSErrors for this 127.0.0.1 server only.
import { chromium } from 'playwright-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { controlNames, focused, tabTo } from './a11y.mjs';

const URL_BASE = process.env.SIGNUM_URL;
const ADMIN_KEY = process.env.SIGNUM_ADMIN_KEY;
const SHOTS = process.env.SIGNUM_SCREENSHOTS;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const XSS = '<img src=x onerror=alert(1)>';
const STEP_TIMEOUT = 15000;

if (!URL_BASE || !ADMIN_KEY || !SHOTS) {
  console.error('console.test: SIGNUM_URL, SIGNUM_ADMIN_KEY and SIGNUM_SCREENSHOTS must be set');
  process.exit(2);
}
fs.mkdirSync(SHOTS, { recursive: true });

// ---- the Python side ---------------------------------------------------------------------
const rl = readline.createInterface({ input: process.stdin });
const answers = [];
let waiting = null;
rl.on('line', (line) => { if (waiting) { const w = waiting; waiting = null; w(line); } else answers.push(line); });
async function py(op, args = {}) {
  process.stdout.write('@@PY ' + JSON.stringify(Object.assign({ op }, args)) + '\n');
  const line = answers.length ? answers.shift() : await new Promise((res) => { waiting = res; });
  const r = JSON.parse(line);
  if (r.error) throw new Error(`python ${op}: ${r.error}`);
  return r;
}

// ---- TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s) -------------------------------------------
function base32(s) {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) {
    const v = alpha.indexOf(c);
    if (v < 0) throw new Error('bad base32 character ' + c);
    bits += v.toString(2).padStart(5, '0');
  }
  const out = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}
function totp(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32(secret)).update(msg).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, '0');
}
const nowStep = () => Math.floor(Date.now() / 1000 / 30);

// ---- checks --------------------------------------------------------------------------------
const failures = [];
let stepName = 'start';
function check(cond, what) {
  if (!cond) throw new Error(`${stepName}: ${what}`);
}
async function step(name, fn) {
  stepName = name;
  const t0 = Date.now();
  await fn();
  console.log(`ok   ${name} (${Date.now() - t0} ms)`);
}

function watch(page, who) {
  // A dialog would be script injected through data (alert(1)); a CSP report would be an
  // inline script or style the page should not have: both fail the test.
  page.on('dialog', async (d) => { failures.push(`${who}: a ${d.type()} dialog opened: ${d.message()}`); await d.dismiss(); });
  page.on('pageerror', (e) => failures.push(`${who}: page error: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) failures.push(`${who}: ${msg.text()}`);
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
}

// Every input, select, textarea and button of the page has an accessible name (a11y.mjs).
const namedPages = new Set();
async function allControlsNamed(page, where) {
  const r = await controlNames(page);
  check(r.controls > 0, `${where}: no control found`);
  check(r.unnamed.length === 0, `${where}: ${r.unnamed.length} control(s) without an accessible name: ${r.unnamed.join(' | ')}`);
  namedPages.add(where);
}

// Opens a page of the console and waits until it has loaded its data (the app marks <main>
// with the path it shows and aria-busy while loading), then checks its controls' names. The
// page it shows already is loaded anew (going to the same address would do nothing).
async function go(page, hash) {
  const url = URL_BASE + '/console/#/' + hash;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await page.waitForSelector(`main[data-path="${hash}"]:not([aria-busy]) h1`);
  await allControlsNamed(page, hash);
}

// Fills labelled controls of a form (found by its aria-label), then submits it.
async function submit(page, formName, values) {
  const f = page.locator(`form[aria-label="${formName}"]`);
  await f.waitFor({ state: 'attached' });
  const details = f.locator('xpath=ancestor::details[1]');
  if (await details.count() && !(await details.getAttribute('open') !== null)) await details.locator('summary').click();
  for (const [label, value] of Object.entries(values)) {
    const control = f.getByLabel(label, { exact: true });
    const tag = await control.evaluate((el) => el.tagName);
    if (tag === 'SELECT') await control.selectOption(value);
    else await control.fill(value);
  }
  await f.locator('button[type=submit]').click();
  return f.locator('xpath=following-sibling::div[contains(@class,"form-out")]');
}

async function expectError(out, code, messagePart) {
  const box = out.locator('.error');
  await box.waitFor({ timeout: STEP_TIMEOUT });
  const code_ = await box.locator('.code').textContent();
  const msg = await box.locator('.msg').textContent();
  check(code_.startsWith(code), `expected error ${code}, got ${code_} (${msg})`);
  check(msg.length > 0 && msg !== code, `error ${code} shown without a human message`);
  if (messagePart) check(msg.includes(messagePart), `message "${msg}" lacks "${messagePart}"`);
  return msg;
}

// The error message is text: the message element holds no element (the markup in it, if any,
// is characters).
async function messageIsText(out) {
  check(await out.locator('.error .msg *').count() === 0, 'the error message holds elements');
}

async function noInjectedImg(page) {
  const n = await page.locator('img[src="x"]').count();
  check(n === 0, `an <img src=x> element was created from data (${n})`);
}

// ---- the scenario --------------------------------------------------------------------------
const t0 = Date.now();
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
let code = 0;
try {
  const ctxOpts = { ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, acceptDownloads: true };
  const adminCtx = await browser.newContext(ctxOpts);
  adminCtx.setDefaultTimeout(STEP_TIMEOUT);
  const admin = await adminCtx.newPage();
  watch(admin, 'admin');
  let secret = null;
  let confirmStep = 0;
  const state = {};

  await step('headers of /console/', async () => {
    const r = await admin.request.get(URL_BASE + '/console/');
    const hd = r.headers();
    check(r.status() === 200, 'GET /console/ is ' + r.status());
    const csp = hd['content-security-policy'] || '';
    for (const d of ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"]) check(csp.includes(d), 'CSP lacks ' + d + ': ' + csp);
    check(/max-age=\d+/.test(hd['strict-transport-security'] || ''), 'no HSTS');
    check((hd['x-frame-options'] || '').toUpperCase() === 'DENY', 'X-Frame-Options is not DENY');
    check(hd['referrer-policy'] === 'no-referrer', 'Referrer-Policy');
    check(hd['x-content-type-options'] === 'nosniff', 'nosniff');
  });

  await step('admin logs in: TOTP enrollment', async () => {
    await admin.goto(URL_BASE + '/console/');
    await admin.locator('#login-title').waitFor();
    await allControlsNamed(admin, 'login');
    await admin.getByLabel('API key').fill(ADMIN_KEY);
    await admin.getByRole('button', { name: 'Log in' }).click();
    await admin.locator('.totp-secret').waitFor();
    secret = (await admin.locator('.totp-secret').textContent()).trim();
    const uri = await admin.locator('.otpauth-uri').textContent();
    check(uri.startsWith('otpauth://totp/') && uri.includes('secret=' + secret), 'otpauth URI ' + uri);
    const qrWidth = await admin.locator('img.qr').evaluate((img) => img.complete ? img.naturalWidth : 0);
    check(qrWidth > 0, 'the QR code image did not render');
    await allControlsNamed(admin, 'TOTP enrollment');
    await shot(admin, '01-totp-enrollment');
    // A wrong code is refused with its message; the right one logs in.
    confirmStep = nowStep();
    // A code valid at no step the server accepts now (it allows one step of skew each way).
    const near = [-1, 0, 1].map((d) => totp(secret, confirmStep + d));
    let wrong = Number(near[1]);
    do wrong = (wrong + 1) % 1000000; while (near.includes(String(wrong).padStart(6, '0')));
    wrong = String(wrong).padStart(6, '0');
    await admin.getByLabel('Code from the app').fill(wrong);
    await admin.getByRole('button', { name: 'Confirm and log in' }).click();
    await admin.locator('.enroll .error').waitFor();
    check((await admin.locator('.enroll .error .code').textContent()).startsWith('totp_invalid'), 'wrong code not totp_invalid');
    confirmStep = nowStep();
    await admin.getByLabel('Code from the app').fill(totp(secret, confirmStep));
    await admin.getByRole('button', { name: 'Confirm and log in' }).click();
    await admin.waitForSelector('main h1:text("Dashboard")');
    await admin.locator('section[aria-label="Health"] table').waitFor();
    await admin.waitForSelector('main[data-path="dashboard"]:not([aria-busy])');
    await allControlsNamed(admin, 'dashboard');
  });

  await step('dashboard', async () => {
    check((await admin.locator('#who-name').textContent()).includes('(admin)'), 'not shown as admin');
    const health = await admin.locator('section[aria-label="Health"]').textContent();
    for (const c of ['hsm', 'database', 'audit']) check(health.includes(c), 'health lacks ' + c);
    // The signing queue and the audit exporters (none configured here).
    const eq = admin.locator('section[aria-label="Exporters and queue"]');
    const queue = eq.locator('p.queue');
    await queue.waitFor();
    check(Number(await queue.getAttribute('data-limit')) > 0, 'no queue limit shown: ' + await eq.textContent());
    check((await queue.textContent()).includes('waiting (limit'), 'queue text: ' + await queue.textContent());
    const exporter = eq.locator('tr.exporter', { hasText: 'syslog-udp' });
    check(await exporter.count() === 1, 'the syslog exporter is not shown: ' + await eq.textContent());
    check(/^\d+ records? behind$/.test(await exporter.locator('td').nth(2).textContent()), 'exporter lag: ' + await exporter.textContent());
    await admin.locator('.hourly svg.chart g.hour').first().waitFor();
    check(await admin.locator('.hourly svg.chart g.hour').count() === 48, 'the hourly chart has not 48 bars');
    await admin.locator('svg.chart').first().waitFor();
  });

  // Names are of a safe character set: a user and a key named with markup are refused, and the
  // refusal is the server's human message, as text (no element made of it, no dialog).
  await step('a user and a key named with markup are refused, the message shown as text', async () => {
    await go(admin, 'identities/users');
    let out = await submit(admin, 'Create a user', { Name: XSS, Role: 'signer' });
    await expectError(out, 'invalid_field', 'name');
    await messageIsText(out);
    await noInjectedImg(admin);
    check(await admin.locator('td', { hasText: 'onerror' }).count() === 0, 'a user named with markup is listed');
    await go(admin, 'keys');
    out = await submit(admin, 'Create a key', { Name: XSS, Type: 'ec-p256', Certificate: 'none' });
    await expectError(out, 'invalid_field', 'name');
    await messageIsText(out);
    await noInjectedImg(admin);
    check(await admin.locator('td', { hasText: 'onerror' }).count() === 0, 'a key named with markup is listed');
  });

  await step('project with a markup description', async () => {
    await go(admin, 'projects');
    const out = await submit(admin, 'Create a project', { Name: 'web', Description: XSS });
    await out.locator('.notice').waitFor();
    await admin.locator('td', { hasText: XSS }).first().waitFor();
    check(await admin.locator('td', { hasText: XSS }).first().textContent() === XSS, 'description not shown as text');
    await noInjectedImg(admin);
    await shot(admin, '03-projects');
  });

  await step('users: a signer and an approver (API keys shown once)', async () => {
    await go(admin, 'identities/users');
    for (const name of ['signer1', 'approver1']) {
      const out = await submit(admin, 'Create a user', { Name: name, Role: 'signer' });
      await out.locator('.secret-value').waitFor();
      state[name] = (await out.locator('.secret-value').textContent()).trim();
      check(state[name].startsWith('sgk_'), 'no API key shown for ' + name);
    }
    await shot(admin, '04-identities');
  });

  await step('key with a built-in CA certificate whose CN is markup, in the project', async () => {
    await go(admin, 'keys');
    const out = await submit(admin, 'Create a key', {
      Name: 'rel', Type: 'ec-p256', Certificate: 'builtin', 'Common name (built-in or external)': XSS,
      Organization: 'Signum Tests', Project: 'web',
    });
    await out.locator('.notice').waitFor();
    await admin.locator('td', { hasText: 'CN=' + XSS }).first().waitFor();
    await noInjectedImg(admin);
    await shot(admin, '05-keys');
  });

  // The keyboard alone, in the visual order: Tab from the page to the panel, Enter opens it,
  // Tab through every control to the submit button, Enter submits. The key is valid 10 days:
  // the dashboard lists it among the certificates expiring soon, and only it.
  await step('a key created by keyboard alone, valid 10 days: expiring soon on the dashboard', async () => {
    await go(admin, 'keys');
    check((await focused(admin)).tag === 'main', 'the page did not take the focus');
    const walk = await tabTo(admin, 'Create a key', 1);
    await admin.keyboard.press('Enter');
    walk.push(...await tabTo(admin, 'Name', 1));
    await admin.keyboard.type('soon');
    walk.push(...await tabTo(admin, 'Common name (built-in or external)', 3));
    await admin.keyboard.type('Expires soon');
    walk.push(...await tabTo(admin, 'Validity (days, built-in)', 2));
    await admin.keyboard.type('10');
    walk.push(...await tabTo(admin, 'Create key', 2));
    check(JSON.stringify(walk) === JSON.stringify(['Create a key', 'Name', 'Type', 'Certificate',
      'Common name (built-in or external)', 'Organization', 'Validity (days, built-in)', 'Project', 'Create key']),
    'tab order: ' + JSON.stringify(walk));
    check((await focused(admin)).tag === 'button', 'the submit is not a focused button');
    const before = Math.floor(Date.now() / 1000);
    await admin.keyboard.press('Enter');
    await admin.locator('form[aria-label="Create a key"] + .form-out .notice', { hasText: 'Key soon created.' }).waitFor();
    const after = Math.ceil(Date.now() / 1000);
    await go(admin, 'dashboard');
    const card = admin.locator('section[aria-label="Certificates expiring within 30 days"]');
    const rows = card.locator('tbody tr');
    check(await rows.count() === 1, 'expiring soon: ' + await card.textContent());
    check((await rows.first().locator('td').nth(0).textContent()) === 'soon', 'expiring soon: ' + await rows.first().textContent());
    const shown = Date.parse((await rows.first().locator('td').nth(1).textContent()).replace(' UTC', 'Z').replace(' ', 'T')) / 1000;
    check(shown >= before + 10 * 86400 && shown <= after + 10 * 86400, `the card shows ${shown}, not 10 days after ${before}`);
    await shot(admin, '02-dashboard-expiring');
  });

  await step('a reload keeps the session (and its CSRF token)', async () => {
    await go(admin, 'projects/web');
    await admin.reload();
    await admin.waitForSelector('main h1:has-text("Project")');
    check((await admin.locator('#who-name').textContent()).includes('(admin)'), 'logged out by a reload');
  });

  await step('an external-CA key: CSR download, suspend and enable', async () => {
    await go(admin, 'keys');
    const out = await submit(admin, 'Create a key', {
      Name: 'ext', Type: 'ec-p256', Certificate: 'external', 'Common name (built-in or external)': 'External CA key', Project: '',
    });
    const [dl] = await Promise.all([admin.waitForEvent('download'), out.getByRole('button', { name: 'Download CSR' }).click()]);
    check(fs.readFileSync(await dl.path(), 'utf8').startsWith('-----BEGIN CERTIFICATE REQUEST-----'), 'CSR download');
    await go(admin, 'keys/ext');
    await submit(admin, 'Suspend key', { Reason: 'console test' });
    await admin.locator('section.suspended .notice').waitFor();
    await submit(admin, 'Enable key', { Reason: 'console test over' });
    await admin.locator('#status', { hasText: 'Key enabled.' }).waitFor();
    await admin.locator('.badge.ok', { hasText: 'enabled' }).waitFor();
  });

  await step('a service account and a machine: enrollment tokens shown once', async () => {
    await go(admin, 'identities/service-accounts');
    let out = await submit(admin, 'Create a service account', { Name: 'ci-release' });
    check((await out.locator('.secret-value').textContent()).startsWith('sge_'), 'no enrollment token');
    await go(admin, 'identities/machines');
    out = await submit(admin, 'Add a machine', { Name: 'build-01' });
    state.machineToken = (await out.locator('.secret-value').textContent()).trim();
    check(state.machineToken.startsWith('sge_'), 'no machine enrollment token');
    await admin.locator('td', { hasText: 'build-01' }).first().waitFor();
  });

  await step('project members: signer and approver', async () => {
    await go(admin, 'projects/web');
    for (const [name, role] of [['signer1', 'signer'], ['approver1', 'approver']]) {
      await submit(admin, 'Add a member', { Role: role, Kind: 'user', Name: name, Reason: 'console test' });
      await admin.locator('td', { hasText: name }).first().waitFor();
    }
    check((await admin.locator('p.description').textContent()) === XSS, 'project description not text');
    await noInjectedImg(admin);
    await shot(admin, '06-project');
  });

  const signedAt = [];
  await step('the signer signs through libsignumpkcs11.so', async () => {
    signedAt.push(Date.now());
    const r = await py('p11_sign', { api_key: state.signer1, key: 'rel', expect: 'ok' });
    signedAt.push(Date.now());
    check(r.ok, 'pkcs11 signature failed: ' + r.detail);
  });

  await step('the signature is in the hourly chart of the dashboard', async () => {
    await go(admin, 'dashboard');
    await admin.locator('.hourly svg.chart g.hour').first().waitFor();
    // The hour the signature was made in (two, if the call straddled the full hour).
    const hours = [...new Set(signedAt.map((t) => Math.floor(t / 3600000) * 3600))];
    let n = 0;
    for (const hr of hours) {
      const bar = admin.locator(`.hourly g.hour[data-start="${hr}"]`);
      if (await bar.count()) n += Number(await bar.getAttribute('data-signatures'));
    }
    check(n === 1, `the hour of the signature shows ${n} signatures, not 1`);
    check(await admin.locator('.hourly figure').getAttribute('data-signatures') === '1', 'the hourly total is not 1');
    // The UDP exporter has delivered records by now: its row shows how far (bounded wait,
    // reloading the dashboard: the cursor is stored just after the sink took the records).
    let delivered = 0;
    for (let i = 0; i < 40 && delivered === 0; i++) {
      if (i) { await admin.waitForTimeout(250); await go(admin, 'dashboard'); }
      const row = admin.locator('section[aria-label="Exporters and queue"] tr.exporter', { hasText: 'syslog-udp' });
      await row.waitFor();
      delivered = Number(await row.getAttribute('data-delivered'));
    }
    check(delivered > 0, 'the syslog exporter shows nothing delivered');
    // The signature was made outside the configured hours: its alert is on the dashboard
    // (bounded wait: the rule engine reads the audit log just after the commit).
    let alerts = 0;
    for (let i = 0; i < 40 && alerts === 0; i++) {
      if (i) { await admin.waitForTimeout(250); await admin.reload(); await admin.waitForSelector('main h1'); }
      await admin.locator('section[aria-label="Alerts"] table, section[aria-label="Alerts"] p').first().waitFor();
      alerts = await admin.locator('section[aria-label="Alerts"] tr.alert[data-rule="console-after-hours"]').count();
    }
    check(alerts === 1, `the dashboard shows ${alerts} console-after-hours alerts, not 1`);
    const alertRow = admin.locator('section[aria-label="Alerts"] tr.alert').first();
    check((await alertRow.textContent()).includes('local time'), 'alert details: ' + await alertRow.textContent());
    await shot(admin, '02-dashboard');
  });

  await step('the signature is in the audit page', async () => {
    await go(admin, 'audit');
    // The chain verified, with the last signed checkpoint (one every 5 records here).
    const st = admin.locator('section.audit-status');
    await st.locator('.verdict').waitFor();
    check(await st.getAttribute('data-intact') === 'true', 'chain not intact: ' + await st.textContent());
    const lastSeq = Number(await st.getAttribute('data-last-seq'));
    check(lastSeq >= 5, 'no signed checkpoint shown: ' + await st.textContent());
    check((await st.locator('.last-checkpoint').textContent()) === `record ${lastSeq}`, 'checkpoint seq not shown');
    check((await st.locator('.verdict').textContent()).includes('intact'), 'verdict text');
    await submit(admin, 'Audit filter', { 'Action (e.g. sign)': 'sign', Key: 'rel' });
    // The filtered table replaces the unfiltered one: wait for the signer's allowed signature.
    await admin.locator('.audit-records[data-query*="action=sign"]').waitFor();
    const row = admin.locator('.audit-records tbody tr', { hasText: 'user:signer1' }).filter({ hasText: 'allowed' }).first();
    await row.waitFor();
    const rows = await admin.locator('.audit-records tbody tr').allTextContents();
    check(rows.every((r) => r.includes('sign')), 'the filter let other actions through');
    await row.click();
    await admin.locator('.audit-detail pre').waitFor();
    check((await admin.locator('.audit-detail pre').textContent()).includes('"project": "web"'), 'detail lacks the project');
    const [dl] = await Promise.all([admin.waitForEvent('download'), admin.getByRole('button', { name: 'Export JSON lines' }).click()]);
    const lines = fs.readFileSync(await dl.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    check(lines.length >= 1 && lines.every((l) => l.action === 'sign'), 'JSON lines export');
    const [dl2] = await Promise.all([admin.waitForEvent('download'), admin.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = fs.readFileSync(await dl2.path(), 'utf8').split('\r\n');
    check(csv[0] === 'seq,time,actor,action,outcome,hash,prev,detail' && csv.length >= 3, 'CSV export');
    await shot(admin, '07-audit');
    // Paging: two records a page, "More" appends the next two.
    await submit(admin, 'Audit filter', { 'Action (e.g. sign)': '', Key: '', 'Page size': '2' });
    await admin.locator('.audit-records[data-query*="limit=2"]').waitFor();
    check(await admin.locator('.audit-records tbody tr').count() === 2, 'a page of 2 is not 2 rows');
    await admin.getByRole('button', { name: 'More' }).click();
    await admin.locator('.audit-records tbody tr').nth(3).waitFor();
    const seqs = (await admin.locator('.audit-records tbody tr td:first-child').allTextContents()).map(Number);
    check(seqs.length === 4 && seqs.every((v, i) => i === 0 || v > seqs[i - 1]), 'paging order ' + seqs);
  });

  await step('the signature is in the key usage chart', async () => {
    await go(admin, 'keys/rel');
    const today = new Date().toISOString().slice(0, 10);
    const bar = admin.locator(`svg.chart g.day[data-day="${today}"]`);
    await bar.waitFor();
    check(Number(await bar.getAttribute('data-signatures')) >= 1, 'no signature today in the chart');
    check((await admin.locator('.cert-subject').textContent()).includes('CN=' + XSS), 'CN not shown as text');
    await noInjectedImg(admin);
    await shot(admin, '08-key');
  });

  await step('policy editor: the server\'s validation message, then an approval rule', async () => {
    await go(admin, 'policies/new');
    const rule = {
      name: 'web-approval', description: XSS, effect: 'perhaps', priority: 10,
      subjects: { users: ['signer1'] }, keys: { projects: ['web'] },
      conditions: { approval: { required: 1, project_approvers: true, ttl_seconds: 600 } },
    };
    await admin.getByLabel('Rule (JSON)').fill(JSON.stringify(rule, null, 2));
    await admin.getByRole('button', { name: 'Create rule' }).click();
    await admin.locator('#policy-check .error').waitFor();
    const msg = await admin.locator('#policy-check .error .msg').textContent();
    check(msg.includes('effect'), 'validation message does not name the field: ' + msg);
    check((await admin.locator('#policy-check .field-at').textContent()).includes('"effect"'), 'the field is not pointed at');
    const sel = await admin.getByLabel('Rule (JSON)').evaluate((t) => t.value.slice(t.selectionStart, t.selectionEnd));
    check(sel === '"effect"', 'the editor did not select the field: ' + sel);
    await shot(admin, '09-policy-invalid');
    rule.effect = 'allow';
    await admin.getByLabel('Rule (JSON)').fill(JSON.stringify(rule, null, 2));
    await admin.getByRole('button', { name: 'Show changes' }).click();
    // Against the template: its name goes, ours comes; the unchanged effect is common.
    const added = await admin.locator('pre.diff .add').allTextContents();
    const removed = await admin.locator('pre.diff .del').allTextContents();
    check(added.some((l) => l.includes('"name": "web-approval"')) && removed.some((l) => l.includes('"name": "new-rule"'))
      && !added.concat(removed).some((l) => l.includes('"effect"')), 'diff: +' + added.join('') + ' -' + removed.join(''));
    await admin.getByRole('button', { name: 'Create rule' }).click();
    await admin.waitForSelector('p.version:text("Version 1")');
    // A second version, then its diff against the first from the history.
    rule.priority = 20;
    await admin.getByLabel('Rule (JSON)').fill(JSON.stringify(rule, null, 2));
    await admin.getByRole('button', { name: 'Save rule' }).click();
    await admin.waitForSelector('p.version:text("Version 2")');
    const versions = admin.locator('section.versions tbody tr');
    await versions.nth(1).waitFor();
    check(await versions.count() === 2, 'the history does not hold two versions');
    check((await versions.nth(0).locator('td').first().textContent()) === '2', 'newest version not first');
    await admin.getByRole('button', { name: 'Show the changes of version 2' }).click();
    await admin.locator('.version-diff[data-version="2"] pre.diff').waitFor();
    const vAdd = await admin.locator('.version-diff pre.diff .add').allTextContents();
    const vDel = await admin.locator('.version-diff pre.diff .del').allTextContents();
    check(vAdd.length === 1 && vAdd[0].includes('"priority": 20') && vDel.length === 1 && vDel[0].includes('"priority": 10'),
      'version diff: +' + vAdd.join('') + ' -' + vDel.join(''));
    check((await admin.locator('.version-diff h3').textContent()) === 'Version 2 against version 1', 'diff heading');
    await shot(admin, '09-policy-versions');
    const out = await submit(admin, 'Explain', { User: 'signer1', Key: 'rel' });
    await out.locator('.explain-result').waitFor();
    check((await out.locator('.explain-result').textContent()).includes('approval_required'), 'explain did not say approval_required');
    await go(admin, 'policies');
    await admin.locator('td', { hasText: XSS }).first().waitFor();
    await noInjectedImg(admin);
    await shot(admin, '10-policies');
  });

  // What the requests would sign: the approver sees each one's SHA-256 and command line.
  const requests = [
    { data: 'needs approval', command_line: 'osslsigncode sign -in app.exe', request_id: 'console-approval-1' },
    { data: 'to be rejected', command_line: 'osslsigncode sign -in unknown.exe', request_id: 'console-approval-2' },
  ];
  for (const q of requests) q.digest = crypto.createHash('sha256').update(q.data).digest('hex');
  async function approvalCard(p, id, q) {
    const card = p.locator(`section[data-approval-id="${id}"]`);
    await card.waitFor();
    const text = await card.textContent();
    check(text.includes('signer1') && text.includes('rel') && text.includes('sha256'), 'approval card lacks requester/key/hash');
    check((await card.locator('.digest').textContent()) === 'sha256 ' + q.digest, 'digest: ' + await card.locator('.digest').textContent());
    const cmd = card.locator('dt', { hasText: 'Command line' }).locator('xpath=following-sibling::dd[1]');
    check((await cmd.textContent()) === q.command_line, 'command line: ' + await cmd.textContent());
    return card;
  }
  async function loginAs(key, who) {
    const ctx = await browser.newContext(ctxOpts);
    ctx.setDefaultTimeout(STEP_TIMEOUT);
    const p = await ctx.newPage();
    watch(p, who);
    await p.goto(URL_BASE + '/console/');
    await p.getByLabel('API key').fill(key);
    await p.getByRole('button', { name: 'Log in' }).click();
    await p.waitForSelector('main[data-path="dashboard"]:not([aria-busy]) h1:text("Dashboard")');
    await allControlsNamed(p, who + ' dashboard');
    return [ctx, p];
  }

  let approvalId = null;
  await step('a sign request that needs approval', async () => {
    const r = await py('file_request', Object.assign({ api_key: state.signer1, key: 'rel', machine_token: state.machineToken }, requests[0]));
    approvalId = r.approval_id;
    check(/^[0-9a-f]{32}$/.test(approvalId), 'approval id ' + approvalId);
  });

  await step("the signer's home: their pending request and their usage", async () => {
    const [ctx, p] = await loginAs(state.signer1, 'signer');
    const mine = p.locator('section[aria-label="My requests"]');
    const row = mine.locator('tbody tr', { hasText: approvalId });
    await row.waitFor();
    check(await mine.locator('tbody tr').count() === 1, 'the signer sees more than their one request');
    const text = await row.textContent();
    check(text.includes('pending') && text.includes('rel') && text.includes('0/1'), 'request row: ' + text);
    const usage = p.locator('section[aria-label="My usage (30 days)"] figure');
    await usage.waitFor();
    // One signature through PKCS#11 so far (the request awaits approval: no signature yet).
    check(await usage.getAttribute('data-signatures') === '1', 'usage signatures ' + await usage.getAttribute('data-signatures'));
    await shot(p, '11-signer-home');
    await ctx.close();
  });

  await step('the approver (no TOTP for signers) approves it in a second browser context', async () => {
    const [ctx, ap] = await loginAs(state.approver1, 'approver');
    await ap.locator('[data-testid=pending-count]').waitFor();
    check((await ap.locator('[data-testid=pending-count]').textContent()) === '1', 'pending count is not 1');
    check(await ap.locator('#nav a', { hasText: 'Audit' }).count() === 0, 'a signer sees the audit page');
    // The approver filed nothing: the signer's request is not theirs.
    await ap.locator('section[aria-label="My requests"] p.muted', { hasText: 'You have no sign request' }).waitFor();
    await shot(ap, '11-approver-dashboard');
    await go(ap, 'approvals');
    const card = await approvalCard(ap, approvalId, requests[0]);
    const text = await card.textContent();
    // The machine the server verified (mTLS), apart from the host the client names.
    check((await card.locator('.machine').textContent()) === 'build-01', 'verified machine: ' + await card.locator('.machine').textContent());
    check(text.includes('build-console'), 'client-reported host missing');
    await shot(ap, '12-approvals');
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.locator('.notice').waitFor();
    check((await card.locator('.notice').textContent()).includes('approved'), 'not approved');
    await ctx.close();
  });

  await step('the signer sees their key', async () => {
    const ctx = await browser.newContext(ctxOpts);
    ctx.setDefaultTimeout(STEP_TIMEOUT);
    const p = await ctx.newPage();
    watch(p, 'signer');
    await p.goto(URL_BASE + '/console/#/keys');
    await p.getByLabel('API key').fill(state.signer1);
    await p.getByRole('button', { name: 'Log in' }).click();
    await p.waitForSelector('main h1:text("My keys")');
    await p.locator('td', { hasText: 'rel' }).first().waitFor();
    check((await p.locator('main').textContent()).includes('CN=' + XSS), 'CN not shown as text to the signer');
    await noInjectedImg(p);
    await shot(p, '15-signer-keys');
    // Their request, approved now, awaits collection.
    await go(p, 'dashboard');
    const row = p.locator('section[aria-label="My requests"] tbody tr', { hasText: approvalId });
    await row.waitFor();
    check((await row.textContent()).includes('approved') && (await row.textContent()).includes('1/1'), 'request row: ' + await row.textContent());
    await ctx.close();
  });

  await step('the requester collects the signature', async () => {
    const r = await py('collect', { approval_id: approvalId });
    check(r.status === 200 && r.signature, 'collect answered ' + JSON.stringify(r));
  });

  await step('the approver rejects a request with a reason: the signer sees it rejected, collection refused', async () => {
    const { approval_id: id } = await py('file_request', Object.assign({ api_key: state.signer1, key: 'rel' }, requests[1]));
    const [ctx, ap] = await loginAs(state.approver1, 'approver');
    await go(ap, 'approvals');
    const card = await approvalCard(ap, id, requests[1]);
    // A rejection needs its reason: refused without one, in the form's message.
    await card.getByRole('button', { name: 'Reject' }).click();
    await card.locator('.error .msg').waitFor();
    check((await card.locator('.error .msg').textContent()).includes('reason'), 'no reason asked: ' + await card.locator('.error').textContent());
    await card.getByLabel('Reason for rejecting').fill('console test: unknown binary');
    await card.getByRole('button', { name: 'Reject' }).click();
    await card.locator('.notice').waitFor();
    check((await card.locator('.notice').textContent()).includes('The request is rejected'), 'not rejected: ' + await card.locator('.notice').textContent());
    await ctx.close();
    const r = await py('collect', { approval_id: id });
    check(r.status === 403 && r.code === 'approval_rejected' && !r.signature, 'collect answered ' + JSON.stringify(r));
    const [sctx, p] = await loginAs(state.signer1, 'signer');
    const row = p.locator('section[aria-label="My requests"] tbody tr', { hasText: id });
    check((await row.locator('.badge').textContent()) === 'rejected', 'request row: ' + await row.textContent());
    await sctx.close();
    // The reason is on the record.
    await go(admin, 'audit');
    await submit(admin, 'Audit filter', { 'Action (e.g. sign)': 'approval.reject' });
    const recs = admin.locator('.audit-records[data-query*="action=approval.reject"] tbody tr');
    await recs.first().waitFor();
    const texts = await recs.allTextContents();
    check(texts.length === 2 && texts[0].includes('deniedcode=reason_required')
      && texts[1].includes('okreason=console test: unknown binary'), 'the rejections on record: ' + texts.join(' | '));
  });

  await step('remove a project member with a reason', async () => {
    await go(admin, 'projects/web');
    await admin.getByRole('button', { name: 'Remove user approver1 as approver' }).click();
    await submit(admin, 'Remove member', { Reason: 'console test: rotation of duties' });
    await admin.locator('#status', { hasText: 'Removed approver1' }).waitFor();
    check(await admin.locator('td', { hasText: 'approver1' }).count() === 0, 'approver1 still a member');
  });

  await step('delete the approval rule', async () => {
    await go(admin, 'policies/web-approval');
    await submit(admin, 'Delete rule', {});
    await admin.waitForSelector('main h1:text("Policies")');
    check(await admin.locator('td', { hasText: 'web-approval' }).count() === 0, 'rule still listed');
    // Its history outlives it: the deletion is the newest version, every line gone.
    await submit(admin, 'Find a rule', { 'Rule name (also a deleted one)': 'web-approval' });
    await admin.waitForSelector('main h1:has-text("(deleted)")');
    const versions = admin.locator('section.versions tbody tr');
    await versions.nth(2).waitFor();
    check(await versions.count() === 3 && (await versions.nth(0).textContent()).includes('deleted'), 'deletion not in the history');
    await admin.getByRole('button', { name: 'Show the changes of version 3' }).click();
    await admin.locator('.version-diff[data-version="3"] pre.diff').waitFor();
    check(await admin.locator('.version-diff pre.diff .add').count() === 0
      && await admin.locator('.version-diff pre.diff .del', { hasText: '"priority": 20' }).count() === 1, 'the deletion diff');
    check(await admin.getByRole('button', { name: 'Create rule' }).count() === 1, 'no way to create the deleted rule anew');
  });

  await step("revoke the signer's API key: the next signature is refused", async () => {
    const before = await py('p11_sign', { api_key: state.signer1, key: 'rel', expect: 'ok' });
    check(before.ok, 'pkcs11 signature before revocation failed: ' + before.detail);
    await go(admin, 'identities/users/signer1');
    await admin.getByRole('button', { name: /^Revoke API key / }).first().click();
    const out = await submit(admin, 'Revoke API key', { Reason: 'console test: key leaked' });
    await admin.locator('#status', { hasText: 'revoked' }).waitFor();
    await admin.locator('td .badge.bad', { hasText: 'revoked' }).first().waitFor();
    await shot(admin, '13-user');
    // The agent's token was minted from the revoked key: it is refused, and so is the key
    // itself as the PIN (C_Login hands it to the agent, which exchanges it for a token).
    const after = await py('p11_sign', { api_key: state.signer1, key: 'rel', pin: state.signer1 });
    check(!after.ok, 'pkcs11 signature still works after the API key was revoked');
    await go(admin, 'audit');
    await submit(admin, 'Audit filter', { Outcome: 'denied' });
    await admin.locator('.audit-records[data-query*="outcome=denied"]').waitFor();
    const denials = await admin.locator('.audit-records tbody tr').allTextContents();
    check(denials.some((r) => r.includes('code=token_invalid')), 'no token_invalid denial: ' + denials.join(' | '));
    check(denials.some((r) => r.includes('code=bad_credentials')), 'no bad_credentials denial: ' + denials.join(' | '));
  });

  await step('a POST without the CSRF token is refused', async () => {
    const r = await admin.request.post(URL_BASE + '/api/v1/admin/projects', { data: { name: 'csrf-probe' } });
    check(r.status() === 403, 'no-CSRF POST answered ' + r.status());
    check((await r.json()).error.code === 'csrf_token_invalid', 'code ' + JSON.stringify(await r.json()));
    // A page of another origin posting with the admin's cookie gets nothing either.
    const other = await adminCtx.newPage();
    await other.goto('about:blank');
    const status = await other.evaluate(async (u) => {
      try {
        const res = await fetch(u + '/api/v1/admin/projects', { method: 'POST', credentials: 'include', mode: 'no-cors',
          headers: { 'Content-Type': 'text/plain' }, body: '{"name":"csrf-probe"}' });
        return res.type;
      } catch (e) { return 'blocked'; }
    }, URL_BASE);
    await other.close();
    const list = await admin.evaluate(async () => (await (await fetch('/api/v1/admin/projects')).json()).projects.map((p) => p.name));
    check(!list.includes('csrf-probe'), 'a cross-site POST created a project (' + status + ')');
  });

  await step("reset another admin's authenticator: they enrol anew", async () => {
    await go(admin, 'identities/users');
    const out = await submit(admin, 'Create a user', { Name: 'admin2', Role: 'admin' });
    const key2 = (await out.locator('.secret-value').textContent()).trim();
    const ctx = await browser.newContext(ctxOpts);
    ctx.setDefaultTimeout(STEP_TIMEOUT);
    const p = await ctx.newPage();
    watch(p, 'admin2');
    const enrol = async () => {
      await p.getByLabel('API key').fill(key2);
      await p.getByRole('button', { name: 'Log in' }).click();
      await p.locator('.totp-secret').waitFor();
      return (await p.locator('.totp-secret').textContent()).trim();
    };
    await p.goto(URL_BASE + '/console/');
    const first = await enrol();
    await p.getByLabel('Code from the app').fill(totp(first, nowStep()));
    await p.getByRole('button', { name: 'Confirm and log in' }).click();
    await p.waitForSelector('main h1:text("Dashboard")');
    await go(admin, 'identities/users/admin2');
    await submit(admin, 'Reset authenticator', { Reason: 'console test: lost phone' });
    await admin.locator('#status', { hasText: 'Authenticator reset' }).waitFor();
    // Their session ended with the reset; the next login enrols a new secret.
    await p.reload();
    await p.locator('#login-title').waitFor();
    const second = await enrol();
    check(second !== first, 'the reset kept the old secret');
    await ctx.close();
  });

  await step('logout, then a TOTP login; a replayed code is refused', async () => {
    await admin.getByRole('button', { name: 'Log out' }).click();
    await admin.waitForSelector('#login-title');
    await admin.getByLabel('API key').fill(ADMIN_KEY);
    await admin.getByRole('button', { name: 'Log in' }).click();
    await admin.locator('.login .form-out .error').waitFor();
    check((await admin.locator('.login .form-out .error .code').textContent()).startsWith('totp_required'), 'no totp_required');
    await shot(admin, '00-login');
    // The confirmation spent its step and every earlier one; the server takes one step of
    // skew, so the next step's code is good now (and is, by then, the current one).
    const c = totp(secret, Math.max(nowStep(), confirmStep + 1));
    await admin.getByLabel(/One-time code/).fill(c);
    await admin.getByRole('button', { name: 'Log in' }).click();
    await admin.waitForSelector('main h1:text("Dashboard")');
    await admin.getByRole('button', { name: 'Log out' }).click();
    await admin.waitForSelector('#login-title');
    await admin.getByLabel('API key').fill(ADMIN_KEY);
    await admin.getByLabel(/One-time code/).fill(c);
    await admin.getByRole('button', { name: 'Log in' }).click();
    await admin.locator('.login .form-out .error').waitFor();
    check((await admin.locator('.login .form-out .error .code').textContent()).startsWith('totp_replayed'), 'replayed code not refused');
  });

  await step('narrow window', async () => {
    const ctx = await browser.newContext(Object.assign({}, ctxOpts, { viewport: { width: 400, height: 800 } }));
    const p = await ctx.newPage();
    watch(p, 'narrow');
    await p.goto(URL_BASE + '/console/');
    // The keyboard alone: the API key field has the focus, Enter submits.
    await p.locator('#login-title').waitFor();
    await p.keyboard.type(state.approver1);
    await p.keyboard.press('Enter');
    await p.waitForSelector('main h1:text("Dashboard")');
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(overflow <= 0, 'the page scrolls sideways at 400 px: ' + overflow);
    await shot(p, '14-narrow-dashboard');
    await ctx.close();
  });
} catch (err) {
  failures.unshift(err.stack || String(err));
  // What the pages showed when it failed.
  for (const [i, ctx] of browser.contexts().entries()) {
    for (const [j, p] of ctx.pages().entries()) {
      try {
        await p.screenshot({ path: path.join(SHOTS, `failure-${i}-${j}.png`), fullPage: true });
        failures.push(`page ${i}-${j} ${p.url()}:\n` + (await p.locator('main').innerText()).slice(0, 3000));
      } catch (e) { /* the page may be gone */ }
    }
  }
} finally {
  await browser.close();
}
if (failures.length) {
  console.error('FAILED:\n' + failures.join('\n'));
  code = 1;
}
console.log(`console.test: ${failures.length ? 'failed' : 'passed'} in ${((Date.now() - t0) / 1000).toFixed(1)} s; every control named on ${namedPages.size} pages; screenshots in ${SHOTS}`);
rl.close();
process.exit(code);
