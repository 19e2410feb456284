/** `fleet-pki audit verify | export` */
import * as fs from 'node:fs';
import { once } from 'node:events';
import { Command } from 'commander';
import { listAuditEvents, verifyAuditChain, type ListAuditEventsData } from '../../clients/fleet-pki-client';
import { Context, printFields } from '../context';
import { CliError, EXIT } from '../exit-codes';
import { time } from '../options';
import { PAGE_SIZE, pages } from '../pages';

export function auditCommand(): Command {
  const group = new Command('audit').description('the audit trail: verify its hash chain, export it');

  group
    .command('verify')
    .description(`recompute the audit hash chain; exit ${EXIT.AUDIT_CHAIN_BROKEN} if it is broken`)
    .action(async (_opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const result = await ctx.call(() => verifyAuditChain({ client: ctx.client }));
      ctx.print(result, () =>
        printFields([
          ['chain', result.ok ? 'intact' : 'BROKEN'],
          ['events checked', result.checked],
          ['first broken event', result.firstBrokenSeq],
        ]),
      );
      if (!result.ok) {
        throw new CliError(`the audit chain is broken at event ${result.firstBrokenSeq}`, EXIT.AUDIT_CHAIN_BROKEN, 'events from there on were changed or removed outside the service: see docs/operations.md');
      }
    });

  group
    .command('export')
    .description('write the audit events (oldest first) as NDJSON: one JSON event per line')
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--action <action>', 'only this action (e.g. certificate.revoked)')
    .option('--target <id>', 'only events about this target id')
    .option('--actor <id>', 'only events by this actor (API key id)')
    .option('--since <time>', 'from this time (ISO 8601)', time)
    .option('--until <time>', 'until this time (ISO 8601)', time)
    .action(async (opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const query: NonNullable<ListAuditEventsData['query']> = {
        limit: PAGE_SIZE,
        ...(opts.action ? { action: opts.action } : {}),
        ...(opts.target ? { targetId: opts.target } : {}),
        ...(opts.actor ? { actorId: opts.actor } : {}),
        ...(opts.since ? { since: opts.since } : {}),
        ...(opts.until ? { until: opts.until } : {}),
      };
      const client = ctx.client;
      const out = opts.out ? fs.createWriteStream(opts.out) : process.stdout;
      let count = 0;
      for await (const items of pages((cursor) => ctx.call(() => listAuditEvents({ client, query: { ...query, cursor } })))) {
        const chunk = items.map((event) => `${JSON.stringify(event)}\n`).join('');
        count += items.length;
        if (!out.write(chunk)) await once(out, 'drain');
      }
      if (opts.out) {
        (out as fs.WriteStream).end();
        await once(out, 'finish');
        // The events went to the file; stdout says how many (a JSON summary with --json).
        ctx.print({ exported: count, file: opts.out }, () => ctx.say(`${count} audit event(s) written to ${opts.out}`));
      }
    });

  return group;
}
