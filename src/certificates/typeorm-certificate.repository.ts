import { Injectable } from '@nestjs/common';
import { IsNull, Not } from 'typeorm';
import { AuthorityEntity } from '../database/entities/authority.entity';
import { CertificateEntity } from '../database/entities/certificate.entity';
import { toAuthority } from '../authorities/typeorm-authority.repository';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { Authority } from '../authorities/authority';
import { RevocationReason } from '../pki/crl';
import { CERTIFICATE_SUMMARY_FIELDS, CertificateRecord, CertificateSummary, HardwareAttestation, IotStatus, IotThingOptions, StoredCertificateStatus } from './certificate';
import { CertificateQuery, CertificateRepository, IssuanceReads } from './certificate.repository';

@Injectable()
export class TypeOrmCertificateRepository extends CertificateRepository {
  /** withAuthoritySql's text, made once (the column lists never change). */
  private withAuthority: string | undefined;

  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(record: CertificateRecord): Promise<void> {
    await this.db.insert(CertificateEntity, toRow(record));
  }

  async insertMany(records: CertificateRecord[]): Promise<void> {
    if (records.length > 0) await this.db.insertMany(CertificateEntity, records.map(toRow));
  }


  async claimOfClaimCertificate(certificateId: string): Promise<string | null> {
    const [row] = await this.db.sql<{ id: string }>('SELECT id FROM claims WHERE claim_certificate_id = ?', [certificateId]);
    return row?.id ?? null;
  }

  async findById(id: string): Promise<CertificateRecord | null> {
    const [row] = await this.db.select(CertificateEntity, 'id = ?', [id]);
    return row ? toRecord(row) : null;
  }

  /**
   * A page of the newest-first search. Every filter is served by an index that also yields (issued_at, id) order, so
   * the scan stops after `limit` rows (docs/architecture.md#search-indexes); the keyset position is a row comparison,
   * which both databases use as the start of that index range. An expiry filter (expiringBefore, or status expired)
   * walks the not_after buckets instead: see searchByExpiryBuckets.
   */
  async search(query: CertificateQuery): Promise<CertificateSummary[]> {
    const limit = pageLimit(query.limit);
    if (usesExpiryBuckets(query) && !this.db.isPostgres) {
      const rows = await this.searchByExpiryBuckets(query, limit);
      if (rows) return rows.map(toSummary);
    }
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (condition: string, ...values: unknown[]) => {
      where.push(condition);
      params.push(...values);
    };
    switch (query.status) {
      case undefined:
        break;
      case 'active':
        add("status = 'active' AND not_after > ?", query.now);
        break;
      case 'expired':
        add("status = 'active' AND not_after <= ?", query.now);
        break;
      default:
        add('status = ?', query.status);
    }
    if (query.authorityId) add('authority_id = ?', query.authorityId);
    if (query.claimId) add('claim_id = ?', query.claimId);
    if (query.thingName) add('thing_name = ?', query.thingName);
    if (query.serial) add('serial = ?', query.serial);
    if (query.fingerprint) add('fingerprint = ?', query.fingerprint);
    if (query.expiringBefore) add('not_after < ?', query.expiringBefore);
    if (query.before) add('(issued_at, id) < (?, ?)', query.before.issuedAt, query.before.id);
    const plain = where.length ? where.join(' AND ') : '1 = 1';
    if (usesExpiryBuckets(query) && this.db.isPostgres) return (await this.searchByExpiryPostgres(query, limit, plain, params)).map(toSummary);
    const rows = await this.db.selectProperties(CertificateEntity, CERTIFICATE_SUMMARY_FIELDS, plain, params, ` ORDER BY issued_at DESC, id DESC LIMIT ${limit}`);
    return rows.map(toSummary);
  }

