/** `fleet-pki claims create | allowlist upload | revoke` */
import * as fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { Command, Option } from 'commander';
import { createClaim, getClaim, listClaims, replaceAllowlist, revokeClaim, type ClaimDto, type CreateClaimDto, type CreatedClaimDto } from '../../clients/fleet-pki-client';
import { Context, printFields, readInput } from '../context';
import { CliError, EXIT } from '../exit-codes';
import { collect } from '../pages';
import { positiveInt, REVOCATION_REASONS, time, type RevocationReason } from '../options';

function claimFields(claim: ClaimDto): [string, unknown][] {
  return [
    ['id', claim.id],
    ['name', claim.name],
    ['factory', claim.factory],
    ['line', claim.line],
    ['status', claim.status],
    ['devices', `${claim.used} of ${claim.maxDevices} used`],
    ['allow-list', claim.allowlistSize],
    ['not after', claim.notAfter],
    ['revoked', claim.revokedAt],
  ];
}

export function claimsCommand(): Command {
  const group = new Command('claims').description('factory provisioning claims: create, list, get, allow-list upload, revoke');

  group
    .command('list')
    .description('list the claims with their quota usage')
    .action(async (_opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const items = await collect((cursor, limit) => ctx.call(() => listClaims({ client: ctx.client, query: { cursor, limit } })));
      ctx.print(items, () =>
        ctx.table(items, [
          { header: 'id', value: (c) => c.id },
          { header: 'name', value: (c) => c.name },
          { header: 'factory', value: (c) => c.factory },
          { header: 'line', value: (c) => c.line },
          { header: 'status', value: (c) => c.status },
          { header: 'used', value: (c) => `${c.used}/${c.maxDevices}` },
          { header: 'not after', value: (c) => c.notAfter },
        ]),
      );
    });

  group
    .command('get')
    .description('one claim: quota, allow-list size, last exchange')
    .argument('<claimId>', 'the claim')
    .action(async (claimId: string, _opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const claim = await ctx.call(() => getClaim({ client: ctx.client, path: { id: claimId } }));
      ctx.print(claim, () => printFields([...claimFields(claim), ['last exchange', claim.lastExchangeAt]]));
    });

  group
    .command('create')
    .description('create a factory claim (the station credential: its key from a CSR, or generated and written to --key-out)')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--factory <factory>', 'factory name')
    .option('--line <line>', 'factory line')
    .requiredOption('--claim-authority <id>', 'the claims authority that signs the claim certificate')
    .requiredOption('--device-authority <id>', 'the devices authority that signs device certificates')
    .requiredOption('--max-devices <n>', 'quota of devices', positiveInt)
    .requiredOption('--not-after <time>', 'end of validity (ISO 8601 or 90d)', time)
    .requiredOption('--thing-name-template <template>', 'e.g. acme-{serial}')
    .option('--serial-pattern <regex>', 'device serials must match')
    .option('--profile <name>', 'device certificate profile')
    .option('--validity-days <days>', 'device certificate lifetime', positiveInt)
    .option('--csr <file>', "the station's CSR (PEM)")
    .option('--generate-key', 'let the service generate the station key (needs --key-out)')
    .addOption(new Option('--key-spec <spec>', 'with --generate-key').choices(['EC_P256', 'EC_P384', 'RSA_2048']))
    .option('--key-out <file>', 'with --generate-key: write the private key here (mode 0600)')
    .option('--cert-out <file>', 'write the claim certificate and its chain (PEM) here')
    .action(async (opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      if (!opts.csr === !opts.generateKey) throw new CliError('give exactly one of --csr <file> and --generate-key', EXIT.USAGE);
      if (opts.generateKey && !opts.keyOut) throw new CliError('--generate-key needs --key-out <file>: the private key is shown only once', EXIT.USAGE);
      const body: CreateClaimDto = {
        name: opts.name,
        factory: opts.factory,
        claimAuthorityId: opts.claimAuthority,
        deviceAuthorityId: opts.deviceAuthority,
        maxDevices: opts.maxDevices,
        notAfter: opts.notAfter,
        thingNameTemplate: opts.thingNameTemplate,
        ...(opts.line ? { line: opts.line } : {}),
        ...(opts.serialPattern ? { serialPattern: opts.serialPattern } : {}),
        ...(opts.profile ? { profile: opts.profile } : {}),
        ...(opts.validityDays ? { validityDays: opts.validityDays } : {}),
        claimCertificate: opts.csr ? { csr: readInput(opts.csr, 'the CSR') } : { generateKey: true, ...(opts.keySpec ? { keySpec: opts.keySpec } : {}) },
      };
      // The key file is created (0600, never an existing file or a symlink) before the claim exists: the key is shown
      // only once, so there must be somewhere safe to put it.
      const keyFile = opts.generateKey ? openNewKeyFile(opts.keyOut) : undefined;
      let created: CreatedClaimDto;
      try {
        created = await ctx.call(() => createClaim({ client: ctx.client, body }));
      } catch (err) {
        if (keyFile !== undefined) {
          fs.closeSync(keyFile);
          fs.rmSync(opts.keyOut, { force: true });
        }
        throw err;
      }
      const { privateKeyPem, ...certificate } = created.claimCertificate;
      // The private key goes to its file only: never to stdout, not even with --json.
      if (keyFile !== undefined) {
        try {
          fs.writeSync(keyFile, privateKeyPem ?? '');
          fs.closeSync(keyFile);
        } catch (err) {
          throw new CliError(
            `claim ${created.id} was created, but its private key could not be written to ${opts.keyOut}: ${(err as Error).message}`,
            EXIT.SERVICE,
            `the key is lost: revoke the claim (fleet-pki claims revoke ${created.id}) and create another`,
          );
        }
      }
      if (opts.certOut) fs.writeFileSync(opts.certOut, `${certificate.certificatePem.trimEnd()}\n${certificate.chainPem}`);
      const shown = { ...created, claimCertificate: certificate };
      ctx.print(shown, () => {
        printFields([...claimFields(created), ['claim certificate', certificate.id]]);
        if (keyFile !== undefined) ctx.say(`private key written to ${opts.keyOut}`);
        if (opts.certOut) ctx.say(`claim certificate written to ${opts.certOut}`);
      });
    });

  const allowlist = group.command('allowlist').description("a claim's allow-list of device serials");
  allowlist
    .command('upload')
    .description('replace the allow-list with the serials of a file: one per line (CSV, first column; optional "serial" header) or a .json array')
    .argument('<claimId>', 'the claim')
    .argument('<file>', 'the serials')
    .action(async (claimId: string, file: string, _opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      let size: number;
      try {
        size = fs.statSync(file).size;
      } catch (err) {
        throw new CliError(`cannot read the serials from ${file} (${(err as NodeJS.ErrnoException).code ?? err})`, EXIT.USAGE);
      }
      const client = ctx.client;
      // The file is streamed (the service reads it as it arrives: a million serials never sit in memory here or
      // there); the bar counts the bytes handed to the connection. A retry (rate limit, uploads busy) reopens it.
      const bar = ctx.progress('uploading', size, 'bytes');
      const upload = () => {
        let sent = 0;
        const counter = new Transform({
          transform(chunk: Buffer, _enc, done) {
            sent += chunk.length;
            bar.update(sent);
            done(null, chunk);
          },
        });
        const stream = Readable.toWeb(fs.createReadStream(file).pipe(counter));
        return replaceAllowlist({
          client,
          path: { id: claimId },
          // A stream, not the string[] (JSON) the SDK types: bodySerializer null hands it to fetch as it is.
          body: stream as unknown as string[],
          bodySerializer: null,
          duplex: 'half',
          headers: { 'Content-Type': file.endsWith('.json') ? 'application/json' : 'text/csv' },
        } as Parameters<typeof replaceAllowlist>[0]);
      };
      try {
        const result = await ctx.call(upload);
        bar.stop();
        ctx.print(result, () => ctx.say(`allow-list of claim ${result.claimId} replaced: ${result.allowlistSize} serial(s)`));
      } finally {
        bar.stop();
      }
    });

  group
    .command('revoke')
    .description('revoke a claim (no further exchanges); --cascade also revokes every device certificate it provisioned')
    .argument('<claimId>', 'the claim')
    .addOption(new Option('--reason <reason>', 'RFC 5280 revocation reason').choices(REVOCATION_REASONS).default('unspecified'))
    .option('--cascade', 'also revoke the device certificates it provisioned')
    .action(async (claimId: string, opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const revoked = await ctx.call(() => revokeClaim({ client: ctx.client, path: { id: claimId }, body: { reason: opts.reason as RevocationReason, cascade: opts.cascade === true } }));
      ctx.print(revoked, () => ctx.say(`claim ${revoked.id} revoked; device certificates revoked: ${revoked.revokedDeviceCertificates}`));
    });

  return group;
}

/** Creates the private key's file for writing: mode 0600, refusing an existing file or a symlink (a usage error). */
function openNewKeyFile(file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'EEXIST' ? 'it exists (the key is written to a new file only)' : (err as Error).message;
    throw new CliError(`cannot create --key-out ${file}: ${reason}`, EXIT.USAGE, 'name a new file in a directory you can write to');
  }
}
