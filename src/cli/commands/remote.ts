/**
 * status, journal and ssh: run systemctl / journalctl / a command on the
 * machine that runs a unit, over SSH (see remote/ssh.ts).
 */
import PQueue from 'p-queue';
import { FleetxError, notFoundError, usageError } from '../../errors/errors.js';
import type { MachineRecord } from '../../registry/records.js';
import { parseUnitName } from '../../unit/name.js';
import { runRemote, type RemoteOutput, type SshOptions } from '../../remote/ssh.js';
import type { CommandContext } from '../context.js';

export interface RemoteFlags {
  tunnel?: string;
  knownHostsFile?: string;
  strictHostKeyChecking: boolean;
  sshUsername?: string;
  sshPort?: string;
  identityFile?: string;
}

export function sshOptions(flags: RemoteFlags, env: NodeJS.ProcessEnv): SshOptions {
  const pick = (flag: string | undefined, name: string) => flag ?? env[`FLEETX_${name}`] ?? env[`FLEETCTL_${name}`];
  const port = pick(flags.sshPort, 'SSH_PORT');
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw usageError(`--ssh-port must be a port number, got "${port}"`);
  const strictEnv = pick(undefined, 'STRICT_HOST_KEY_CHECKING');
  return {
    user: pick(flags.sshUsername, 'SSH_USERNAME') ?? 'root',
    port: port === undefined ? undefined : Number(port),
    tunnel: pick(flags.tunnel, 'TUNNEL'),
    knownHostsFile: pick(flags.knownHostsFile, 'KNOWN_HOSTS_FILE'),
    strictHostKeyChecking: flags.strictHostKeyChecking && strictEnv !== 'false',
    identityFile: pick(flags.identityFile, 'SSH_IDENTITY_FILE'),
  };
}

/** The machines a unit runs on (or is scheduled to), by what agents report first. */
async function machinesOfUnit(ctx: CommandContext, unit: string): Promise<MachineRecord[]> {
  const name = parseUnitName(unit).full;
  const [states, schedules, machines] = await Promise.all([
    ctx.registry.listStates(), ctx.registry.listSchedules(), ctx.registry.listMachines(),
  ]);
  const ids = new Set([...states.filter((s) => s.name === name).map((s) => s.machine), ...schedules.filter((s) => s.name === name).map((s) => s.machine)]);
  const found = machines.filter((m) => ids.has(m.id));
  if (found.length === 0) throw notFoundError(`unit ${name} does not run on any machine`, `see: fleetx list-unit-files; fleetx why ${name}`);
  return found;
}

async function machineByIdOrUnit(ctx: CommandContext, target: string): Promise<MachineRecord> {
  if (/\.[a-z]+$/.test(target) && target.includes('.')) {
    const ms = await machinesOfUnit(ctx, target);
    return ms[0]!;
  }
  const hits = (await ctx.registry.listMachines()).filter((m) => m.id.startsWith(target));
  if (hits.length === 0) throw notFoundError(`no live machine has an ID starting with "${target}"`, 'see: fleetx list-machines --full');
  if (hits.length > 1) throw usageError(`"${target}" matches ${hits.length} machines; give more of the ID`);
  return hits[0]!;
}

function remoteFailed(code: number): FleetxError {
  return new FleetxError('failed', `remote command exited with status ${code}`, { exitCode: code });
}

/**
 * A terminal gets ssh's own streams (colours, pagers, raw bytes); otherwise
 * output goes through the command's Io, line by line, so in-process callers
 * and tests see it.
 */
function outputOf(ctx: CommandContext): RemoteOutput | undefined {
  if (ctx.io.isTTY) return undefined;
  return { stdout: (l) => ctx.io.stdout(l), stderr: (l) => ctx.io.stderr(l) };
}

/** SSH sessions `status` runs at once when it covers many machines. */
const SSH_CONCURRENCY = 8;

export async function statusCommand(opts: { units: string[]; flags: RemoteFlags }, ctx: CommandContext): Promise<void> {
  const ssh = sshOptions(opts.flags, ctx.io.env);
  const targets: Array<{ ip: string; argv: string[] }> = [];
  for (const unit of opts.units) {
    for (const m of await machinesOfUnit(ctx, unit)) targets.push({ ip: m.ip, argv: ['systemctl', 'status', '--no-pager', '-l', parseUnitName(unit).full] });
  }
  const output = outputOf(ctx);
  let worst = 0;
  if (output === undefined || targets.length < 2) {
    // a terminal gets ssh's own streams: one session at a time
    for (const t of targets) worst = Math.max(worst, await runRemote(t.ip, t.argv, ssh, { tty: false, output, endWithCaller: true }));
  } else {
    // many machines: sessions side by side, each one's output kept and printed whole, in order
    const queue = new PQueue({ concurrency: SSH_CONCURRENCY });
    const runs = targets.map((t) =>
      queue.add(async () => {
        const lines: Array<[keyof RemoteOutput, string]> = [];
        const code = await runRemote(t.ip, t.argv, ssh, { tty: false, endWithCaller: true, output: { stdout: (l) => lines.push(['stdout', l]), stderr: (l) => lines.push(['stderr', l]) } });
        return { code, lines };
      }).then((ok) => ({ ok }), (error: unknown) => ({ error })),
    );
    for (const run of runs) {
      const r = await run;
      if ('error' in r) {
        queue.clear();
        await queue.onIdle();
        throw r.error;
      }
      for (const [stream, line] of r.ok.lines) output[stream](line);
      worst = Math.max(worst, r.ok.code);
    }
  }
  if (worst !== 0) throw remoteFailed(worst);
}

export async function journalCommand(opts: { unit: string; lines: number; follow: boolean; sudo?: boolean; flags: RemoteFlags }, ctx: CommandContext): Promise<void> {
  const ssh = sshOptions(opts.flags, ctx.io.env);
  const [m] = await machinesOfUnit(ctx, opts.unit);
  // -n: never wait for a password prompt nobody can answer (no TTY); sudo fails with a message instead
  const argv = [...(opts.sudo ? ['sudo', '-n'] : []), 'journalctl', '--no-pager', '--unit', parseUnitName(opts.unit).full, '--lines', String(opts.lines)];
  if (opts.follow) argv.push('--follow');
  // a killed `journal -f` (even SIGKILL) must not leave ssh and journalctl running
  const code = await runRemote(m!.ip, argv, ssh, { tty: false, output: outputOf(ctx), endWithCaller: true });
  if (code !== 0) throw remoteFailed(code);
}

export async function sshCommand(opts: { target: string; command: string[]; forwardAgent: boolean; flags: RemoteFlags }, ctx: CommandContext): Promise<void> {
  const ssh = { ...sshOptions(opts.flags, ctx.io.env), forwardAgent: opts.forwardAgent };
  const m = await machineByIdOrUnit(ctx, opts.target);
  const code = await runRemote(m.ip, opts.command, ssh, { tty: opts.command.length === 0 && ctx.io.isTTY, output: outputOf(ctx) });
  if (code !== 0) throw remoteFailed(code);
}