  /**
   * A search with an expiry filter: the rows match a not_after range but come newest-issued first, and the two orders
   * are nearly the same (a certificate expires a lifetime after its issuance), so neither a walk in issue order (it
   * skips every newer certificate that does not expire in the range) nor a walk of the range (it reads every match,
   * then sorts) stops early. idx_certificates_expiry_buckets orders each status's rows by 10-day bucket of not_after
   * ('YYYY-MM-D', the first 9 characters), then issued_at, so each bucket is a list in page order and the page is the
   * newest `limit` of their merge, read from the index alone; only the page's rows are fetched. SQLite (this method)
   * takes a UNION ALL of the newest `limit` entries of every bucket the range touches; PostgreSQL merges the buckets
   * newest first and stops early, in one statement (searchByExpiryPostgres). Null: too many buckets (a range over more
   * than ~8 years), the caller falls back to the plain query.
   */
  private async searchByExpiryBuckets(query: CertificateQuery, limit: number): Promise<SummaryRow[] | null> {
    const { statuses, above, upTo } = expiryRange(query);
    // The range the buckets cover: the filter's own bounds when it has both (active, expiringBefore: the usual question),
    // else what is stored of these statuses (one index probe each end), cut to the filter's bounds.
    let buckets = above !== undefined && query.expiringBefore !== undefined ? expiryBuckets(above, query.expiringBefore) : null;
    if (buckets === null) {
      const stored = await this.db.sql<{ lowest: string | null; highest: string | null }>(
        statuses.map(() => 'SELECT (SELECT min(not_after) FROM certificates WHERE status = ?) AS lowest, (SELECT max(not_after) FROM certificates WHERE status = ?) AS highest').join(' UNION ALL '),
        statuses.flatMap((status) => [status, status]),
      );
      if (stored.every((row) => row.lowest === null)) return [];
      const present = (values: (string | null | undefined)[]) => values.filter((v): v is string => v != null);
      const least = (values: string[]) => values.reduce((a, b) => (a < b ? a : b));
      const greatest = (values: string[]) => values.reduce((a, b) => (a > b ? a : b));
      const from = greatest(present([least(present(stored.map((row) => row.lowest))), above]));
      const to = least(present([greatest(present(stored.map((row) => row.highest))), query.expiringBefore, upTo]));
      buckets = expiryBuckets(from, to);
    }
    if (buckets === null || buckets.length * statuses.length > MAX_SQLITE_BRANCHES) return null;
    if (buckets.length === 0) return [];
    const { conditions, params } = bucketConditions(query, above, upTo);
    const newest = `SELECT e.id, e.issued_at FROM certificates e WHERE e.status = ? AND substr(e.not_after, 1, 9) = ?${conditions} ORDER BY e.issued_at DESC, e.id DESC LIMIT ${limit}`;
    const branches = statuses.flatMap((status) => buckets.map((bucket) => ({ status, bucket })));
    const candidates = `SELECT k.id FROM (${branches.map(() => `SELECT * FROM (${newest})`).join(' UNION ALL ')}) k ORDER BY k.issued_at DESC, k.id DESC LIMIT ${limit}`;
    return this.db.selectProperties(CertificateEntity, CERTIFICATE_SUMMARY_FIELDS, `id IN (${candidates})`, branches.flatMap(({ status, bucket }) => [status, bucket, ...params]), ' ORDER BY issued_at DESC, id DESC');
  }

