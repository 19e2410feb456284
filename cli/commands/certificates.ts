/** `fleet-pki certificates issue | get | search | revoke` (one certificate, or every one a search matches). */
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { getCertificate, issueCertificate, listCertificates, revokeCertificate, type CertificateDto, type ListCertificatesData } from '../../clients/fleet-pki-client';
import { Context, printFields, readInput } from '../context';
import { CliError, EXIT } from '../exit-codes';
import { keyValue, positiveInt, REVOCATION_REASONS, time, type RevocationReason } from '../options';
import { collect } from '../pages';

/** Concurrent revocations of a bulk revoke (default): enough to hide latency, few enough to leave the service room. */
const BULK_CONCURRENCY = 4;
const MAX_BULK_CONCURRENCY = 16;

type Filters = NonNullable<ListCertificatesData['query']>;

function addFilters(command: Command): Command {
  return command
    .addOption(new Option('--status <status>', 'active, revoked, superseded or expired').choices(['active', 'revoked', 'superseded', 'expired']))
    .option('--authority <id>', 'issued by this authority')
    .option('--thing <name>', 'for this AWS IoT thing name')
    .option('--claim <id>', 'provisioned through this factory claim')
    .option('--serial <hex>', 'this serial (lowercase hex)')
    .option('--fingerprint <sha256>', 'this SHA-256 fingerprint (lowercase hex)')
    .option('--expiring-before <time>', 'notAfter before this time (ISO 8601 or 30d)', time);
}

function filtersOf(opts: Record<string, string | undefined>): Filters {
  const f: Filters = {};
  if (opts.status) f.status = opts.status as Filters['status'];
  if (opts.authority) f.authorityId = opts.authority;
  if (opts.thing) f.thingName = opts.thing;
  if (opts.claim) f.claimId = opts.claim;
  if (opts.serial) f.serial = opts.serial;
  if (opts.fingerprint) f.fingerprint = opts.fingerprint;
  if (opts.expiringBefore) f.expiringBefore = opts.expiringBefore;
  return f;
}

function writePem(file: string, cert: CertificateDto, withChain: boolean): void {
  fs.writeFileSync(file, withChain ? `${cert.certificatePem.trimEnd()}\n${cert.chainPem}` : cert.certificatePem);
}

function showCertificate(ctx: Context, cert: CertificateDto, out?: string): void {
  ctx.print(cert, () => {
    printFields([
      ['id', cert.id],
      ['status', cert.status],
      ['subject', cert.subject],
      ['thing', cert.thingName],
      ['serial', cert.serial],
      ['fingerprint', cert.fingerprint],
      ['authority', cert.authorityId],
      ['profile', cert.profile],
      ['not before', cert.notBefore],
      ['not after', cert.notAfter],
      ['revoked', cert.revokedAt ? `${cert.revokedAt} (${cert.revocationReason})` : null],
      ['aws iot', cert.iot?.status ?? null],
    ]);
    if (out) process.stdout.write(`PEM written to ${out}\n`);
  });
}

