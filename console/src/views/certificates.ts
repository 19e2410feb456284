/**
 * Certificate search and detail, with revocation behind a confirmation dialog that asks for the RFC 5280 reason.
 * The revoke button shows only to roles that may revoke (GET /v1/me); the API refuses the others anyway.
 */
import { getCertificate, listCertificates, revokeCertificate } from '../../../clients/fleet-pki-client';
import { call, can, type Session } from '../api';
import { Badge, date, ErrorLine, h, useLoad } from '../ui';
import { useState } from 'preact/hooks';

const REASONS = ['keyCompromise', 'cessationOfOperation', 'superseded', 'affiliationChanged', 'privilegeWithdrawn', 'unspecified'] as const;
const STATUSES = ['', 'active', 'revoked', 'superseded', 'expired'];

interface Query {
  thingName?: string;
  serial?: string;
  fingerprint?: string;
  status?: string;
}

type Summary = Awaited<ReturnType<typeof searchCertificates>>['items'][number];

function searchCertificates(session: Session, query: Query) {
  const clean = Object.fromEntries(Object.entries(query).filter(([, v]) => v)) as Query;
  return call(listCertificates({ client: session.client, query: { limit: 100, ...clean } as never }));
}

function RevokeDialog(props: { session: Session; certificate: { id: string; subject: string; serial: string }; onDone: (status: string) => void; onCancel: () => void }) {
  const [reason, setReason] = useState<string>('keyCompromise');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const confirm = async () => {
    setBusy(true);
    try {
      const result = await call(revokeCertificate({ client: props.session.client, path: { id: props.certificate.id }, body: { reason: reason as never } }));
      props.onDone(result.status);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return h(
    'div',
    { class: 'modal-backdrop' },
    h(
      'div',
      { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'revoke-title', 'data-testid': 'revoke-dialog' },
      h('h3', { id: 'revoke-title' }, 'Revoke this certificate?'),
      h('p', null, h('strong', null, props.certificate.subject), h('br', null), h('span', { class: 'mono small' }, `serial ${props.certificate.serial}`)),
      h('p', null, 'Revocation cannot be undone: the next CRL and every OCSP answer will list it.'),
      h('label', null, 'Reason ', h('select', { value: reason, 'data-testid': 'revoke-reason', onChange: (e: Event) => setReason((e.target as HTMLSelectElement).value) }, ...REASONS.map((r) => h('option', { value: r }, r)))),
      h(ErrorLine, { error }),
      h('div', { class: 'actions' }, h('button', { type: 'button', onClick: props.onCancel, disabled: busy }, 'Cancel'), h('button', { type: 'button', class: 'danger', 'data-testid': 'revoke-confirm', onClick: confirm, disabled: busy }, 'Revoke')),
    ),
  );
}

function Detail(props: { session: Session; id: string; onChanged: (id: string, status: string) => void }) {
  const { data, error, reload } = useLoad(() => call(getCertificate({ client: props.session.client, path: { id: props.id } })), [props.id]);
  const [confirming, setConfirming] = useState(false);
  if (error) return h(ErrorLine, { error });
  if (!data) return h('p', { class: 'muted' }, 'Loading…');
  const cert = data as Exclude<typeof data, string | Blob | ArrayBuffer> & Record<string, never>;
  const rows: [string, unknown][] = [
    ['Status', h(Badge, { value: cert.status })],
    ['Subject', cert.subject],
    ['Thing', cert.thingName ?? '—'],
    ['Serial', h('span', { class: 'mono' }, cert.serial)],
    ['Fingerprint', h('span', { class: 'mono small' }, cert.fingerprint)],
    ['Profile / key', `${cert.profile} · ${cert.keyType}`],
    ['Valid', `${date(cert.notBefore)} → ${date(cert.notAfter)}`],
    ['Revoked', cert.revokedAt ? `${date(cert.revokedAt)} (${cert.revocationReason})` : '—'],
    ['AWS IoT', `${cert.iot.status}${cert.iot.lastError ? ` — ${cert.iot.lastError}` : ''}`],
    ['Claim', cert.claimId ?? '—'],
  ];
  const mayRevoke = can(props.session, 'certificates:revoke') && cert.status === 'active';
  return h(
    'div',
    { class: 'detail', 'data-testid': 'certificate-detail' },
    h('h3', null, 'Certificate'),
    h('table', { class: 'kv' }, h('tbody', null, ...rows.map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v as never))))),
    mayRevoke && h('button', { type: 'button', class: 'danger', 'data-testid': 'revoke-button', onClick: () => setConfirming(true) }, 'Revoke…'),
    confirming &&
      h(RevokeDialog, {
        session: props.session,
        certificate: cert,
        onCancel: () => setConfirming(false),
        onDone: (status) => {
          setConfirming(false);
          props.onChanged(cert.id, status);
          reload();
        },
      }),
  );
}

export function Certificates(props: { session: Session }) {
  const [form, setForm] = useState<Query>({});
  const [query, setQuery] = useState<Query>({});
  const [selected, setSelected] = useState<string | null>(null);
  const [overrides, setOverrides] = useState<Record<string, string>>({});
  const { data, error, loading } = useLoad(() => searchCertificates(props.session, query), [JSON.stringify(query)]);
  const field = (name: keyof Query, label: string, placeholder: string) =>
    h('label', null, label, h('input', { name, placeholder, value: form[name] ?? '', 'data-testid': `search-${name}`, onInput: (e: Event) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value.trim() }) }));
  const items: Summary[] = data?.items ?? [];
  return h(
    'section',
    null,
    h('h2', null, 'Certificates'),
    h(
      'form',
      { class: 'search', onSubmit: (e: Event) => (e.preventDefault(), setQuery({ ...form }), setOverrides({})) },
      field('thingName', 'Thing ', 'acme-sensor-000123'),
      field('serial', 'Serial ', 'lowercase hex'),
      field('fingerprint', 'SHA-256 ', '64 hex characters'),
      h('label', null, 'Status ', h('select', { value: form.status ?? '', onChange: (e: Event) => setForm({ ...form, status: (e.target as HTMLSelectElement).value }) }, ...STATUSES.map((s) => h('option', { value: s }, s || 'any')))),
      h('button', { type: 'submit', 'data-testid': 'search-submit' }, 'Search'),
    ),
    h(ErrorLine, { error }),
    loading && h('p', { class: 'muted' }, 'Searching…'),
    h(
      'div',
      { class: 'split' },
      h(
        'table',
        { class: 'list', 'data-testid': 'certificate-results' },
        h('thead', null, h('tr', null, h('th', null, 'Thing'), h('th', null, 'Serial'), h('th', null, 'Status'), h('th', null, 'Not after'), h('th', null, 'AWS IoT'))),
        h(
          'tbody',
          null,
          ...items.map((c) =>
            h(
              'tr',
              { class: selected === c.id ? 'selected' : '', 'data-testid': 'certificate-row', 'data-id': c.id, onClick: () => setSelected(c.id) },
              h('td', null, c.thingName ?? c.subject),
              h('td', { class: 'mono small' }, c.serial.slice(0, 16)),
              h('td', null, h(Badge, { value: overrides[c.id] ?? c.status })),
              h('td', null, date(c.notAfter)),
              h('td', null, c.iot.status),
            ),
          ),
        ),
      ),
      selected && h(Detail, { session: props.session, id: selected, onChanged: (id, status) => setOverrides({ ...overrides, [id]: status }) }),
    ),
    data && items.length === 0 && h('p', { class: 'muted' }, 'No certificate matches.'),
  );
}
