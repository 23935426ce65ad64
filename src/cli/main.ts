/**
 * The command line. commander only parses here; every command lives in its
 * own module under commands/, imported lazily so `fleetx render` does not
 * load the etcd client. runCli is the one place that turns errors into
 * messages and exit codes, and the only caller of process.exit.
 */
import { Command, CommanderError, Option } from 'commander';
import { exitCodeOf, EXIT, ExitStatus, isFleetxError } from '../errors/errors.js';
import { processIo, type Io } from './io.js';
import { registerUnitCommands } from './program/units.js';
import { registerToolCommands } from './program/tools.js';
import { registerClusterCommands } from './program/cluster.js';
import { registerPresenceCommands } from './program/presence.js';
import { registerRolloutCommands } from './program/rollouts.js';
import { registerSecretCommands } from './program/secrets.js';

export const VERSION = '0.1.0';

/** --endpoint may be repeated (as the agent's unit does) or comma-separated, as fleetctl took it. */
const joinEndpoints = (value: string, previous: string | undefined): string => (previous ? `${previous},${value}` : value);

export function buildProgram(io: Io, o: { jsonErrors?: boolean } = {}): Command {
  const program = new Command('fleetx')
    .description('fleet-style orchestration of systemd units across container hosts')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout(s.trimEnd()),
      // under -o json a parse error is the one JSON line, without the help hint after it
      writeErr: (s) => (o.jsonErrors ? undefined : io.stderr(s.trimEnd())),
      outputError: (s, write) =>
        o.jsonErrors
          ? io.stderr(JSON.stringify({ schema: 'fleetx/error/v1', error: { kind: 'usage', exitCode: EXIT.usage, message: s.trim().replace(/^error: /, '') } }))
          : write(s),
    });

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
  program.configureHelp({ showGlobalOptions: true });

  program
    .command('version')
    .description('print the version of fleetx (as fleetctl version)')
    .action((_o, c: Command) => {
      if (c.optsWithGlobals().output === 'json') io.stdout(JSON.stringify({ schema: 'fleetx/version/v1', version: VERSION, node: process.versions.node }));
      else io.stdout(`fleetx version ${VERSION}`);
    });

  registerToolCommands(program, io);
  registerUnitCommands(program, io);
  registerClusterCommands(program, io);
  registerPresenceCommands(program, io);
  registerRolloutCommands(program, io);
  registerSecretCommands(program, io);
  return program;
}

/** 128 + SIGPIPE: the status a shell shows for a tool whose reader went away (`| head -1`). */
export const EXIT_OUTPUT_CLOSED = 141;

/** Run the CLI with argv (without node and script) and exit the process with its code. */
export async function runCli(argv: string[], io: Io = processIo()): Promise<never> {
  exitQuietlyWhenOutputCloses();
  const code = await runCommand(argv, io);
  // Exit explicitly: gRPC and D-Bus handles may outlive a command by a few
  // seconds, and a CLI must return as soon as its work is done. But first
  // let the output drain: writes to a pipe are asynchronous, and exiting
  // at once cut `fleetx start` of 1,000 units off after a few hundred lines.
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

/**
 * `fleetx list-units | head -1`: once the reader is gone a write fails with
 * EPIPE. A C tool would die of SIGPIPE, silently; Node ignores that signal,
 * and the stream's unhandled error printed a stack. Exit at once, silently,
 * with the status such a tool has. What a command started (a rollout it was
 * following) goes on, as when the CLI is killed.
 */
function exitQuietlyWhenOutputCloses(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(EXIT_OUTPUT_CLOSED);
      throw e;
    });
  }
}

/** Resolves once everything written to the stream so far has been handed to the OS. */
async function drained(stream: NodeJS.WriteStream): Promise<void> {
  // A write that failed reports it a few ticks later (see exitQuietlyWhenOutputCloses): let it.
  await new Promise((resolve) => setImmediate(resolve));
  // Nothing pending: no empty write either, which fails on a closed pipe the command never wrote to.
  if (stream.writableLength === 0) return;
  await new Promise((resolve) => stream.write('', () => resolve(undefined)));
}

/** Run one command and return its exit code; never throws, never exits. */
export async function runCommand(argv: string[], io: Io): Promise<number> {
  const program = buildProgram(io, { jsonErrors: wantsJson(argv) });
  try {
    await program.parseAsync(fleetctlArgv(argv), { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    return reportError(e, io, program.opts().output === 'json');
  }
}

/** -o json / --output json / --output=json / -ojson, before any "--". */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  const args = end === -1 ? argv : argv.slice(0, end);
  return args.some((a, i) => a === '--output=json' || a === '-ojson' || ((a === '-o' || a === '--output') && args[i + 1] === 'json'));
}

/** fleetctl (Go flags) wrote booleans as --flag=false; commander's form is --no-flag. */
const GO_BOOLEANS = ['strict-host-key-checking'];

export function fleetctlArgv(argv: string[]): string[] {
  const end = argv.indexOf('--');
  return argv.map((a, i) => {
    if (end !== -1 && i > end) return a;
    const m = /^--([a-z-]+)=(true|false|1|0)$/.exec(a);
    if (!m || !GO_BOOLEANS.includes(m[1]!)) return a;
    return m[2] === 'false' || m[2] === '0' ? `--no-${m[1]}` : `--${m[1]}`;
  });
}

function reportError(e: unknown, io: Io, json: boolean): number {
  if (e instanceof ExitStatus) return e.code;
  if (e instanceof CommanderError) {
    // help and version end with exitCode 0; parse errors were already printed
    return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (json) {
    io.stderr(jsonError(e));
    return exitCodeOf(e);
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

/** Under -o json an error is one JSON object on stderr (shape in docs/CLI.md). */
export function jsonError(e: unknown): string {
  const f = isFleetxError(e) ? e : undefined;
  const message = f ? f.message : `internal error: ${e instanceof Error ? e.message : String(e)}`;
  return JSON.stringify({
    schema: 'fleetx/error/v1',
    error: {
      kind: f?.kind ?? 'internal',
      exitCode: exitCodeOf(e),
      message,
      ...(f?.hint ? { hint: f.hint } : {}),
      ...(f?.details ? f.details : {}),
    },
  });
}