  /**
   * The expiry search on PostgreSQL, in one statement (one round trip): the range's bounds (the filter's, cut to what
   * is stored of these statuses: one index probe each end), its bucket keys, and the page, merged from the buckets
   * newest first (newestOfBucketsPostgres). A range over more than MAX_EXPIRY_MONTHS months, or bounds that are not
   * 4-digit-year times, takes the plain query instead (`plain`, `plainParams`: search's own condition), in the same
   * statement behind a one-time test.
   */
  private searchByExpiryPostgres(query: CertificateQuery, limit: number, plain: string, plainParams: unknown[]): Promise<SummaryRow[]> {
    const { statuses, above, upTo } = expiryRange(query);
    const { conditions, params } = bucketConditions(query, above, upTo);
    const keyset = query.before ? [query.before.issuedAt, query.before.id] : [];
    const month = (time: string) => `(substr(${time}, 1, 4)::int * 12 + substr(${time}, 6, 2)::int - 1)`;
    const range =
      `range AS MATERIALIZED (SELECT t.lo, t.hi, t.valid AND CASE WHEN t.valid THEN ${month('t.hi')} - ${month('t.lo')} <= ${MAX_EXPIRY_MONTHS} END AS fits FROM (` +
      `SELECT b.lo, b.hi, coalesce(b.lo ~ '^[0-9]{4}-[0-9]{2}-[0-9]' AND b.hi ~ '^[0-9]{4}-[0-9]{2}-[0-9]', false) AS valid FROM (` +
      `SELECT greatest(min(r.lowest), ?::text) AS lo, least(max(r.highest), ?::text, ?::text) AS hi FROM statuses s CROSS JOIN LATERAL (` +
      `SELECT (SELECT min(x.not_after) FROM certificates x WHERE x.status = s.status) AS lowest, (SELECT max(x.not_after) FROM certificates x WHERE x.status = s.status) AS highest) r) b) t)`;
    const keys =
      `keys AS MATERIALIZED (SELECT k.bucket FROM range r CROSS JOIN LATERAL generate_series(CASE WHEN r.fits THEN ${month('r.lo')} END, CASE WHEN r.fits THEN ${month('r.hi')} END) AS m(month) ` +
      `CROSS JOIN LATERAL (SELECT lpad((m.month / 12)::text, 4, '0') || '-' || lpad((m.month % 12 + 1)::text, 2, '0') || '-' || d.tens AS bucket FROM unnest('{0,1,2,3}'::text[]) AS d(tens)) k ` +
      `WHERE k.bucket BETWEEN substr(r.lo, 1, 9) AND substr(r.hi, 1, 9))`;
    const buckets = `buckets AS MATERIALIZED (SELECT s.status, k.bucket FROM statuses s CROSS JOIN keys k)`;
    // Three slots, unused ones null (they match nothing): a fixed row count, so the plan is the same whatever the statuses.
    const statusSlots = `statuses AS MATERIALIZED (SELECT v.status FROM (VALUES (?::text), (?::text), (?::text)) AS v(status))`;
    const fallback = `SELECT c.id FROM certificates c WHERE ${plain} AND NOT (SELECT coalesce(r.fits, false) FROM range r) ORDER BY c.issued_at DESC, c.id DESC LIMIT ${limit}`;
    return this.db.selectProperties(
      CertificateEntity,
      CERTIFICATE_SUMMARY_FIELDS,
      // Every value as a one-row subquery: the planner sees none of them, so its estimates are the same on every call and
      // PostgreSQL keeps one generic plan of the prepared statement instead of planning each call for its values.
      `id IN (${newestOfBucketsPostgres([statusSlots, range, keys, buckets], conditions, keyset.length > 0, limit)} UNION ALL (${fallback}))`.replace(/\?(::text)?/g, '(SELECT ?::text)'),
      [...[0, 1, 2].map((i) => statuses[i] ?? null), above ?? null, query.expiringBefore ?? null, upTo ?? null, ...keyset, ...params, ...plainParams],
      ' ORDER BY issued_at DESC, id DESC',
      // Planning this statement costs about what running it does (~1 ms): each connection plans it once. Its text varies
      // with the filters and the page size: its own family of names, so its variants never take the hot reads' names.
      { prepared: 'expiry-search' },
    );
  }

  async markSuperseded(id: string, replacedById: string, at: string): Promise<boolean> {
    // Conditional: of two renewals racing for one certificate, exactly one supersedes it.
    const rows = await this.db.sql(
      "UPDATE certificates SET status = 'superseded', replaced_by_id = ?, superseded_at = ? WHERE id = ? AND status = 'active' AND replaced_by_id IS NULL RETURNING id",
      [replacedById, at, id],
    );
    return rows.length === 1;
  }

  async markRevoked(id: string, revokedAt: string, reason: RevocationReason): Promise<boolean> {
    // Conditional update: of two concurrent revocations exactly one matches the row.
    const result = await this.db
      .manager()
      .update(CertificateEntity, { id, status: Not('revoked') }, { status: 'revoked', revokedAt, revocationReason: reason });
    return (result.affected ?? 0) > 0;
  }

  async findByFingerprint(fingerprint: string): Promise<CertificateRecord | null> {
    const [row] = await this.db.select(CertificateEntity, 'fingerprint = ?', [fingerprint]);
    return row ? toRecord(row) : null;
  }

  async findByFingerprintWithAuthority(fingerprint: string): Promise<{ certificate: CertificateRecord; authority: Authority | null } | null> {
    if (!this.db.isPostgres) return this.findWithAuthorityApart(fingerprint);
    const [row] = await this.db.sql<Record<string, unknown>>(`${this.withAuthoritySql()} WHERE c.fingerprint = ?`, [fingerprint]);
    return row ? splitWithAuthority(row) : null;
  }

