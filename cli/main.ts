/**
 * fleet-pki: the operator's command line for the Fleet PKI service, built on the generated TypeScript client
 * (clients/fleet-pki-client.ts) and nothing of the server. Reference: docs/cli.md.
 */
import { Command, CommanderError, Option } from 'commander';
import { auditCommand } from './commands/audit';
import { authoritiesCommand } from './commands/authorities';
import { certificatesCommand } from './commands/certificates';
import { claimsCommand } from './commands/claims';
import { rotationsCommand } from './commands/rotations';
import { CliError, EXIT, EXIT_CODES_HELP } from './exit-codes';

const ENVIRONMENT_HELP = `Environment:
  FLEET_PKI_URL       the service URL (like --url)
  FLEET_PKI_KEY       the API key (preferred: it stays out of shell history)
  FLEET_PKI_KEY_FILE  a file holding the API key (like --key-file)`;

export function program(): Command {
  const root = new Command('fleet-pki')
    .description('Operate a Fleet PKI service: authorities, certificates, factory claims, rotation campaigns, audit')
    .option('--url <url>', 'service URL, e.g. https://pki.example.com (default: $FLEET_PKI_URL)')
    .option('--key-file <file>', 'read the API key from this file ("-" for stdin) (default: $FLEET_PKI_KEY)')
    .addOption(new Option('--key <key>', 'the API key itself: discouraged, it lands in shell history and the process list').hideHelp())
    .option('--json', 'machine-readable output: one JSON document on stdout (errors as one JSON line on stderr)')
    .option('--progress', 'show progress bars even when stderr is not a terminal')
    .option('--no-progress', 'never show progress bars')
    // afterAll: every command's --help ends with the environment and the exit codes.
    .addHelpText('afterAll', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n\nReference: docs/cli.md`)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  for (const group of [authoritiesCommand(), certificatesCommand(), claimsCommand(), rotationsCommand(), auditCommand()]) {
    root.addCommand(group);
  }
  // Every subcommand reports usage errors through the same path (exit 1) instead of exiting by itself.
  const override = (command: Command) => {
    command.exitOverride();
    command.commands.forEach(override);
  };
  override(root);
  root.hook('preAction', (_root, action) => {
    if (action.optsWithGlobals().key !== undefined) {
      process.stderr.write('fleet-pki: warning: --key puts the API key in shell history and the process list; prefer FLEET_PKI_KEY or --key-file\n');
    }
  });
  return root;
}

/** Runs the CLI on `argv` (process.argv form) and resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    await program().parseAsync(argv);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help); help and --version are not errors.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const failure = err instanceof CliError ? err : new CliError(err instanceof Error ? err.message : String(err), EXIT.USAGE);
    if (json) {
      process.stderr.write(`${JSON.stringify({ error: { message: failure.message, code: failure.code ?? null, hint: failure.hint ?? null, exitCode: failure.exitCode } })}\n`);
    } else {
      process.stderr.write(`fleet-pki: error: ${failure.message}\n`);
      if (failure.hint) process.stderr.write(`hint: ${failure.hint}\n`);
    }
    return failure.exitCode;
  }
}
