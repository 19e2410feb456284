/** Rotation campaigns with live progress: the page polls every POLL_MS while it is shown. */
import { getRotation, listRotations } from '../../../clients/fleet-pki-client';
import { allPages, call, type Session } from '../api';
import { Badge, date, ErrorLine, h, Progress, useLoad, usePolling } from '../ui';

export const POLL_MS = 2000;

async function campaigns(session: Session) {
  // The latest 100 campaigns, each with its progress; the poll re-reads them all (docs/console.md).
  const list = await allPages((cursor) => call(listRotations({ client: session.client, query: { limit: 100, cursor } })), 1);
  return Promise.all(list.items.map((item) => call(getRotation({ client: session.client, path: { id: item.id } }))));
}

export function Rotations(props: { session: Session }) {
  const { data, error, reload } = useLoad(() => campaigns(props.session));
  usePolling(reload, POLL_MS);
  if (error) return h(ErrorLine, { error });
  if (!data) return h('p', { class: 'muted' }, 'Loading…');
  return h(
    'section',
    null,
    h('h2', null, 'Rotation campaigns'),
    h('p', { class: 'muted small' }, `Live: refreshed every ${POLL_MS / 1000} s.`),
    data.length === 0 && h('p', { class: 'muted' }, 'No campaigns.'),
    ...data.map((c) =>
      h(
        'div',
        { class: 'campaign', 'data-testid': 'campaign', 'data-id': c.id },
        h('div', null, h('strong', null, c.reason), ' ', h(Badge, { value: c.status }), h('span', { class: 'muted' }, ` deadline ${date(c.deadline)} · on deadline: ${c.onDeadline}`)),
        h(Progress, { value: c.progress.renewed, max: c.progress.total }),
        h(
          'div',
          { class: 'small' },
          h('span', { 'data-testid': 'campaign-renewed' }, `${c.progress.renewed} / ${c.progress.total} renewed`),
          ` · ${c.progress.pending} pending · ${c.progress.revoked} revoked · ${c.progress.overdue} overdue`,
        ),
      ),
    ),
  );
}
