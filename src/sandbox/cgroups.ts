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
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './proc.js';

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
  return [...new Set(hostCgroups(key).flatMap(cgroupPidsIn))];
}

function cgroupPidsIn(dir: string): number[] {
  const pids: number[] = [];
  const walk = (d: string) => {
    try {
      for (const line of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (line) pids.push(Number(line));
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    } catch {
      // Gone meanwhile.
    }
  };
  walk(dir);
  return pids;
}

/** rmdir a cgroup tree deepest first (cgroups go with rmdir only); false when some of it stays. */
function rmTree(dir: string): boolean {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmTree(join(dir, e.name));
    rmdirSync(dir);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * Removes the host's cgroup trees. A killed host's processes linger as
 * zombies until the machine's PID 1 reaps them (slowly, here), and a cgroup
 * holding a zombie cannot be removed: retry for a while, and sweep trees
 * that earlier calls had to leave behind (empty and over a minute old).
 */
export async function removeHostCgroups(key: string, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let left = hostCgroups(key);
  while (left.length > 0) {
    left = left.filter((d) => !rmTree(d));
    if (left.length === 0 || Date.now() >= until) break;
    await sleep(200);
  }
  for (const h of HIERARCHIES) {
    const parent = join(h, ROOT);
    let entries: string[] = [];
    try {
      entries = readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      continue;
    }
    for (const name of entries) {
      const dir = join(parent, name);
      try {
        if (Date.now() - statSync(dir).mtimeMs > 60_000 && cgroupPidsIn(dir).length === 0) rmTree(dir);
      } catch {
        // Removed meanwhile by another sandbox's cleanup (concurrent test runs).
      }
    }
    // The shared parent too, once no host uses it (plain rmdir: a host
    // being booted right now may have an empty tree there).
    try {
      rmdirSync(parent);
    } catch {
      // In use.
    }
  }
}
