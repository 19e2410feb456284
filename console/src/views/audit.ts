/** The audit trail (newest pages first as the API lists them) and the hash chain's status (GET /v1/audit/verify). */
import { listAuditEvents, verifyAuditChain } from '../../../clients/fleet-pki-client';
import { call, type Session } from '../api';
import { date, ErrorLine, h, useLoad } from '../ui';
import { useState } from 'preact/hooks';

export function Audit(props: { session: Session }) {
  const [action, setAction] = useState('');
  const [filter, setFilter] = useState('');
  const chain = useLoad(() => call(verifyAuditChain({ client: props.session.client })));
  const events = useLoad(() => call(listAuditEvents({ client: props.session.client, query: { limit: 200, ...(filter ? { action: filter } : {}) } })), [filter]);
  const verify = chain.data;
  return h(
    'section',
    null,
    h('h2', null, 'Audit trail'),
    h(ErrorLine, { error: chain.error }),
    verify &&
      h(
        'div',
        { class: `chain ${verify.ok ? 'ok' : 'broken'}`, 'data-testid': 'audit-chain' },
        verify.ok ? `Chain intact: ${verify.checked} events verified` : `Chain BROKEN at event ${verify.firstBrokenSeq ?? '?'} (${verify.checked} verified before it)`,
        ' ',
        h('button', { type: 'button', onClick: chain.reload }, 'Verify again'),
      ),
    h('form', { class: 'search', onSubmit: (e: Event) => (e.preventDefault(), setFilter(action.trim())) }, h('label', null, 'Action ', h('input', { value: action, placeholder: 'certificate.revoked', onInput: (e: Event) => setAction((e.target as HTMLInputElement).value) })), h('button', { type: 'submit' }, 'Filter')),
    h(ErrorLine, { error: events.error }),
    events.data &&
      h(
        'table',
        { class: 'list', 'data-testid': 'audit-events' },
        h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'When'), h('th', null, 'Actor'), h('th', null, 'Action'), h('th', null, 'Target'), h('th', null, 'Request'))),
        h(
          'tbody',
          null,
          ...events.data.items.map((e) =>
            h('tr', null, h('td', null, String(e.seq)), h('td', { class: 'small' }, date(e.occurredAt)), h('td', { class: 'small' }, `${e.actor.type}${e.actor.role ? ` (${e.actor.role})` : ''}`), h('td', null, e.action), h('td', { class: 'small mono' }, e.target ? `${e.target.type} ${e.target.id.slice(0, 12)}` : '—'), h('td', { class: 'small mono' }, e.requestId ?? '—')),
          ),
        ),
      ),
  );
}
