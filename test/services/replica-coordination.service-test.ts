import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { SharedPacing } from '../../src/database/shared-pacing';
import { SharedRequestLimits } from '../../src/database/shared-request-limits';
import { TypeOrmLeases } from '../../src/database/typeorm-leases';
import { drivers } from '../support/test-app';

/**
 * Replica coordination in the database (docs/limits.md, "Replica-wide budgets", "Replica-wide limits", "Periodic
 * work"): pacers, request limits and leases of several "replicas" (separate connection pools, separate holders) on one
 * database, without HTTP.
 */

async function migrated(driver: 'sqlite' | 'postgres'): Promise<{ db: TemporaryDatabase; dataSource: DataSource }> {
  const db = await temporaryDatabase(driver);
  const dataSource = new DataSource(dataSourceOptions(db.config));
  await dataSource.initialize();
  await dataSource.runMigrations();
  return { db, dataSource };
}

const pgSkip = process.env[PG_ENV] ? false : `PostgreSQL suite skipped: ${PG_ENV} is not set`;

describe('replica-wide pacing and request limits (postgres)', { skip: pgSkip }, () => {
  let db: TemporaryDatabase;
  let dataSource: DataSource;
  let url = '';

  before(async () => {
    ({ db, dataSource } = await migrated('postgres'));
    url = db.config.driver === 'postgres' ? db.config.url : '';
  });
  after(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  it('paces pacers of one key on three connection pools to the one rate together', async () => {
    const RATE = 20;
    const BURST = 4;
    const PER_REPLICA = 40;
    const replicas = [new SharedPacing(url), new SharedPacing(url), new SharedPacing(url)];
    try {
      const started = performance.now();
      const times: number[] = [];
      await Promise.all(
        replicas.flatMap((pacing) => {
          const pacer = pacing.pacer('test:shared', RATE, BURST);
          return Array.from({ length: PER_REPLICA }, async () => {
            await pacer.acquire();
            times.push(performance.now());
          });
        }),
      );
      const total = replicas.length * PER_REPLICA;
      const seconds = (Math.max(...times) - started) / 1000;
      // Three per-process budgets would take a third of this: 120 calls at 20/s after a burst of 4 take at least 5.8 s.
      assert.ok(seconds >= ((total - BURST) / RATE) * 0.95, `${total} calls in ${seconds.toFixed(2)} s: faster than ${RATE}/s`);
      // No one-second window holds more than the rate plus the burst (and two calls of slack for late timers).
      times.sort((a, b) => a - b);
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i] - times[j] >= 1000) j++;
        assert.ok(i - j + 1 <= RATE + BURST + 2, `${i - j + 1} calls within one second`);
      }
    } finally {
      await Promise.all(replicas.map((pacing) => pacing.onApplicationShutdown()));
    }
  });

  it('lets a quiet budget go at once up to its burst, then paces', async () => {
    const pacing = new SharedPacing(url);
    try {
      const pacer = pacing.pacer('test:burst', 5, 3);
      const started = performance.now();
      const times = await Promise.all(Array.from({ length: 4 }, () => pacer.acquire().then(() => performance.now() - started)));
      times.sort((a, b) => a - b);
      assert.ok(times[2] < 150, `the third call of a burst of 3 waited ${times[2].toFixed(0)} ms`);
      assert.ok(times[3] >= 190, `the fourth call went after ${times[3].toFixed(0)} ms (one interval is 200 ms)`);
    } finally {
      await pacing.onApplicationShutdown();
    }
  });

  it('holds station and claim limits across replicas, taking from both or from neither', async () => {
    const a = new SharedRequestLimits(url);
    const b = new SharedRequestLimits(url);
    try {
      const claim = { dimension: 'claim', setting: { limit: 3, windowSeconds: 60 }, key: 'claim-1' };
      const station = (key: string) => ({ dimension: 'station', setting: { limit: 2, windowSeconds: 60 }, key });
      assert.deepEqual(await a.takeAll([station('s1'), claim]), { ok: true });
      assert.deepEqual(await b.takeAll([station('s1'), claim]), { ok: true });
      // s1 is spent across both replicas: refused, and the claim keeps its last token.
      const refused = await a.takeAll([station('s1'), claim]);
      assert.equal(refused.ok, false);
      assert.equal(!refused.ok && refused.dimension, 'station');
      assert.ok(!refused.ok && refused.retryAfterSeconds >= 1);
      assert.deepEqual(await b.takeAll([station('s2'), claim]), { ok: true });
      // The claim is spent: s3, fresh, is refused by the claim and keeps its tokens.
      const byClaim = await a.takeAll([station('s3'), claim]);
      assert.equal(!byClaim.ok && byClaim.dimension, 'claim');
      assert.deepEqual(await b.takeAll([station('s3')]), { ok: true });
      assert.deepEqual(await a.takeAll([station('s3')]), { ok: true });
      assert.equal((await b.takeAll([station('s3')])).ok, false);
    } finally {
      await a.onApplicationShutdown();
      await b.onApplicationShutdown();
    }
  });

  it('decides concurrent checks exactly, as if each came alone: all or nothing per check', async () => {
    const a = new SharedRequestLimits(url);
    const b = new SharedRequestLimits(url);
    try {
      const claim = { dimension: 'claim', setting: { limit: 25, windowSeconds: 3600 }, key: 'claim-batch' };
      const station = (key: string) => ({ dimension: 'station', setting: { limit: 10, windowSeconds: 3600 }, key });
      // 60 checks at once over two replicas, on three stations of one claim: each station allows 10, the claim 25.
      const checks = Array.from({ length: 60 }, (_, i) => ({ replica: i % 2 === 0 ? a : b, station: `batch-s${i % 3}` }));
      const verdicts = await Promise.all(checks.map(({ replica, station: s }) => replica.takeAll([station(s), claim])));
      const granted = verdicts.filter((verdict) => verdict.ok).length;
      assert.equal(granted, 25, 'the claim allows exactly 25 together');
      for (const s of ['batch-s0', 'batch-s1', 'batch-s2']) {
        const ofStation = checks.filter((check, i) => check.station === s && verdicts[i].ok).length;
        assert.ok(ofStation <= 10, `${s} got ${ofStation} (at most 10)`);
      }
      // A check refused by the claim took nothing from its station: a station with tokens left still has them.
      const leftOver = ['batch-s0', 'batch-s1', 'batch-s2'].map((s) => 10 - checks.filter((check, i) => check.station === s && verdicts[i].ok).length);
      const s = leftOver.findIndex((left) => left > 0);
      assert.ok(s >= 0);
      const alone = await a.takeAll([station(`batch-s${s}`)]);
      assert.deepEqual(alone, { ok: true });
      // And a station's own refusal, inside a batch, spends nothing of the claim's: the claim is spent, so a fresh station is refused by it.
      const fresh = await b.takeAll([station('batch-fresh'), claim]);
      assert.equal(!fresh.ok && fresh.dimension, 'claim');
    } finally {
      await a.onApplicationShutdown();
      await b.onApplicationShutdown();
    }
  });
});