  /**
   * SQLite: the certificate, then its authority, as two point reads (no round trip to save). Through the join SQLite
   * reads each column several times slower: 75 µs against 17 + 14 µs for the same two rows (docs/benchmarks.md,
   * "Exchange"), and every factory exchange signed with a JWT reads these rows.
   */
  private async findWithAuthorityApart(fingerprint: string): Promise<{ certificate: CertificateRecord; authority: Authority | null } | null> {
    const certificate = await this.findByFingerprint(fingerprint);
    if (!certificate) return null;
    const [authority] = await this.db.select(AuthorityEntity, 'id = ?', [certificate.authorityId]);
    return { certificate, authority: authority ? toAuthority(authority) : null };
  }

  async findByFingerprintSpendingToken(
    fingerprint: string,
    token: { id: string; keepUntil: string },
  ): Promise<{ certificate: CertificateRecord; authority: Authority | null; tokenFresh: boolean } | null> {
    // As TypeOrmUsedTokenIds.use: ON CONFLICT, never a caught violation; on SQLite (no INSERT in WITH) a grouped transaction.
    const spend = 'INSERT INTO used_token_ids (id, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING id';
    if (this.db.isPostgres) {
      const [row] = await this.db.sql<Record<string, unknown>>(
        `WITH spent AS (${spend}) ${this.withAuthoritySql(', (SELECT count(*) FROM spent)::integer AS "tokenFresh"')} WHERE c.fingerprint = ?`,
        [token.id, token.keepUntil, fingerprint],
      );
      if (!row) return null;
      const { tokenFresh, ...rest } = row;
      return { ...splitWithAuthority(rest), tokenFresh: Number(tokenFresh) === 1 };
    }
    return this.db.runGrouped(async () => {
      const spent = await this.db.sql(spend, [token.id, token.keepUntil]);
      const found = await this.findWithAuthorityApart(fingerprint);
      return found ? { ...found, tokenFresh: spent.length === 1 } : null;
    });
  }

  /** SELECT of a certificate (alias c) joined to its authority (alias a, columns prefixed), without the WHERE. */
  private withAuthoritySql(extra = ''): string {
    if (this.withAuthority === undefined) {
      const certificate = this.db.columnsOf(CertificateEntity, 'c');
      const authority = this.db.columnsOf(AuthorityEntity, 'a', AUTHORITY_PREFIX);
      this.withAuthority = `SELECT ${certificate.selectList}, ${authority.selectList}%EXTRA% FROM ${certificate.table} c LEFT JOIN ${authority.table} a ON a.id = c.authority_id`;
    }
    return this.withAuthority.replace('%EXTRA%', extra);
  }

  async setIotTarget(id: string, targetId: string | null): Promise<void> {
    await this.db.run(() => this.db.manager().update(CertificateEntity, { id }, { iotTargetId: targetId }));
  }

  async setIotStatus(id: string, status: IotStatus, lastError: string | null, inTarget?: string | null): Promise<void> {
    // REVOKED is final in AWS IoT, so it is final here: a late job step cannot write over it.
    const where = {
      id,
      ...(status === 'revoked' ? {} : { iotStatus: Not('revoked') }),
      ...(inTarget === undefined ? {} : { iotTargetId: inTarget === null ? IsNull() : inTarget }),
    };
    await this.db.run(() => this.db.manager().update(CertificateEntity, where, { iotStatus: status, iotLastError: lastError }));
  }

  async expiringCounts(now: string, until: string): Promise<{ authorityId: string; count: number }[]> {
    const rows = await this.db.sql<{ authorityId: string; count: number | string }>(
      "SELECT authority_id AS \"authorityId\", COUNT(*) AS count FROM certificates WHERE status = 'active' AND not_after > ? AND not_after <= ? GROUP BY authority_id",
      [now, until],
    );
    return rows.map((row) => ({ authorityId: row.authorityId, count: Number(row.count) }));
  }

