/** Factory claims, with quota usage per factory line (used / maxDevices of the line's claims) and per claim. */
import { listClaims } from '../../../clients/fleet-pki-client';
import { allPages, call, type Session } from '../api';
import { Badge, date, ErrorLine, h, Progress, useLoad } from '../ui';

export function Claims(props: { session: Session }) {
  const { data, error } = useLoad(() => allPages((cursor) => call(listClaims({ client: props.session.client, query: { limit: 500, cursor } })), 20));
  if (error) return h(ErrorLine, { error });
  if (!data) return h('p', { class: 'muted' }, 'Loading…');
  const claims = data.items;
  const lines = new Map<string, { factory: string; line: string; used: number; max: number; active: number }>();
  for (const c of claims) {
    const key = `${c.factory}\u0000${c.line ?? ''}`;
    const entry = lines.get(key) ?? { factory: c.factory, line: c.line ?? '—', used: 0, max: 0, active: 0 };
    entry.used += c.used;
    entry.max += c.maxDevices;
    if (c.status === 'active') entry.active++;
    lines.set(key, entry);
  }
  return h(
    'section',
    null,
    h('h2', null, 'Factory claims'),
    h('h3', null, 'Quota usage per factory line'),
    h(
      'table',
      { class: 'list', 'data-testid': 'claim-lines' },
      h('thead', null, h('tr', null, h('th', null, 'Factory'), h('th', null, 'Line'), h('th', null, 'Active claims'), h('th', null, 'Used / quota'), h('th', { class: 'wide' }, ''))),
      h('tbody', null, ...[...lines.values()].map((l) => h('tr', null, h('td', null, l.factory), h('td', null, l.line), h('td', null, String(l.active)), h('td', null, `${l.used} / ${l.max}`), h('td', null, h(Progress, { value: l.used, max: l.max }))))),
    ),
    h('h3', null, 'Claims'),
    h(
      'table',
      { class: 'list', 'data-testid': 'claims' },
      h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Factory / line'), h('th', null, 'Status'), h('th', null, 'Used / quota'), h('th', null, 'Allow-list'), h('th', null, 'Window'), h('th', null, 'Last exchange'))),
      h(
        'tbody',
        null,
        ...claims.map((c) =>
          h('tr', null, h('td', null, c.name), h('td', null, `${c.factory} / ${c.line ?? '—'}`), h('td', null, h(Badge, { value: c.status })), h('td', null, `${c.used} / ${c.maxDevices}`, h(Progress, { value: c.used, max: c.maxDevices })), h('td', null, c.allowlistSize === null ? 'none' : String(c.allowlistSize)), h('td', { class: 'small' }, `${date(c.notBefore)} → ${date(c.notAfter)}`), h('td', null, date(c.lastExchangeAt))),
        ),
      ),
    ),
    claims.length === 0 && h('p', { class: 'muted' }, 'No claims yet.'),
  );
}
