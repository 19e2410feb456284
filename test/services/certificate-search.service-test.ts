import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CertificateRecord, CertificateStatus } from '../../src/certificates/certificate';
import { SearchInput } from '../../src/certificates/certificates.service';
import { drivers, ManualClock } from '../support/test-app';
import { ServiceContext } from './service-context';
import { DAY_MS } from './service-fixtures';

const NOW = new Date('2026-06-15T12:00:00.000Z');
const AUTHORITIES = [randomUUID(), randomUUID()];
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * 300 stored rows (written through the repository, not issued: only the search columns matter): three share each
 * issuedAt (the id breaks the tie), statuses mixed, notAfter spread over three years around NOW with some exactly at
 * NOW, at bucket edges ('…-10T00:00:00.000Z'), at an expiringBefore the queries use, and in 2045 (so a range can
 * span more buckets than the expiry search walks); each serial under both CAs.
 */
function rows(): CertificateRecord[] {
  return Array.from({ length: 300 }, (_, i) => {
    const id = randomUUID();
    const edges = [iso(NOW.getTime()), '2026-07-10T00:00:00.000Z', '2026-12-31T23:59:59.999Z', '2027-01-01T00:00:00.000Z', '2026-09-20T00:00:00.000Z', '2045-03-01T00:00:00.000Z'];
    const notAfter = i % 11 === 0 ? edges[(i / 11) % edges.length] : iso(NOW.getTime() + (((i * 7919) % 1100) - 250) * DAY_MS + i * 1000);
    const status = i % 10 === 0 ? 'revoked' : i % 10 === 1 ? 'superseded' : 'active';
    return {
      id,
      authorityId: AUTHORITIES[Math.floor(i / 150) % 2],
      serial: (0x1000 + (i % 150)).toString(16),
      fingerprint: createHash('sha256').update(id).digest('hex'),
      profile: 'device',
      subject: `CN=thing-${i % 40}`,
      thingName: i % 17 === 0 ? null : `thing-${i % 40}`,
      status,
      notBefore: iso(NOW.getTime() - 400 * DAY_MS),
      notAfter,
      issuedAt: iso(NOW.getTime() - Math.floor(i / 3) * 60_000 - ((i * 31) % 97) * 3_600_000),
      publicKeySha256: createHash('sha256').update(`key-${i}`).digest('hex'),
      keyDescription: 'EC P-256',
      certificateDer: Buffer.from([0x30, 0x00]),
      metadata: null,
      validityClamped: false,
      revokedAt: status === 'revoked' ? iso(NOW.getTime() - DAY_MS) : null,
      revocationReason: status === 'revoked' ? 'keyCompromise' : null,
      iotStatus: 'none',
      iotLastError: null,
      iotThing: null,
      iotTargetId: null,
      claimId: null,
      replacesId: null,
      replacedById: null,
      supersededAt: status === 'superseded' ? iso(NOW.getTime() - DAY_MS) : null,
      hardwareAttestation: null,
    } satisfies CertificateRecord;
  });
}

/** What the search must answer: the rows matching `filter` (as the API defines it), newest issuedAt first, then id. */
function expected(all: CertificateRecord[], filter: Omit<SearchInput, 'limit' | 'cursor'>): string[] {
  const now = NOW.toISOString();
  const status = (row: CertificateRecord): CertificateStatus => (row.status === 'active' && row.notAfter <= now ? 'expired' : row.status);
  return all
    .filter((row) => filter.status === undefined || status(row) === filter.status)
    .filter((row) => filter.authorityId === undefined || row.authorityId === filter.authorityId)
    .filter((row) => filter.thingName === undefined || row.thingName === filter.thingName)
    .filter((row) => filter.serial === undefined || row.serial === filter.serial)
    .filter((row) => filter.expiringBefore === undefined || row.notAfter < new Date(filter.expiringBefore).toISOString())
    .sort((a, b) => (a.issuedAt === b.issuedAt ? (a.id < b.id ? 1 : -1) : a.issuedAt < b.issuedAt ? 1 : -1))
    .map((row) => row.id);
}