  /**
   * One round trip instead of four on the issuance path (each is a network round trip on PostgreSQL): the authority
   * row, the two key checks as EXISTS, and the registration's two deciding fields (its primary key is authority and
   * target, so at most one row).
   */
  async readForIssuance(authorityId: string, publicKeySha256: string, registrationTargetId?: string): Promise<IssuanceReads> {
    const { table, selectList } = this.db.columnsOf(AuthorityEntity);
    const registration =
      registrationTargetId === undefined
        ? 'NULL AS "registrationStatus", NULL AS "registrationMode"'
        : `(SELECT r.status FROM iot_ca_registrations r WHERE r.authority_id = ${table}.id AND r.target_id = ?) AS "registrationStatus",
           (SELECT r.device_registration FROM iot_ca_registrations r WHERE r.authority_id = ${table}.id AND r.target_id = ?) AS "registrationMode"`;
    const targetParams = registrationTargetId === undefined ? [] : [registrationTargetId, registrationTargetId];
    const [row] = await this.db.sql<AuthorityEntity & { authorityKey: unknown; compromisedKey: unknown; registrationStatus: string | null; registrationMode: string | null }>(
      `SELECT ${selectList},
         EXISTS (SELECT 1 FROM authorities k WHERE ${AUTHORITY_KEY}) AS "authorityKey",
         EXISTS (SELECT 1 FROM certificates WHERE ${COMPROMISED_KEY}) AS "compromisedKey",
         ${registration}
       FROM ${table} WHERE ${table}.id = ?`,
      [publicKeySha256, publicKeySha256, ...targetParams, authorityId],
      // Every issuance runs it; two texts (with and without the registration). Planning was most of its cost.
      { prepared: 'issuance-reads' },
    );
    if (!row) return { authority: null, authorityKey: false, compromisedKey: false };
    const { authorityKey, compromisedKey, registrationStatus, registrationMode, ...authority } = row;
    return {
      authority: toAuthority(authority),
      // SQLite answers EXISTS with 0 or 1, PostgreSQL with a boolean.
      authorityKey: Boolean(authorityKey),
      compromisedKey: Boolean(compromisedKey),
      ...(registrationTargetId === undefined
        ? {}
        : { registration: registrationStatus === null || registrationMode === null ? null : { status: registrationStatus, deviceRegistration: registrationMode } }),
    };
  }
}

/** A key is compromised once a certificate for it was revoked for keyCompromise (one `?`: the key's SHA-256). */
const COMPROMISED_KEY = "public_key_sha256 = ? AND revocation_reason = 'keyCompromise'";
/** The key is an authority's (as AuthorityRepository.isAuthorityKey; one `?`), on the alias `k` of authorities. */
const AUTHORITY_KEY = 'k.public_key_sha256 = ?';

/** A row of withAuthoritySql as the certificate and its authority (null when the authority's row is missing). */
function splitWithAuthority(row: Record<string, unknown>): { certificate: CertificateRecord; authority: Authority | null } {
  const certificateRow: Record<string, unknown> = {};
  const authorityRow: Record<string, unknown> = {};
  for (const key in row) {
    if (key.startsWith(AUTHORITY_PREFIX)) authorityRow[key.slice(AUTHORITY_PREFIX.length)] = row[key];
    else certificateRow[key] = row[key];
  }
  return {
    certificate: toRecord(certificateRow as unknown as CertificateEntity),
    authority: authorityRow.id === null || authorityRow.id === undefined ? null : toAuthority(authorityRow as unknown as AuthorityEntity),
  };
}

/** Names the authority's columns apart from the certificate's in a join (no column of either starts with it). */
const AUTHORITY_PREFIX = 'authority.';

const STORED_STATUSES: StoredCertificateStatus[] = ['active', 'revoked', 'superseded'];
/** Ten-day buckets of not_after ('YYYY-MM-D') an expiry search may visit at most (four a month: about eight years); past that the plain query answers. */
const MAX_EXPIRY_BUCKETS = 400;
/** Months an expiry search on PostgreSQL may span (MAX_EXPIRY_BUCKETS / 4); past that the plain query answers. */
const MAX_EXPIRY_MONTHS = MAX_EXPIRY_BUCKETS / 4;
/** SQLite's limit on the terms of one compound SELECT (SQLITE_MAX_COMPOUND_SELECT): statuses × buckets of its UNION ALL. */
const MAX_SQLITE_BRANCHES = 500;

