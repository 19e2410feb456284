/** `fleet-pki rotations start | status | watch` */
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { getRotation, listRotations, openRotation, type CampaignDto, type OpenCampaignDto } from '../../clients/fleet-pki-client';
import { Context, printFields } from '../context';
import { CliError, EXIT } from '../exit-codes';
import { list, positiveInt, REVOCATION_REASONS, time, type RevocationReason } from '../options';
import { collect } from '../pages';

function showCampaign(ctx: Context, c: CampaignDto): void {
  ctx.print(c, () =>
    printFields([
      ['id', c.id],
      ['status', c.status],
      ['reason', c.reason],
      ['deadline', `${c.deadline} (then ${c.onDeadline})`],
      ['progress', progressLine(c)],
      ['aws iot job', c.iotJobId],
      ['closed', c.closedAt],
    ]),
  );
}

function progressLine(c: CampaignDto): string {
  const p = c.progress;
  return `${p.renewed} renewed, ${p.pending} pending, ${p.revoked} revoked, ${p.overdue} overdue of ${p.total}`;
}

/** Watches outlast a restart of the service: up to WATCH_TOLERATED_FAILURES service errors in a row are waited out. */
const WATCH_TOLERATED_FAILURES = 3;
let failuresInARow = 0;

async function poll(ctx: Context, id: string, last: CampaignDto): Promise<CampaignDto> {
  try {
    const campaign = await ctx.call(() => getRotation({ client: ctx.client, path: { id } }));
    failuresInARow = 0;
    return campaign;
  } catch (err) {
    if (!(err instanceof CliError) || err.exitCode !== EXIT.SERVICE || ++failuresInARow > WATCH_TOLERATED_FAILURES) throw err;
    return last;
  }
}

export function rotationsCommand(): Command {
  const group = new Command('rotations').description('rotation campaigns: start, status, watch');

  group
    .command('start')
    .description('open a rotation campaign: the matched active certificates are asked to renew by the deadline')
    .requiredOption('--reason <text>', 'why (shown to operators and in the AWS IoT job)')
    .requiredOption('--deadline <time>', 'ISO 8601 or a duration from now (30d)', time)
    .addOption(new Option('--on-deadline <action>', 'what happens to certificates not renewed by then').choices(['report', 'revoke']).default('report'))
    .addOption(new Option('--revocation-reason <reason>', 'with --on-deadline revoke').choices(REVOCATION_REASONS))
    .option('--authority <id>', 'certificates of this authority')
    .option('--claim <id>', 'certificates provisioned through this claim')
    .option('--profile <name>', 'certificates of this profile')
    .option('--expiring-before <time>', 'certificates expiring before this time', time)
    .option('--certificate <ids>', 'these certificate ids (comma-separated or repeated)', list)
    .option('--thing <names>', 'these thing names (comma-separated or repeated)', list)
    .option('--notify-iot-job', 'notify the devices with an AWS IoT job')
    .action(async (opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      const selector: OpenCampaignDto['selector'] = {
        ...(opts.authority ? { authorityId: opts.authority } : {}),
        ...(opts.claim ? { claimId: opts.claim } : {}),
        ...(opts.profile ? { profile: opts.profile } : {}),
        ...(opts.expiringBefore ? { expiringBefore: opts.expiringBefore } : {}),
        ...(opts.certificate ? { certificateIds: opts.certificate } : {}),
        ...(opts.thing ? { thingNames: opts.thing } : {}),
      };
      if (Object.keys(selector).length === 0) throw new CliError('a campaign needs a selector', EXIT.USAGE, 'give --authority, --claim, --profile, --expiring-before, --certificate or --thing');
      const body: OpenCampaignDto = {
        selector,
        reason: opts.reason,
        deadline: opts.deadline,
        onDeadline: opts.onDeadline,
        ...(opts.revocationReason ? { revocationReason: opts.revocationReason as RevocationReason } : {}),
        ...(opts.notifyIotJob ? { notify: 'iot-job' as const } : {}),
      };
      showCampaign(ctx, await ctx.call(() => openRotation({ client: ctx.client, body })));
    });

  group
    .command('status')
    .description('one campaign in detail, or (without an id) every campaign')
    .argument('[id]', 'campaign id')
    .action(async (id: string | undefined, _opts, cmd: Command) => {
      const ctx = Context.of(cmd);
      if (id) return showCampaign(ctx, await ctx.call(() => getRotation({ client: ctx.client, path: { id } })));
      const items = await collect((cursor, limit) => ctx.call(() => listRotations({ client: ctx.client, query: { cursor, limit } })));
      ctx.print(items, () =>
        ctx.table(items, [
          { header: 'id', value: (c) => c.id },
          { header: 'status', value: (c) => c.status },
          { header: 'total', value: (c) => c.total },
          { header: 'deadline', value: (c) => c.deadline },
          { header: 'reason', value: (c) => c.reason },
        ]),
      );
    });

  group
    .command('watch')
    .description('poll a campaign and show its progress until it is no longer open (completed, cancelled or closed)')
    .argument('<id>', 'campaign id')
    .option('--interval <seconds>', 'seconds between polls', positiveInt, 5)
    .action(async (id: string, opts: { interval: number }, cmd: Command) => {
      const ctx = Context.of(cmd);
      let campaign = await ctx.call(() => getRotation({ client: ctx.client, path: { id } }));
      const bar = ctx.progress('renewed', campaign.progress.total, 'certificates');
      try {
        for (;;) {
          // Done = renewed or revoked: what no longer needs the device.
          bar.update(campaign.progress.renewed + campaign.progress.revoked, campaign.progress.total);
          if (campaign.status !== 'open') break;
          await sleep(opts.interval * 1000);
          campaign = await poll(ctx, id, campaign);
        }
      } finally {
        bar.stop();
      }
      ctx.print(campaign, () => ctx.say(`campaign ${campaign.id} ${campaign.status}: ${progressLine(campaign)}`));
    });

  return group;
}
