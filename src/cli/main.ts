/**
 * The command line. commander only parses here; every command lives in its
 * own module under commands/, imported lazily so `fleetx render` does not
 * load the etcd client. runCli is the one place that turns errors into
 * messages and exit codes, and the only caller of process.exit.
 */
import { Command, CommanderError, Option } from 'commander';
import { exitCodeOf, EXIT, isFleetxError } from '../errors/errors.js';
import { processIo, type Io } from './io.js';
import { registerUnitCommands } from './program/units.js';
import { registerToolCommands } from './program/tools.js';
import { registerClusterCommands } from './program/cluster.js';
import { registerPresenceCommands } from './program/presence.js';
import { registerRolloutCommands } from './program/rollouts.js';

export const VERSION = '0.1.0';

/** --endpoint may be repeated (as the agent's unit does) or comma-separated, as fleetctl took it. */
const joinEndpoints = (value: string, previous: string | undefined): string => (previous ? `${previous},${value}` : value);

export function buildProgram(io: Io): Command {
  const program = new Command('fleetx')
    .description('fleet-style orchestration of systemd units across container hosts')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s.trimEnd()), writeErr: (s) => io.stderr(s.trimEnd()) });

  // Connection flags keep fleetctl's names; values also come from FLEETX_*
  // and then FLEETCTL_* environment variables (see registry/connection.ts).
  program
    .option('--endpoint <urls>', 'etcd endpoints, comma-separated or repeated (default http://127.0.0.1:2379)', joinEndpoints)
    .option('--ca-file <path>', 'CA certificate that signed etcd\'s server certificate')
    .option('--cert-file <path>', 'client certificate for etcd TLS authentication')
    .option('--key-file <path>', 'client key for etcd TLS authentication')
    .option('--etcd-username <user>', 'etcd user (password from FLEETX_ETCD_PASSWORD or --etcd-password-file)')
    .option('--etcd-password-file <path>', 'file holding the etcd password')
    .option('--etcd-key-prefix <prefix>', 'key prefix of fleetx data in etcd (default /fleetx)')
    .option('--request-timeout <seconds>', 'time limit of each etcd request (default 5)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'));

  registerToolCommands(program, io);
  registerUnitCommands(program, io);
  registerClusterCommands(program, io);
  registerPresenceCommands(program, io);
  registerRolloutCommands(program, io);
  return program;
}

/** Run the CLI with argv (without node and script) and exit the process with its code. */
export async function runCli(argv: string[], io: Io = processIo()): Promise<never> {
  const code = await runCommand(argv, io);
  // Exit explicitly: gRPC and D-Bus handles may outlive a command by a few
  // seconds, and a CLI must return as soon as its work is done.
  process.exit(code);
}

/** Run one command and return its exit code; never throws, never exits. */
export async function runCommand(argv: string[], io: Io): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    return reportError(e, io);
  }
}

function reportError(e: unknown, io: Io): number {
  if (e instanceof CommanderError) {
    // help and version end with exitCode 0; parse errors were already printed
    return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (isFleetxError(e)) {
    io.stderr(`fleetx: ${e.message}`);
    if (e.hint) io.stderr(`  ${e.hint}`);
    return exitCodeOf(e);
  }
  const err = e instanceof Error ? e : new Error(String(e));
  io.stderr(`fleetx: internal error: ${err.message}`);
  if (io.env.FLEETX_DEBUG) io.stderr(err.stack ?? '');
  return exitCodeOf(e);
}