/**
 * The PostgreSQL query of the ids of an expiry page: the `limit` newest entries of the buckets of
 * idx_certificates_expiry_buckets, found by merging the buckets newest first instead of reading `limit` entries of
 * every bucket (at 1M rows and 70 buckets that read 7,000 entries, 5–15 ms). `ctes` define `buckets` (status,
 * bucket); then come the parameters of the keyset position (issued_at, id) when `keyset`, and those of `conditions`.
 *
 * `heads`: the newest entry of each non-empty (status, bucket) below the keyset position, one index probe each with
 * no other test (so no probe skips entries), numbered newest first: a bound of the newest entry of the bucket that
 * matches. `walk` takes the buckets in that order and keeps `top`, the `limit` newest matching entries seen so far
 * (two arrays, newest first): a step reads the bucket's matching entries from its head down to top's last (all of
 * them while top is not full), up to `limit`, and merges (a bucket may give none: its head need not match). It stops
 * at the first bucket whose head is older than a full top's last: every later head is older still, so no later entry
 * can enter. Each step keeps top exact for the buckets walked; usually a few buckets are walked, reading about `limit`
 * entries in all, and only the buckets walked test not_after (the entries of the range's last bucket past its end are
 * skipped only if that bucket is walked). The plan does not depend on the number of buckets.
 * docs/architecture.md#search-indexes.
 */
function newestOfBucketsPostgres(ctes: string[], conditions: string, keyset: boolean, limit: number): string {
  const bucket = 'FROM certificates e WHERE e.status = b.status AND substr(e.not_after, 1, 9) = b.bucket';
  const order = 'ORDER BY e.issued_at DESC, e.id DESC';
  return (
    `WITH RECURSIVE ${ctes.join(', ')}, ` +
    `heads AS MATERIALIZED (SELECT row_number() OVER (ORDER BY h.issued_at DESC, h.id DESC) AS i, b.status, b.bucket, h.issued_at, h.id ` +
    `FROM buckets b CROSS JOIN LATERAL (SELECT e.issued_at, e.id ${bucket}${keyset ? ' AND (e.issued_at, e.id) < (?, ?)' : ''} ${order} LIMIT 1) h), ` +
    `walk (i, ts, ids) AS (SELECT 0::bigint, ARRAY[]::text[], ARRAY[]::text[] UNION ALL ` +
    `SELECT b.i, top.ts, top.ids FROM walk w JOIN heads b ON b.i = w.i + 1 CROSS JOIN LATERAL (` +
    `SELECT coalesce(array_agg(m.issued_at ORDER BY m.issued_at DESC, m.id DESC), '{}') AS ts, coalesce(array_agg(m.id ORDER BY m.issued_at DESC, m.id DESC), '{}') AS ids FROM (` +
    `SELECT x.issued_at, x.id FROM (SELECT p.issued_at, p.id FROM unnest(w.ts, w.ids) AS p(issued_at, id) UNION ALL ` +
    `(SELECT e.issued_at, e.id ${bucket}${conditions} AND (e.issued_at, e.id) <= (b.issued_at, b.id) ` +
    `AND (e.issued_at, e.id) > (coalesce(w.ts[${limit}], ''), coalesce(w.ids[${limit}], '')) ${order} LIMIT ${limit})) x ` +
    `ORDER BY x.issued_at DESC, x.id DESC LIMIT ${limit}) m) top ` +
    `WHERE cardinality(w.ts) < ${limit} OR (b.issued_at, b.id) > (w.ts[${limit}], w.ids[${limit}])) ` +
    `SELECT unnest(last.ids) FROM (SELECT walk.ids FROM walk ORDER BY walk.i DESC LIMIT 1) last`
  );
}

/** The statuses an expiry search reads, and the bounds of its range: exclusive below (active: unexpired), inclusive above for expired. */
function expiryRange(query: CertificateQuery): { statuses: StoredCertificateStatus[]; above?: string; upTo?: string } {
  return {
    statuses: query.status === undefined ? STORED_STATUSES : [query.status === 'expired' ? 'active' : (query.status as StoredCertificateStatus)],
    above: query.status === 'active' ? query.now : undefined,
    upTo: query.status === 'expired' ? query.now : undefined,
  };
}