export function certificatesCommand(): Command {
  const group = new Command('certificates').description('device certificates: issue, get, search, revoke');

  group
    .command('issue')
    .description('issue a certificate from a CSR file (PEM)')
    .requiredOption('--authority <id>', 'the issuing authority')
    .requiredOption('--csr <file>', 'the CSR, PEM ("-" for stdin)')
    .option('--profile <name>', 'certificate profile', 'device')
    .option('--thing <name>', 'AWS IoT thing name')
    .option('--validity-days <days>', 'lifetime in days (within the profile)', positiveInt)
    .option('--meta <key=value>', 'metadata (repeatable)', keyValue)
    .option('--out <file>', 'write the certificate PEM to this file')
    .option('--chain', 'with --out: append the chain up to the root')
    .action(async (opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const csr = readInput(opts.csr, 'the CSR');
      const cert = await ctx.call(() =>
        issueCertificate({
          client: ctx.client,
          body: {
            authorityId: opts.authority,
            csr,
            profile: opts.profile,
            ...(opts.thing ? { thingName: opts.thing } : {}),
            ...(opts.validityDays ? { validityDays: opts.validityDays } : {}),
            ...(opts.meta ? { metadata: opts.meta } : {}),
          },
        }),
      );
      if (opts.out) writePem(opts.out, cert, opts.chain === true);
      showCertificate(ctx, cert, opts.out);
    });

  group
    .command('get')
    .description('show one certificate')
    .argument('<id>', 'certificate id')
    .option('--out <file>', 'write the certificate PEM to this file')
    .option('--chain', 'with --out: append the chain up to the root')
    .action(async (id: string, opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const cert = await ctx.call(() => getCertificate({ client: ctx.client, path: { id } }));
      if (opts.out) writePem(opts.out, cert, opts.chain === true);
      showCertificate(ctx, cert, opts.out);
    });

  addFilters(group.command('search').description('find certificates by status, authority, thing, claim, serial, fingerprint or expiry'))
    .option('--limit <n>', 'at most this many (default: all)', positiveInt)
    .action(async (opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const filters = filtersOf(opts);
      const items = await collect((cursor, limit) => ctx.call(() => listCertificates({ client: ctx.client, query: { ...filters, cursor, limit } })), opts.limit);
      ctx.print(items, () =>
        ctx.table(items, [
          { header: 'id', value: (c) => c.id },
          { header: 'status', value: (c) => c.status },
          { header: 'thing', value: (c) => c.thingName },
          { header: 'serial', value: (c) => c.serial },
          { header: 'not after', value: (c) => c.notAfter },
        ]),
      );
    });

  addFilters(
    group
      .command('revoke')
      .description('revoke one certificate by id, or with --search every certificate the filters match (needs --yes)')
      .argument('[id]', 'certificate id (omit with --search)')
      .addOption(new Option('--reason <reason>', 'RFC 5280 revocation reason').choices(REVOCATION_REASONS).default('unspecified'))
      .option('--search', 'revoke every certificate matching the filter options')
      .option('--yes', 'confirm a bulk revocation')
      .option('--concurrency <n>', `bulk: revocations at once (1-${MAX_BULK_CONCURRENCY})`, positiveInt, BULK_CONCURRENCY),
  ).action(async (id: string | undefined, opts, cmd: Command) => {
    const ctx = Context.of(cmd);
    const reason = opts.reason as RevocationReason;
    if (!opts.search) {
      if (!id) throw new CliError('name the certificate to revoke, or use --search with filters', EXIT.USAGE, 'fleet-pki certificates revoke <id> --reason keyCompromise');
      const revoked = await ctx.call(() => revokeCertificate({ client: ctx.client, path: { id }, body: { reason } }));
      ctx.print(revoked, () => ctx.say(`certificate ${id} revoked (${reason})`));
      return;
    }
    if (id) throw new CliError('give either a certificate id or --search, not both', EXIT.USAGE);
    const filters = filtersOf(opts);
    if (Object.keys(filters).length === 0) throw new CliError('--search needs at least one filter', EXIT.USAGE, 'e.g. --search --authority <id> --status active');
    // Only active certificates can be revoked; a bulk revocation never reaches beyond them.
    if (!filters.status) filters.status = 'active';
    const matched = await collect((cursor, limit) => ctx.call(() => listCertificates({ client: ctx.client, query: { ...filters, cursor, limit } })));
    if (!opts.yes) {
      throw new CliError(`${matched.length} certificate(s) match; nothing revoked`, EXIT.USAGE, 'check them with `fleet-pki certificates search` and the same filters, then repeat with --yes');
    }
    const result = { matched: matched.length, revoked: [] as string[], alreadyRevoked: [] as string[], failed: [] as { id: string; error: string }[] };
    let next = 0;
    // Ctrl-C stops handing out revocations; those under way finish, and the summary says what was done.
    let interrupted = false;
    const onInterrupt = () => {
      interrupted = true;
    };
    process.once('SIGINT', onInterrupt);
    const bar = ctx.progress('revoking', matched.length, 'certificates');
    // A service or network failure stops every worker (no revocation goes on unseen after the command has failed);
    // the summary still says what was done.
    let stoppedBy: CliError | undefined;
    const worker = async () => {
      while (next < matched.length && !interrupted && !stoppedBy) {
        const cert = matched[next++];
        try {
          await ctx.call(() => revokeCertificate({ client: ctx.client, path: { id: cert.id }, body: { reason } }));
          result.revoked.push(cert.id);
        } catch (err) {
          if (err instanceof CliError && err.code === 'CERTIFICATE_ALREADY_REVOKED') result.alreadyRevoked.push(cert.id);
          else if (err instanceof CliError && err.exitCode === EXIT.REFUSED) result.failed.push({ id: cert.id, error: err.message });
          else {
            result.failed.push({ id: cert.id, error: (err as Error).message });
            stoppedBy ??= err instanceof CliError ? err : new CliError((err as Error).message, EXIT.SERVICE);
          }
        }
        bar.increment();
      }
    };
    try {
      await Promise.allSettled(Array.from({ length: Math.min(opts.concurrency, MAX_BULK_CONCURRENCY) }, worker));
    } finally {
      bar.stop();
      process.removeListener('SIGINT', onInterrupt);
    }
    ctx.print({ ...result, interrupted, stopped: stoppedBy !== undefined }, () => {
      if (interrupted || stoppedBy) ctx.say(`${interrupted ? 'interrupted' : 'stopped'}: ${matched.length - next} certificate(s) not attempted`);
      ctx.say(`revoked ${result.revoked.length} of ${result.matched} certificate(s) (${reason}); already revoked: ${result.alreadyRevoked.length}; failed: ${result.failed.length}`);
      for (const f of result.failed) ctx.say(`  ${f.id}: ${f.error}`);
    });
    if (stoppedBy) throw new CliError(`bulk revocation stopped: ${stoppedBy.message}`, stoppedBy.exitCode, 'repeat the command when the service answers again (the search matches only active certificates)');
    if (interrupted) throw new CliError('bulk revocation interrupted', EXIT.INTERRUPTED, 'repeat the command to revoke the rest (the search matches only active certificates)');
    if (result.failed.length > 0) throw new CliError(`${result.failed.length} certificate(s) could not be revoked`, EXIT.REFUSED, 'see the list above');
  });

  return group;
}