for (const { driver, skip } of drivers()) {
  describe(`work leases (${driver})`, { skip }, () => {
    let db: TemporaryDatabase;
    let dataSource: DataSource;

    before(async () => {
      ({ db, dataSource } = await migrated(driver));
    });
    after(async () => {
      await dataSource?.destroy();
      await db?.drop();
    });

    it('gives a lease to one holder at a time; renewal keeps it; release or expiry passes it on', async () => {
      const one = new TypeOrmLeases(dataSource);
      const two = new TypeOrmLeases(dataSource);
      assert.equal(await one.take('work', 60_000), true);
      assert.equal(await two.take('work', 60_000), false);
      assert.equal(await one.take('work', 60_000), true, 'the holder renews');
      assert.equal(await two.take('other-work', 60_000), true, 'leases are by name');
      await one.release('work');
      assert.equal(await two.take('work', 300), true, 'released: the next taker has it');
      assert.equal(await one.take('work', 60_000), false);
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(await one.take('work', 60_000), true, 'expired: the next taker has it');
      assert.equal(await two.take('work', 60_000), false);
    });

    it('gives a contended lease to exactly one of many takers at once', async () => {
      const takers = Array.from({ length: 8 }, () => new TypeOrmLeases(dataSource));
      const won = await Promise.all(takers.map((leases) => leases.take('contended', 60_000)));
      assert.equal(won.filter(Boolean).length, 1);
    });
  });
}
