/**
 * The sandbox's one etcd: a detached process on the machine (its own process
 * group, output in a log file) so it outlives the CLI that started it. It
 * listens only on the bridge address, which the machine reaches directly and
 * the hosts reach over the bridge; nothing binds the machine's own addresses.
 */
import { mkdirSync } from 'node:fs';
import { failedError } from '../errors/errors.js';
import { findProcs, isAlive, procArgv, sleep, spawnDaemon, terminate } from './proc.js';
import { SYSTEM_PATH } from './run.js';

export interface EtcdSpec {
  dataDir: string;
  logFile: string;
  /** e.g. http://10.213.0.1:2379 */
  clientUrl: string;
  /** e.g. http://10.213.0.1:2380 */
  peerUrl: string;
}

const NAME = 'fleetx-sandbox';

/** Pure: etcd's argv. */
export function etcdArgs(s: EtcdSpec): string[] {
  return [
    `--name=${NAME}`,
    `--data-dir=${s.dataDir}`,
    `--listen-client-urls=${s.clientUrl}`,
    `--advertise-client-urls=${s.clientUrl}`,
    `--listen-peer-urls=${s.peerUrl}`,
    `--initial-advertise-peer-urls=${s.peerUrl}`,
    `--initial-cluster=${NAME}=${s.peerUrl}`,
    '--logger=zap',
    '--log-outputs=stderr',
  ];
}

/** Live etcd processes using this data dir. */
export function etcdPids(dataDir: string): number[] {
  return findProcs(dataDir, 'etcd').map((p) => p.pid);
}

/** Whether `pid` is an etcd of this data dir (a recorded pid may have been reused). */
export function isOurEtcd(pid: number | undefined, dataDir: string): boolean {
  return pid !== undefined && (procArgv(pid)?.includes(`--data-dir=${dataDir}`) ?? false);
}

export async function etcdHealthy(clientUrl: string, timeoutMs = 1_000): Promise<boolean> {
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
  mkdirSync(s.dataDir, { recursive: true, mode: 0o700 });
  const pid = spawnDaemon('etcd', etcdArgs(s), s.logFile, { PATH: SYSTEM_PATH });
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (pid === undefined || !isAlive(pid)) throw failedError(`sandbox etcd exited at start`, `see ${s.logFile}`);
    if (await etcdHealthy(s.clientUrl)) return pid;
    if (Date.now() >= until) {
      await stopEtcd(s.dataDir);
      throw failedError(`sandbox etcd not healthy at ${s.clientUrl} within ${timeoutMs} ms`, `see ${s.logFile}`);
    }
    await sleep(100);
  }
}

/** Stops every etcd of this data dir: SIGTERM, then SIGKILL. Nothing running is fine. */
export async function stopEtcd(dataDir: string): Promise<void> {
  await terminate(etcdPids(dataDir));
}
