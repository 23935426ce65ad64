/**
 * `fleetx sandbox up|down|status`: a local cluster of nspawn hosts with real
 * systemd, one etcd and a fleetx agent per host (see src/sandbox/README.md).
 * Needs root. The state dir defaults to /var/lib/fleetx/sandbox, or
 * FLEETX_SANDBOX_DIR.
 */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { usageError } from '../../errors/errors.js';
import { demoDown, demoStatus, demoUp, type DemoStatus } from '../../demo/demo.js';
import { sandboxDown, sandboxStatus, sandboxUp, type SandboxStatus } from '../../sandbox/sandbox.js';
import { DEFAULT_SANDBOX_DIR } from '../../sandbox/state.js';
import type { Io, OutputFormat } from '../io.js';
import { formatTable } from '../table.js';

export interface SandboxCommandOptions {
  action: 'up' | 'down' | 'status';
  /** Number of hosts for `up` (default 3). */
  hosts?: number;
  /** etcd members for `up` (default 1). */
  etcdMembers?: number;
  output: OutputFormat;
  stateDir?: string;
  /** Repository the hosts run the agent from (default: this checkout). */
  repoRoot?: string;
  /** `up --demo`: HAProxy + presence syncer + the demo service (src/demo). */
  demo?: boolean;
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
      const repoRoot = opts.repoRoot ?? thisRepo();
      const status = await sandboxUp({ hosts: opts.hosts ?? DEFAULT_SANDBOX_HOSTS, stateDir, repoRoot, ...(opts.etcdMembers !== undefined ? { etcdMembers: opts.etcdMembers } : {}) });
      const demo = opts.demo ? await demoUp(status, { repoRoot, progress: (l) => io.stderr(l) }) : await demoStatus(stateDir);
      io.stdout(opts.output === 'json' ? JSON.stringify({ schema: 'fleetx/sandbox/v1', ...withDemo(status, demo) }, null, 2) : statusText(status, demo));
      return;
    }
    case 'status': {
      const status = await sandboxStatus(stateDir);
      const demo = await demoStatus(stateDir);
      io.stdout(opts.output === 'json' ? JSON.stringify({ schema: 'fleetx/sandbox/v1', ...withDemo(status, demo) }, null, 2) : statusText(status, demo));
      return;
    }
    case 'down': {
      // The demo's HAProxy binds the bridge address and its syncer talks to etcd: stop them first.
      const demo = await demoDown(stateDir);
      const result = await sandboxDown(stateDir);
      result.removed.unshift(...demo.removed);
      if (opts.output === 'json') io.stdout(JSON.stringify({ schema: 'fleetx/sandbox-down/v1', ...result }, null, 2));
      else io.stdout(result.removed.length ? `removed ${result.removed.join(', ')}` : `no sandbox at ${stateDir}`);
      return;
    }
    default:
      throw usageError(`unknown sandbox action ${JSON.stringify(opts.action)}`, 'use up, down or status');
  }
}

/** The JSON status: the sandbox's, plus `demo` when one was brought up. */
function withDemo(s: SandboxStatus, demo: DemoStatus): SandboxStatus & { demo?: DemoStatus } {
  return demo.exists ? { ...s, demo } : s;
}

/** Pure: the text view of a status (and of the demo, when there is one). */
export function statusText(s: SandboxStatus, demo?: DemoStatus): string {
  if (!s.exists) return `no sandbox at ${s.stateDir} (create one with \`fleetx sandbox up\`)`;
  const lines = [`sandbox ${s.stateDir}: ${s.healthy ? 'healthy' : 'NOT healthy'}`];
  if (s.etcd && s.etcd.members.length > 1) {
    lines.push(`etcd:   ${s.etcd.members.length} members${s.etcd.running ? '' : ' (NOT all healthy)'}`);
    for (const m of s.etcd.members) lines.push(`        ${m.name} ${m.clientUrl} ${m.running ? `(pid ${m.pid})` : '(not running)'}`);
  } else if (s.etcd) lines.push(`etcd:   ${s.etcd.endpoints.join(',')} ${s.etcd.running ? `(pid ${s.etcd.pid})` : '(not running)'}`);
  if (s.bridge) lines.push(`bridge: ${s.bridge.name} ${s.bridge.address}${s.bridge.present ? '' : ' (missing)'}`);
  if (s.registry) lines.push(`images: ${s.registry.url} ${s.registry.running ? `(pid ${s.registry.pid}; plain HTTP, hosts trust this address only)` : '(not running)'}`);
  lines.push('');
  const rows = s.hosts.map((h) => ({
    host: h.name,
    'machine id': h.machineId,
    address: h.address,
    state: h.running ? (h.systemState ?? 'unknown') : 'stopped',
  }));
  lines.push(formatTable(rows, { fields: ['host', 'machine id', 'address', 'state'], legend: true }));
  if (demo?.exists) lines.push('', ...demoText(demo));
  if (s.envFile) lines.push('', `use it from this machine:  . ${s.envFile}`);
  return lines.join('\n');
}

/** Pure: the demo part of the text status. */
export function demoText(d: DemoStatus): string[] {
  const lines = [
    `demo:   ${d.service} behind ${d.lbUrl ?? '?'} (${d.healthy ? 'serving' : 'NOT all instances in service'})`,
    `        HAProxy ${d.haproxyPid !== undefined ? `pid ${d.haproxyPid}` : 'not running'}, presence syncer ${d.syncerPid !== undefined ? `pid ${d.syncerPid}` : 'not running'}`,
  ];
  for (const i of d.instances) {
    lines.push(`        ${i.unit}: ${i.active ?? '-'}, health ${i.health ?? '-'}, LB ${i.presence ?? '-'}${i.lb ? ` (${i.lb})` : ''}`);
  }
  if (d.serviceFile) lines.push(`        try: curl ${d.lbUrl ?? ''}   fleetx rolling-restart ${d.service}@   fleetx deploy ${d.service} --set tag=v2`);
  return lines;
}
