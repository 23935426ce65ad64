/**
 * `fleetx sandbox up|down|status`: a local cluster of nspawn hosts with real
 * systemd, one etcd and a fleetx agent per host (see src/sandbox/README.md).
 * Needs root. The state dir defaults to /var/lib/fleetx/sandbox, or
 * FLEETX_SANDBOX_DIR.
 */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { usageError } from '../../errors/errors.js';
import { sandboxDown, sandboxStatus, sandboxUp, type SandboxStatus } from '../../sandbox/sandbox.js';
import { DEFAULT_SANDBOX_DIR } from '../../sandbox/state.js';
import type { Io, OutputFormat } from '../io.js';
import { formatTable } from '../table.js';

export interface SandboxCommandOptions {
  action: 'up' | 'down' | 'status';
  /** Number of hosts for `up` (default 3). */
  hosts?: number;
  output: OutputFormat;
  stateDir?: string;
  /** Repository the hosts run the agent from (default: this checkout). */
  repoRoot?: string;
}

export const DEFAULT_SANDBOX_HOSTS = 3;

const thisRepo = () => resolve(fileURLToPath(new URL('../../..', import.meta.url)));

export function sandboxDir(opts: { stateDir?: string }, io: Io): string {
  return resolve(io.cwd, opts.stateDir ?? io.env.FLEETX_SANDBOX_DIR ?? DEFAULT_SANDBOX_DIR);
}

export async function sandboxCommand(opts: SandboxCommandOptions, io: Io): Promise<void> {
  const stateDir = sandboxDir(opts, io);
  switch (opts.action) {
    case 'up': {
      const status = await sandboxUp({ hosts: opts.hosts ?? DEFAULT_SANDBOX_HOSTS, stateDir, repoRoot: opts.repoRoot ?? thisRepo() });
      io.stdout(opts.output === 'json' ? JSON.stringify(status, null, 2) : statusText(status));
      return;
    }
    case 'status': {
      const status = await sandboxStatus(stateDir);
      io.stdout(opts.output === 'json' ? JSON.stringify(status, null, 2) : statusText(status));
      return;
    }
    case 'down': {
      const result = await sandboxDown(stateDir);
      if (opts.output === 'json') io.stdout(JSON.stringify(result, null, 2));
      else io.stdout(result.removed.length ? `removed ${result.removed.join(', ')}` : `no sandbox at ${stateDir}`);
      return;
    }
    default:
      throw usageError(`unknown sandbox action ${JSON.stringify(opts.action)}`, 'use up, down or status');
  }
}

/** Pure: the text view of a status. */
export function statusText(s: SandboxStatus): string {
  if (!s.exists) return `no sandbox at ${s.stateDir} (create one with \`fleetx sandbox up\`)`;
  const lines = [`sandbox ${s.stateDir}: ${s.healthy ? 'healthy' : 'NOT healthy'}`];
  if (s.etcd) lines.push(`etcd:   ${s.etcd.endpoints.join(',')} ${s.etcd.running ? `(pid ${s.etcd.pid})` : '(not running)'}`);
  if (s.bridge) lines.push(`bridge: ${s.bridge.name} ${s.bridge.address}${s.bridge.present ? '' : ' (missing)'}`);
  lines.push('');
  const rows = s.hosts.map((h) => ({
    host: h.name,
    'machine id': h.machineId,
    address: h.address,
    state: h.running ? (h.systemState ?? 'unknown') : 'stopped',
  }));
  lines.push(formatTable(rows, { fields: ['host', 'machine id', 'address', 'state'], legend: true }));
  if (s.envFile) lines.push('', `use it from this machine:  . ${s.envFile}`);
  return lines.join('\n');
}
