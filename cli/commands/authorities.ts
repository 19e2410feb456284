/** `fleet-pki authorities create | list | rotate` */
import { Command, Option } from 'commander';
import { createAuthority, listAuthorities, rotateAuthority, type AuthorityDto, type CreateAuthorityDto, type RotateAuthorityDto } from '../../clients/fleet-pki-client';
import { Context, printFields } from '../context';
import { collect } from '../pages';
import { positiveInt, nonNegativeInt, REVOCATION_REASONS, time, type RevocationReason } from '../options';

const KEY_SPECS = ['EC_P256', 'EC_P384', 'RSA_2048', 'RSA_3072', 'RSA_4096'] as const;
type KeySpec = (typeof KEY_SPECS)[number];

function showAuthority(ctx: Context, a: AuthorityDto): void {
  ctx.print(a, () =>
    printFields([
      ['id', a.id],
      ['name', a.name],
      ['type', a.type],
      ['usage', a.usage],
      ['status', a.status],
      ['parent', a.parentId],
      ['subject', a.subject],
      ['key', `${a.keyBackend} ${a.keySpec}`],
      ['serial', a.serial],
      ['not after', a.notAfter],
      ['successor', a.successorId],
    ]),
  );
}

export function authoritiesCommand(): Command {
  const group = new Command('authorities').description('certificate authorities: create, list, rotate');

  group
    .command('list')
    .description('list the certificate authorities')
    .option('--limit <n>', 'at most this many', positiveInt)
    .action(async (opts: { limit?: number }, cmd: Command) => {
      const ctx = Context.of(cmd);
      const items = await collect((cursor, limit) => ctx.call(() => listAuthorities({ client: ctx.client, query: { cursor, limit } })), opts.limit);
      ctx.print(items, () =>
        ctx.table(items, [
          { header: 'id', value: (a) => a.id },
          { header: 'name', value: (a) => a.name },
          { header: 'type', value: (a) => a.type },
          { header: 'usage', value: (a) => a.usage },
          { header: 'status', value: (a) => a.status },
          { header: 'key', value: (a) => `${a.keyBackend}/${a.keySpec}` },
          { header: 'not after', value: (a) => a.notAfter },
        ]),
      );
    });

  group
    .command('create')
    .description('create a root or an intermediate CA')
    .requiredOption('--name <name>', 'display name')
    .addOption(new Option('--type <type>', 'root or intermediate').choices(['root', 'intermediate']).makeOptionMandatory())
    .requiredOption('--cn <commonName>', 'subject common name')
    .option('--org <organization>', 'subject organization')
    .option('--country <code>', 'subject country (two letters)')
    .option('--parent <id>', 'parent authority id (intermediates)')
    .addOption(new Option('--usage <usage>', 'what it issues').choices(['devices', 'claims']))
    .addOption(new Option('--key-backend <backend>', 'where its key lives').choices(['local', 'aws-kms']))
    .addOption(new Option('--key-spec <spec>', 'key type').choices(KEY_SPECS))
    .option('--kms-key-id <id>', 'an existing AWS KMS key (aws-kms backend)')
    .option('--validity-days <days>', 'lifetime in days', positiveInt)
    .option('--path-length <n>', 'basicConstraints path length', nonNegativeInt)
    .action(async (opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const body: CreateAuthorityDto = {
        name: opts.name,
        type: opts.type,
        subject: { commonName: opts.cn, ...(opts.org ? { organization: opts.org } : {}), ...(opts.country ? { country: opts.country } : {}) },
        ...(opts.parent ? { parentId: opts.parent } : {}),
        ...(opts.usage ? { usage: opts.usage } : {}),
        ...(opts.keyBackend ? { keyBackend: opts.keyBackend } : {}),
        ...(opts.keySpec ? { keySpec: opts.keySpec as KeySpec } : {}),
        ...(opts.kmsKeyId ? { kmsKeyId: opts.kmsKeyId } : {}),
        ...(opts.validityDays ? { validityDays: opts.validityDays } : {}),
        ...(opts.pathLength !== undefined ? { pathLength: opts.pathLength } : {}),
      };
      showAuthority(ctx, await ctx.call(() => createAuthority({ client: ctx.client, body })));
    });

  group
    .command('rotate')
    .description('rotate an issuing CA: a successor with a new key takes over; optionally open a rotation campaign')
    .argument('<id>', 'the intermediate authority to rotate')
    .option('--name <name>', "the successor's name")
    .addOption(new Option('--key-spec <spec>', "the successor's key type").choices(KEY_SPECS))
    .option('--validity-days <days>', "the successor's lifetime", positiveInt)
    .option('--campaign-reason <text>', "open a rotation campaign over the predecessor's certificates, for this reason")
    .option('--campaign-deadline <time>', 'campaign deadline (ISO 8601 or 30d)', time)
    .addOption(new Option('--on-deadline <action>', 'what happens to certificates not renewed by the deadline').choices(['report', 'revoke']).default('report'))
    .addOption(new Option('--revocation-reason <reason>', 'with --on-deadline revoke').choices(REVOCATION_REASONS))
    .action(async (id: string, opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const body: RotateAuthorityDto = {
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.keySpec ? { keySpec: opts.keySpec as KeySpec } : {}),
        ...(opts.validityDays ? { validityDays: opts.validityDays } : {}),
        ...(opts.campaignReason
          ? {
              campaign: {
                reason: opts.campaignReason,
                deadline: opts.campaignDeadline ?? time('30d'),
                onDeadline: opts.onDeadline,
                ...(opts.revocationReason ? { revocationReason: opts.revocationReason as RevocationReason } : {}),
              },
            }
          : {}),
      };
      const rotated = await ctx.call(() => rotateAuthority({ client: ctx.client, path: { id }, body }));
      ctx.print(rotated, () => {
        printFields([
          ['predecessor', `${rotated.predecessor.id} (${rotated.predecessor.status})`],
          ['successor', `${rotated.successor.id} (${rotated.successor.status})`],
          ['campaign', rotated.campaign ? `${rotated.campaign.id} (${rotated.campaign.progress.total} certificates)` : null],
        ]);
      });
    });

  return group;
}
