/**
 * The sandbox's image registry: Debian's `docker-registry` (distribution
 * 2.8) as a detached process on the machine, bound to the bridge address
 * only (like etcd), storage in STATEDIR/registry. Every host pulls from it.
 *
 * Plain HTTP, declared insecure for this one address in each host's
 * registries.conf (the runtime values in seed.ts), rather than TLS with a sandbox CA:
 * the bridge has no uplink, so only this machine and the sandbox's hosts
 * can reach it, and there is nothing secret in it. TLS would add a CA to
 * every host's trust store and to every client that pushes, for no
 * protection the bridge does not already give. A production registry uses
 * TLS; nothing in the units depends on this choice.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failedError } from '../errors/errors.js';
import { findProcs, isAlive, sleep, spawnDaemon, terminate } from './proc.js';
import { SYSTEM_PATH } from './run.js';

export const REGISTRY_PORT = 5000;
const BINARY = '/usr/bin/docker-registry';

export interface RegistrySpec {
  /** STATEDIR/registry: config.yml and the image store */
  dir: string;
  logFile: string;
  /** host:port it listens on, e.g. 10.213.0.1:5000 */
  address: string;
}

export const registryPaths = (dir: string) => ({ config: join(dir, 'config.yml'), store: join(dir, 'store') });

/** Pure: distribution's config for the sandbox. */
export function registryConfig(s: RegistrySpec): string {
  return [
    '# fleetx sandbox registry (src/sandbox/registry.ts): plain HTTP on the bridge address only',
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(registryPaths(s.dir).store)}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${JSON.stringify(s.address)}`,
    '',
  ].join('\n');
}

/** Live registries serving this config. */
export function registryPids(dir: string): number[] {
  return findProcs(registryPaths(dir).config, 'docker-registry').map((p) => p.pid);
}

// 5 s, like etcdHealthy: slow under load is not down.
export async function registryAnswers(address: string, timeoutMs = 5_000): Promise<boolean> {
  try {
    const res = await fetch(`http://${address}/v2/`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Starts the registry unless one serves this dir and answers; waits until /v2/ answers.
 * @throws FleetxError 'failed' when it exits or does not answer (see its log).
 */
export async function ensureRegistry(s: RegistrySpec, timeoutMs = 15_000): Promise<number> {
  const running = registryPids(s.dir);
  if (running.length > 0 && (await registryAnswers(s.address))) return running[0]!;
  await stopRegistry(s.dir);
  mkdirSync(registryPaths(s.dir).store, { recursive: true, mode: 0o755 });
  writeFileSync(registryPaths(s.dir).config, registryConfig(s));
  const pid = spawnDaemon(BINARY, ['serve', registryPaths(s.dir).config], s.logFile, { PATH: SYSTEM_PATH });
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (pid === undefined || !isAlive(pid)) throw failedError('the sandbox registry exited at start', `see ${s.logFile}; is docker-registry installed (scripts/setup.sh)?`);
    if (await registryAnswers(s.address)) return pid;
    if (Date.now() >= until) {
      await stopRegistry(s.dir);
      throw failedError(`the sandbox registry does not answer on http://${s.address}/v2/ within ${timeoutMs} ms`, `see ${s.logFile}`);
    }
    await sleep(100);
  }
}

/** SIGTERM, then SIGKILL. Nothing running is fine. */
export async function stopRegistry(dir: string): Promise<void> {
  await terminate(registryPids(dir));
}
