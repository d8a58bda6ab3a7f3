// Unit tests of the console's pure functions, under node:test (no browser): the certificate
// reader behind the key pages, the policy editor's line diff, the CSV export's cell quoting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// server/console/ holds ES modules without a package.json (every file there is served): Node 18
// would read them as CommonJS, so they are imported from a copy marked "type": "module".
const src = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'console');
const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'signum-console-js-'));
for (const f of fs.readdirSync(src)) if (f.endsWith('.js')) fs.copyFileSync(path.join(src, f), path.join(copy, f));
fs.writeFileSync(path.join(copy, 'package.json'), '{"type": "module"}');
const load = (f) => import(pathToFileURL(path.join(copy, f)).href);
const { certInfo } = await load('ui.js');
const { diffLines } = await load('pages_policies.js');
const { csvCell } = await load('pages_audit.js');
fs.rmSync(copy, { recursive: true, force: true });

test('certInfo reads subject, issuer and notAfter of a DER certificate', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signum-console-unit-'));
  try {
    const der = path.join(dir, 'c.der');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', path.join(dir, 'k.pem'), '-subj', '/O=Signum Tests/CN=<img src=x onerror=alert(1)>',
      '-days', '3650', '-outform', 'DER', '-out', der], { stdio: 'pipe' });
    const end = execFileSync('openssl', ['x509', '-inform', 'DER', '-in', der, '-noout', '-enddate']).toString();
    const info = certInfo(fs.readFileSync(der).toString('base64'));
    assert.equal(info.subject, 'O=Signum Tests, CN=<img src=x onerror=alert(1)>');
    assert.equal(info.issuer, info.subject);
    assert.equal(info.notAfter, Date.parse(end.trim().replace('notAfter=', '')) / 1000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('certInfo answers null for what is not a certificate', () => {
  assert.equal(certInfo('AAAA'), null);
  assert.equal(certInfo('not base64!'), null);
});

test('diffLines keeps common lines and marks additions and removals', () => {
  assert.deepEqual(diffLines('a\nb\nc', 'a\nx\nc'), [[' ', 'a'], ['-', 'b'], ['+', 'x'], [' ', 'c']]);
  assert.deepEqual(diffLines('a', 'a'), [[' ', 'a']]);
  assert.deepEqual(diffLines('', 'n'), [['-', ''], ['+', 'n']]);
});

test('csvCell quotes separators and defuses spreadsheet formulas', () => {
  assert.equal(csvCell('plain'), 'plain');
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell('=HYPERLINK("x")'), '"\'=HYPERLINK(""x"")"');
  assert.equal(csvCell('-1'), "'-1");
  assert.equal(csvCell({ a: 1 }), '"{""a"":1}"');
  assert.equal(csvCell(null), '');
});
