/**
 * The sandbox's etcd: one member by default, or a cluster of N members
 * (`--etcd-members`), each a detached process on the machine (its own
 * process group, data dir and log file) so it outlives the CLI that started
 * it. Members listen only on the bridge address, on ports of their own
 * (client 2379, 2381, ...; peer 2380, 2382, ...): the machine reaches them
 * directly, the hosts over the bridge; nothing binds the machine's own addresses.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { failedError } from '../errors/errors.js';
import { findProcs, isAlive, procArgv, sleep, spawnDaemon, terminate } from './proc.js';
import { SYSTEM_PATH } from './run.js';

export interface EtcdSpec {
  /** Member name (default `fleetx-sandbox`, the one member of a default sandbox). */
  name?: string;
  dataDir: string;
  logFile: string;
  /** e.g. http://10.213.0.1:2379 */
  clientUrl: string;
  /** e.g. http://10.213.0.1:2380 */
  peerUrl: string;
  /** Every member of the cluster, `name=peerUrl` (default: this member alone). */
  initialCluster?: string[];
  /** More etcd flags, e.g. a fault test's `--quota-backend-bytes=...`. */
  extraArgs?: string[];
}

export const ETCD_NAME = 'fleetx-sandbox';
/** Members of a sandbox's etcd: 1 (the default, fastest) up to this. */
export const MAX_ETCD_MEMBERS = 7;

/** Pure: etcd's argv. */
export function etcdArgs(s: EtcdSpec): string[] {
  const name = s.name ?? ETCD_NAME;
  return [
    `--name=${name}`,
    `--data-dir=${s.dataDir}`,
    `--listen-client-urls=${s.clientUrl}`,
    `--advertise-client-urls=${s.clientUrl}`,
    `--listen-peer-urls=${s.peerUrl}`,
    `--initial-advertise-peer-urls=${s.peerUrl}`,
    `--initial-cluster=${(s.initialCluster ?? [`${name}=${s.peerUrl}`]).join(',')}`,
    // Read only when the data dir is empty (a new cluster); ignored on restart.
    '--initial-cluster-state=new',
    `--initial-cluster-token=${ETCD_NAME}`,
    '--logger=zap',
    '--log-outputs=stderr',
    ...(s.extraArgs ?? []),
  ];
}

/**
 * Pure: the members of a sandbox etcd of `count` members on `address`.
 * Member 1 keeps the single-member names and ports (data dir `etcd`, client
 * `port`, peer `port+1`), so a default sandbox is unchanged; member i has
 * `etcd-i`, `etcd-i.log`, client `port+2(i-1)`, peer one above.
 */
export function etcdMembers(o: { count: number; address: string; port: number; dir: (entry: string) => string }): EtcdSpec[] {
  const members = Array.from({ length: o.count }, (_, k) => {
    const suffix = k === 0 ? '' : `-${k + 1}`;
    return {
      name: `${ETCD_NAME}${suffix}`,
      dataDir: o.dir(`etcd${suffix}`),
      logFile: o.dir(`etcd${suffix}.log`),
      clientUrl: `http://${o.address}:${o.port + 2 * k}`,
      peerUrl: `http://${o.address}:${o.port + 2 * k + 1}`,
    };
  });
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`);
  return members.map((m) => ({ ...m, initialCluster }));
}

/** Live etcd processes using this data dir. */
export function etcdPids(dataDir: string): number[] {
  return findProcs(dataDir, 'etcd').map((p) => p.pid);
}

/** Whether `pid` is an etcd of this data dir (a recorded pid may have been reused). */
export function isOurEtcd(pid: number | undefined, dataDir: string): boolean {
  return pid !== undefined && (procArgv(pid)?.includes(`--data-dir=${dataDir}`) ?? false);
}

/** etcd's /health: true only while the member is part of a cluster with a leader. */
// 5 s: a slow answer on a loaded machine is not a dead etcd. With 1 s,
// `sandbox up` on a busy machine took a healthy member for sick and
// restarted it under a running cluster (found by the fault matrix).
export async function etcdHealthy(clientUrl: string, timeoutMs = 5_000): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

/**
 * Starts etcd and waits until it answers /health.
 * @throws FleetxError 'failed' when it exits or stays unhealthy (see its log).
 */
export async function startEtcd(s: EtcdSpec, timeoutMs = 15_000): Promise<number> {
  const [pid] = await startEtcdMembers([s], timeoutMs);
  return pid!;
}

/**
 * Starts members together (a new cluster has no leader, so no member is
 * healthy, until a quorum runs) and waits until every one answers /health.
 * Returns their pids in order. `ready` is the check (default /health, which
 * is false while an alarm such as NOSPACE is active).
 * @throws FleetxError 'failed' when one exits or stays unhealthy; all given members are stopped then.
 */
export async function startEtcdMembers(specs: EtcdSpec[], timeoutMs = 20_000, ready: (clientUrl: string) => Promise<boolean> = etcdHealthy): Promise<number[]> {
  const pids = specs.map((s) => {
    mkdirSync(s.dataDir, { recursive: true, mode: 0o700 });
    return spawnDaemon('etcd', etcdArgs(s), s.logFile, { PATH: SYSTEM_PATH });
  });
  const until = Date.now() + timeoutMs;
  for (;;) {
    const dead = specs.find((s, i) => pids[i] === undefined || !isAlive(pids[i]!));
    if (dead) {
      await Promise.all(specs.map((s) => stopEtcd(s.dataDir)));
      // the log's last lines in the message: a test's sandbox, and its log, are gone by the time anyone reads it
      throw failedError(`sandbox etcd ${dead.name ?? ETCD_NAME} exited at start${logTail(dead.logFile)}`, `see ${dead.logFile}`);
    }
    const healthy = await Promise.all(specs.map((s) => ready(s.clientUrl)));
    if (healthy.every(Boolean)) return pids as number[];
    if (Date.now() >= until) {
      await Promise.all(specs.map((s) => stopEtcd(s.dataDir)));
      const sick = specs.filter((_, i) => !healthy[i]);
      throw failedError(
        `sandbox etcd not healthy within ${timeoutMs} ms: ${sick.map((s) => s.clientUrl).join(', ')}`,
        `see ${sick.map((s) => s.logFile).join(', ')}`,
      );
    }
    await sleep(100);
  }
}

/** Stops every etcd of this data dir: SIGTERM, then SIGKILL. Nothing running is fine. */
export async function stopEtcd(dataDir: string): Promise<void> {
  await terminate(etcdPids(dataDir));
}

/** The last lines of a log file, indented, for an error message; empty when it cannot be read. */
function logTail(file: string, lines = 6): string {
  try {
    const tail = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines);
    return tail.length > 0 && tail[0] !== '' ? `; its log ends:\n  ${tail.map((l) => l.slice(0, 300)).join('\n  ')}` : '';
  } catch {
    return '';
  }
}