/** The tests of an expiry search's bucket entries (alias `e`), each starting with ' AND ', and their values. */
function bucketConditions(query: CertificateQuery, above: string | undefined, upTo: string | undefined): { conditions: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (condition: string, ...values: unknown[]) => {
    where.push(` AND ${condition}`);
    params.push(...values);
  };
  if (above !== undefined) add('e.not_after > ?', above);
  if (upTo !== undefined) add('e.not_after <= ?', upTo);
  if (query.expiringBefore) add('e.not_after < ?', query.expiringBefore);
  if (query.authorityId) add('e.authority_id = ?', query.authorityId);
  if (query.before) add('(e.issued_at, e.id) < (?, ?)', query.before.issuedAt, query.before.id);
  return { conditions: where.join(''), params };
}

function pageLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`search limit must be a positive integer, got ${limit}`);
  return limit;
}

/** The expiry search serves filters on status, authority and expiry alone; the others select few rows. */
function usesExpiryBuckets(query: CertificateQuery): boolean {
  return (query.status === 'expired' || query.expiringBefore !== undefined) && !query.thingName && !query.serial && !query.fingerprint && !query.claimId;
}

/**
 * Every bucket key ('YYYY-MM-D': the first 9 characters of an ISO time, so the day's tens digit 0-3) from the bucket
 * of `from` to that of `to`, both ISO times; null when they are not four-digit-year times or span too many buckets.
 */
export function expiryBuckets(from: string, to: string): string[] | null {
  const first = /^(\d{4})-(\d{2})-(\d)/.exec(from);
  const last = /^(\d{4})-(\d{2})-(\d)/.exec(to);
  if (!first || !last) return null;
  const [low, high] = [from.slice(0, 9), to.slice(0, 9)];
  const buckets: string[] = [];
  const end = Number(last[1]) * 12 + Number(last[2]) - 1;
  for (let month = Number(first[1]) * 12 + Number(first[2]) - 1; month <= end; month++) {
    const prefix = `${String(Math.floor(month / 12)).padStart(4, '0')}-${String((month % 12) + 1).padStart(2, '0')}-`;
    for (const tens of '0123') if (`${prefix}${tens}` >= low && `${prefix}${tens}` <= high) buckets.push(`${prefix}${tens}`);
    if (buckets.length > MAX_EXPIRY_BUCKETS) return null;
  }
  return buckets;
}

function toRow(record: CertificateRecord): CertificateEntity {
  const { importedChainDer, ...fields } = record;
  return {
    ...fields,
    origin: record.origin ?? 'issued',
    importedChain: importedChainDer ? importedChainDer.map((der) => der.toString('base64')).join(',') : null,
    certificateDer: record.certificateDer.toString('base64'),
    metadata: record.metadata ? JSON.stringify(record.metadata) : null,
    iotThing: record.iotThing ? JSON.stringify(record.iotThing) : null,
    hardwareAttestation: record.hardwareAttestation ? JSON.stringify(record.hardwareAttestation) : null,
  };
}

type SummaryRow = Pick<CertificateEntity, (typeof CERTIFICATE_SUMMARY_FIELDS)[number]>;

function toSummary(row: SummaryRow): CertificateSummary {
  return {
    ...row,
    origin: row.origin === 'imported' ? 'imported' : 'issued',
    status: row.status as StoredCertificateStatus,
    revocationReason: row.revocationReason as RevocationReason | null,
    iotStatus: row.iotStatus as IotStatus,
  };
}

function toRecord(row: CertificateEntity): CertificateRecord {
  const { importedChain, ...fields } = row;
  return {
    ...fields,
    origin: row.origin === 'imported' ? 'imported' : 'issued',
    importedChainDer: importedChain ? importedChain.split(',').map((b64) => Buffer.from(b64, 'base64')) : null,
    status: row.status as StoredCertificateStatus,
    certificateDer: Buffer.from(row.certificateDer, 'base64'),
    metadata: row.metadata ? (JSON.parse(row.metadata) as Record<string, string>) : null,
    validityClamped: Boolean(row.validityClamped),
    revocationReason: row.revocationReason as RevocationReason | null,
    iotStatus: row.iotStatus as IotStatus,
    iotThing: row.iotThing ? (JSON.parse(row.iotThing) as IotThingOptions) : null,
    hardwareAttestation: row.hardwareAttestation ? (JSON.parse(row.hardwareAttestation) as HardwareAttestation) : null,
  };
}
