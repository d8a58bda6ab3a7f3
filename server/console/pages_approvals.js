// Approvals: the requests waiting for the caller's decision (never their own), with what would
// be signed and the client's context; approve, or reject with a reason.
import { get, post, enc } from './api.js';
import { h, field, input, form, fmtTime, clear, kv, notice, badge } from './ui.js';

export async function approvalsPage(m) {
  m.appendChild(h('h1', { text: 'Approvals' }));
  const r = await get('/api/v1/approvals');
  if (!r.approvals.length) {
    m.appendChild(h('p', { class: 'muted', text: 'No request awaits your decision.' }));
    return;
  }
  for (const a of r.approvals) m.appendChild(approvalCard(a));
}

function approvalCard(a) {
  const q = a.request || {};
  const ctx = q.context || {};
  const digests = q.digests || (q.digest ? [q.digest] : []);
  const out = h('div', { class: 'decision-out' });
  const card = h('section', { class: 'card approval', 'data-approval-id': a.approval_id, 'aria-label': 'Approval request ' + a.approval_id },
    h('h2', {}, 'Key ', h('span', { class: 'mono', text: q.key || '?' }), ' for ', h('span', { text: a.requester || '?' })),
    kv([
      ['Request', h('span', { class: 'mono', text: a.approval_id })],
      ['Status', badge(`${a.status}: ${a.approvals}/${a.required} approvals`, a.status === 'pending' ? 'warn' : 'ok')],
      ['Rule', a.rule],
      ['Digest', h('span', { class: 'mono digest', text: `${q.hash || ''} ${digests.map(b64hex).join(', ')}` })],
      ['Mechanism', q.mechanism || ''],
      // The machine whose client certificate the server verified (mTLS), kept apart from the
      // host name the client reports about itself, which anyone can write.
      ['Machine (verified, mTLS)', h('span', { class: 'machine' + (a.machine ? ' mono' : ' muted'),
        text: a.machine || 'none: the request came without a machine certificate' })],
      ['Host (client-reported)', ctx.host || null],
      ['Application', ctx.application || null],
      ['Command line', ctx.command_line ? h('span', { class: 'mono', text: ctx.command_line }) : null],
      ['Client request id', q.request_id || null],
      ['Requested', fmtTime(a.created_at)], ['Expires', fmtTime(a.expires_at)],
    ]));
  if (a.decided_by_me) {
    card.appendChild(notice('You have decided on this request.'));
    return card;
  }
  const base = '/api/v1/approvals/' + enc(a.approval_id);
  const buttons = h('div', { class: 'actions' },
    form('inline', [], 'Approve', async () => {
      const r = await post(base + '/approve');
      return done(r);
    }, { name: 'Approve ' + a.approval_id }),
    form('inline', [field('Reason for rejecting', input('reason', { required: true, size: 30 }))], 'Reject', async (v) => {
      const r = await post(base + '/reject', { reason: v.reason });
      return done(r);
    }, { danger: true, name: 'Reject ' + a.approval_id }));
  function done(r) {
    clear(buttons);
    out.appendChild(notice(`Your decision: ${r.decision}. The request is ${r.status} (${r.approvals}/${r.required}).`));
    return null;
  }
  card.appendChild(buttons);
  card.appendChild(out);
  return card;
}

function b64hex(b64) {
  try {
    return Array.from(atob(b64), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  } catch (e) {
    return b64;
  }
}