for (const { driver, skip } of drivers()) {
  describe(`certificate search: every match once, in order, page after page (${driver})`, { skip }, () => {
    let s: ServiceContext;
    let all: CertificateRecord[];

    before(async () => {
      s = await ServiceContext.start(driver, { clock: new ManualClock(NOW) });
      all = rows();
      for (const row of all) await s.stored.certificates.insert(row);
    });
    after(async () => {
      await s?.close();
    });

    /** Follows nextCursor from the first page to the last, `limit` rows a page; answers the ids in the order received. */
    async function pageThrough(filter: Omit<SearchInput, 'limit' | 'cursor'>, limit: number): Promise<string[]> {
      const ids: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 500; pages++) {
        const page = await s.certificates.search({ ...filter, limit, cursor });
        assert.ok(page.items.length <= limit);
        ids.push(...page.items.map((item) => item.id));
        if (!page.nextCursor) return ids;
        assert.equal(page.items.length, limit, 'a page before the last is full');
        cursor = page.nextCursor;
      }
      assert.fail('the cursor never reached the last page');
    }

    async function check(filter: Omit<SearchInput, 'limit' | 'cursor'>, limit = 7): Promise<void> {
      const want = expected(all, filter);
      assert.deepEqual(await pageThrough(filter, limit), want, `${JSON.stringify(filter)} (${want.length} matches)`);
    }

    const statuses: (CertificateStatus | undefined)[] = [undefined, 'active', 'expired', 'revoked', 'superseded'];
    // Before anything stored, at NOW (exclusive), bucket edges, a stored notAfter exactly, 900 days on, and past the
    // 2045 rows (more buckets than the expiry search walks: the plain query answers).
    const expiringBefore = [
      iso(NOW.getTime() - 300 * DAY_MS),
      NOW.toISOString(),
      iso(NOW.getTime() + DAY_MS),
      '2026-07-10T00:00:00.000Z',
      '2026-07-10T00:00:00.001Z',
      '2026-09-20T00:00:00Z',
      '2027-01-01T00:00:00.000Z',
      iso(NOW.getTime() + 30 * DAY_MS),
      iso(NOW.getTime() + 900 * DAY_MS),
      '2400-01-01T00:00:00.000Z',
    ];

    it('thing name: a thing with more rows than a page, and one with none', async () => {
      for (const thingName of ['thing-3', 'thing-17', 'thing-0', 'no-such-thing']) await check({ thingName }, 3);
      assert.ok(expected(all, { thingName: 'thing-3' }).length > 3);
    });

    it('serial: the same serial under two CAs, a page of one at a time; with the authority', async () => {
      await check({ serial: (0x1000 + 5).toString(16) }, 1);
      assert.equal(expected(all, { serial: (0x1000 + 5).toString(16) }).length, 2);
      await check({ serial: (0x1000 + 5).toString(16), authorityId: AUTHORITIES[1] }, 1);
      await check({ serial: 'ffff' }, 1);
    });

    it('status alone, and no filter at all', async () => {
      for (const status of statuses) await check({ status }, 23);
    });

    it('status + expiringBefore (and expiringBefore alone), across bucket and year edges', async () => {
      for (const status of statuses) {
        for (const before of expiringBefore) await check({ status, expiringBefore: before });
      }
      assert.ok(expected(all, { status: 'active', expiringBefore: iso(NOW.getTime() + 900 * DAY_MS) }).length > 100);
    });

    it('status + expiringBefore with an authority, with a thing name; pages of one and of 500', async () => {
      for (const status of statuses) {
        await check({ status, authorityId: AUTHORITIES[0], expiringBefore: '2027-01-01T00:00:00.000Z' });
        await check({ status, thingName: 'thing-4', expiringBefore: '2027-01-01T00:00:00.000Z' }, 2);
      }
      await check({ status: 'active', expiringBefore: '2026-09-20T00:00:00.000Z' }, 1);
      await check({ status: 'active', expiringBefore: '2027-01-01T00:00:00.000Z' }, 500);
    });
  });
}
