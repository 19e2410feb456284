/** Fleet overview: certificates by status, expiring in 30/90 days (chart), AWS IoT sync state, dead outbox jobs. */
import { listCertificates } from '../../../clients/fleet-pki-client';
import { allPages, call, rawGet, type Session } from '../api';
import { BarChart, type Bar } from '../chart';
import { ErrorLine, h, Tile, useLoad } from '../ui';

const DAY = 86_400_000;
/** The overview reads at most this many pages of 500 certificates (docs/console.md); it says so when it stops early. */
const MAX_PAGES = 40;

interface Summary {
  total: number;
  complete: boolean;
  byStatus: Record<string, number>;
  byIot: Record<string, number>;
  within30: number;
  within90: number;
  weeks: Bar[];
  deadJobs: number | null;
  deadJobsMore: boolean;
}

async function summarize(session: Session): Promise<Summary> {
  const { items, complete } = await allPages(
    (cursor) => call(listCertificates({ client: session.client, query: { limit: 500, cursor } })),
    MAX_PAGES,
  );
  const now = Date.now();
  const byStatus: Record<string, number> = { active: 0, revoked: 0, superseded: 0, expired: 0 };
  const byIot: Record<string, number> = {};
  const weeks = Array.from({ length: 13 }, (_, i) => ({ label: `w${i + 1}`, value: 0 }) as Bar);
  let within30 = 0;
  let within90 = 0;
  for (const cert of items) {
    byStatus[cert.status] = (byStatus[cert.status] ?? 0) + 1;
    byIot[cert.iot.status] = (byIot[cert.iot.status] ?? 0) + 1;
    if (cert.status !== 'active') continue;
    const left = Date.parse(cert.notAfter) - now;
    if (left < 0 || left > 91 * DAY) continue;
    if (left <= 30 * DAY) within30++;
    if (left <= 90 * DAY) within90++;
    weeks[Math.min(12, Math.floor(left / (7 * DAY)))].value++;
  }
  weeks.forEach((bar, i) => (bar.tone = i < 5 ? 'alert' : 'warn'));
  // GET /v1/jobs?state=dead is newer than some deployments: a 404 hides the tile.
  const jobs = await rawGet(session, '/v1/jobs?state=dead&limit=500');
  const jobBody = jobs.body as { items?: unknown[]; nextCursor?: string | null } | null;
  const deadJobs = jobs.status === 200 && Array.isArray(jobBody?.items) ? jobBody.items.length : null;
  return { total: items.length, complete, byStatus, byIot, within30, within90, weeks, deadJobs, deadJobsMore: Boolean(jobBody?.nextCursor) };
}

export function Overview(props: { session: Session }) {
  const { data, error, loading } = useLoad(() => summarize(props.session));
  if (error) return h(ErrorLine, { error });
  if (loading || !data) return h('p', { class: 'muted' }, 'Loading the fleet…');
  return h(
    'section',
    { 'data-testid': 'overview' },
    h('h2', null, 'Fleet overview'),
    !data.complete && h('p', { class: 'muted' }, `Counts cover the first ${data.total} certificates only.`),
    h('h3', null, 'Certificates by status'),
    h(
      'div',
      { class: 'tiles' },
      h(Tile, { label: 'total', value: data.total, testId: 'tile-total' }),
      ...Object.entries(data.byStatus).map(([status, count]) => h(Tile, { label: status, value: count, testId: `tile-${status}`, tone: status })),
      data.deadJobs !== null && h(Tile, { label: 'dead outbox jobs', value: `${data.deadJobs}${data.deadJobsMore ? '+' : ''}`, testId: 'tile-dead-jobs', tone: data.deadJobs > 0 ? 'revoked' : '' }),
    ),
    h('h3', null, 'Expiring soon (active certificates)'),
    h('div', { class: 'tiles' }, h(Tile, { label: 'within 30 days', value: data.within30, testId: 'tile-expiring-30', tone: 'revoked' }), h(Tile, { label: 'within 90 days', value: data.within90, testId: 'tile-expiring-90', tone: 'superseded' })),
    h(BarChart, { bars: data.weeks, title: 'Active certificates expiring per week over the next 13 weeks', testId: 'expiry-chart' }),
    h('h3', null, 'AWS IoT sync state'),
    h('div', { class: 'tiles' }, ...Object.entries(data.byIot).sort().map(([state, count]) => h(Tile, { label: state, value: count, testId: `tile-iot-${state}` }))),
  );
}
