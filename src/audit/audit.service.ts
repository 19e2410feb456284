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

/** The chain as this transaction extends it: the newest event (or the locked head) and the events not yet written. */
interface ChainInTransaction {
  locked: Promise<void>;
  tail: { seq: number; hash: string };
  pending: StoredAuditEvent[];
}

const CHAIN_IN_TRANSACTION = Symbol('audit chain in this transaction');

/**
 * The hash-chained audit log (docs/architecture.md, "Lifecycle and audit"). `record` must run inside the transaction
 * of the state change it describes; it locks the chain head until the commit, so it is best called late in it.
 */
@Injectable()
export class AuditService {
  constructor(
    private readonly repository: AuditRepository,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
  ) {
    // Grouped work (issuance, exchange, renewal, revocation) is audited: its transactions take the chain head before
    // anything else. Taken at the first event instead, a group would hold the head while a later work of it waits for
    // a row (the authority's revocation counter, a claim's quota) that another process's transaction holds while it
    // waits for the head: a deadlock between replicas (docs/architecture.md, "Replicas").
    this.transactions.firstInGroupedTransactions(() => this.transactions.local(CHAIN_IN_TRANSACTION, () => this.openChain()).locked);
  }

  /**
   * Adds an event to the chain. The head is locked once per transaction (on the first event) and the events are
   * written together just before the commit, so a group of issuances sharing a transaction pays for one lock, one
   * multi-row insert and one head update (docs/architecture.md, "Group commit").
   */
  record(ctx: RequestContext, record: AuditRecord): Promise<StoredAuditEvent> {
    return this.transactions.run(async () => {
      const chain = this.transactions.local(CHAIN_IN_TRANSACTION, () => this.openChain());
      await chain.locked;
      const content: AuditEventContent = {
        seq: chain.tail.seq + 1,
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
      const event: StoredAuditEvent = { ...content, prevHash: chain.tail.hash, hash: chainHash(chain.tail.hash, content) };
      chain.tail = event;
      chain.pending.push(event);
      return event;
    });
  }

  /** Locks the head for this transaction and arranges for the events recorded in it to be written before it commits. */
  private openChain(): ChainInTransaction {
    const chain: ChainInTransaction = {
      tail: { seq: 0, hash: GENESIS_HASH },
      pending: [],
      locked: this.repository.lockHead().then((head) => {
        chain.tail = head;
      }),
    };
    this.transactions.beforeCommit(() => this.repository.appendMany(chain.pending.splice(0)));
    return chain;
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
