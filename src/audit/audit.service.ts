import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { decodeCursor, encodeCursor } from '../common/cursor';
import { Transactions } from '../database/transactions';
import { RequestContext } from '../common/actor';
import { AuditRepository, StoredAuditEvent } from './audit.repository';
import { AuditEventContent, chainHash, GENESIS_HASH } from './chain';

export interface AuditRecord {
  action: string;
  target?: { type: string; id: string };
  /** Facts about the change. Never key material, secrets or API key values. */
  details?: Record<string, unknown>;
}

export interface AuditListQuery {
  action?: string;
  targetId?: string;
  actorId?: string;
  since?: string;
  until?: string;
  cursor?: string;
  limit: number;
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  firstBrokenSeq: number | null;
}

const VERIFY_BATCH = 1000;

/**
 * The hash-chained audit log (docs/architecture.md, "Lifecycle and audit"). `record` must run inside the transaction
 * of the state change it describes; it locks the chain head, so it is best called last in that transaction.
 */
@Injectable()
export class AuditService {
  constructor(
    private readonly repository: AuditRepository,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
  ) {}

  record(ctx: RequestContext, record: AuditRecord): Promise<StoredAuditEvent> {
    return this.transactions.run(async () => {
      const head = await this.repository.lockHead();
      const content: AuditEventContent = {
        seq: head.seq + 1,
        occurredAt: this.clock.now().toISOString(),
        actorType: ctx.actor.type,
        actorId: ctx.actor.id,
        actorRole: ctx.actor.role,
        action: record.action,
        targetType: record.target?.type ?? null,
        targetId: record.target?.id ?? null,
        requestId: ctx.requestId,
        sourceIp: ctx.sourceIp,
        // Round-trip through JSON so what is hashed is exactly what is stored and read back.
        details: JSON.parse(JSON.stringify(record.details ?? {})) as Record<string, unknown>,
      };
      const event: StoredAuditEvent = { ...content, prevHash: head.hash, hash: chainHash(head.hash, content) };
      await this.repository.append(event);
      return event;
    });
  }

  /**
   * Takes the chain-head lock for the current transaction: it then runs alone among audited changes, on every
   * replica. For rare start-up work that must happen once (bootstrap keys).
   */
  async lockChain(): Promise<void> {
    await this.repository.lockHead();
  }

  async list(query: AuditListQuery): Promise<{ items: StoredAuditEvent[]; nextCursor: string | null }> {
    const afterSeq = query.cursor ? decodeCursor<{ seq: number }>(query.cursor, { seq: 'number' }).seq : undefined;
    // Stored times are fixed-width UTC ISO strings; compare like with like.
    const since = query.since === undefined ? undefined : new Date(query.since).toISOString();
    const until = query.until === undefined ? undefined : new Date(query.until).toISOString();
    const rows = await this.repository.list({ ...query, since, until, afterSeq, limit: query.limit + 1 });
    const items = rows.slice(0, query.limit);
    const nextCursor = rows.length > query.limit ? encodeCursor({ seq: items[items.length - 1].seq }) : null;
    return { items, nextCursor };
  }

  /**
   * Recomputes the chain up to the head as it was when verification started (events appended meanwhile
   * are left for the next run), and names the first event whose link or content does not hold.
   */
  async verify(): Promise<VerifyResult> {
    // Head first: every event up to head.seq was committed with it, so later appends cannot look like gaps.
    const head = await this.repository.head();
    let expectedPrev = GENESIS_HASH;
    let expectedSeq = 1;
    let checked = 0;
    while (expectedSeq <= head.seq) {
      const batch = (await this.repository.batchAfter(expectedSeq - 1, VERIFY_BATCH)).filter((event) => event.seq <= head.seq);
      if (batch.length === 0) break;
      for (const event of batch) {
        const { prevHash, hash, ...content } = event;
        if (event.seq !== expectedSeq || prevHash !== expectedPrev || chainHash(prevHash, content) !== hash) {
          return { ok: false, checked, firstBrokenSeq: expectedSeq };
        }
        checked++;
        expectedPrev = hash;
        expectedSeq++;
      }
    }
    // A truncated tail leaves the head pointing past the last event.
    if (expectedSeq - 1 !== head.seq || expectedPrev !== head.hash) {
      return { ok: false, checked, firstBrokenSeq: expectedSeq };
    }
    return { ok: true, checked, firstBrokenSeq: null };
  }
}
