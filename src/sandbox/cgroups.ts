/**
 * A cgroup of its own for each host.
 *
 * The machine runs no systemd, so nspawn (with --keep-unit) puts the
 * container under "<caller's cgroup>/payload" in the name=systemd and
 * unified hierarchies. Started from the root cgroup, every host landed in
 * the same /payload: their systemds created and pruned each other's
 * system.slice/*.service cgroups (units failing "at step CGROUP", and
 * stopping a unit on one host could signal the same unit on another). So
 * nspawn is started inside /fleetx-sandbox/<key>, which also lists every
 * process a host left behind.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

const HIERARCHIES = ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified'];
const ROOT = 'fleetx-sandbox';

/** Pure: a cgroup name unique to this host's state dir (two sandboxes may both have a "sandbox-1"). */
export function cgroupKey(name: string, stateDir: string): string {
  return `${name}-${createHash('sha256').update(stateDir).digest('hex').slice(0, 10)}`;
}

/** The host's cgroup directories in the hierarchies this machine has mounted. */
export function hostCgroups(key: string): string[] {
  return HIERARCHIES.filter((h) => existsSync(join(h, 'cgroup.procs'))).map((h) => join(h, ROOT, key));
}

export function createHostCgroups(key: string): string[] {
  const dirs = hostCgroups(key);
  for (const d of dirs) mkdirSync(d, { recursive: true });
  return dirs;
}

/** Every process in the host's cgroups (nspawn and all of the container). */
export function cgroupPids(key: string): number[] {
  const pids = new Set<number>();
  const walk = (dir: string) => {
    try {
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line) pids.add(Number(line));
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    } catch {
      // Gone meanwhile.
    }
  };
  for (const d of hostCgroups(key)) walk(d);
  return [...pids];
}

/** Removes the host's cgroup trees, deepest first (cgroups go with rmdir only). Busy ones stay. */
export function removeHostCgroups(key: string): void {
  const rm = (dir: string) => {
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(join(dir, e.name));
      rmdirSync(dir);
    } catch {
      // Absent, or still holds a process.
    }
  };
  for (const d of hostCgroups(key)) rm(d);
  // The shared parent too, once no host uses it.
  for (const h of HIERARCHIES) {
    try {
      rmdirSync(join(h, ROOT));
    } catch {
      // Absent or still in use.
    }
  }
}
