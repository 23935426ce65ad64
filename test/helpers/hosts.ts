/**
 * Helpers for tests that boot sandbox hosts: unique names so a stale run
 * never collides with this one, and a check that nothing was left behind.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cgroupKey, hostCgroups } from '../../src/sandbox/cgroups.js';
import { mountsUnder } from '../../src/sandbox/mounts.js';
import { linkExists } from '../../src/sandbox/network.js';
import { listProcs } from '../../src/sandbox/proc.js';

/** A bridge name (<= 15 chars) and a /24 prefix in 10.213.0.0/16 that are unique enough per run. */
export function testNet(): { bridge: string; prefix: string } {
  const tag = randomBytes(3).toString('hex');
  // 10.213.0.x is the default sandbox's; tests take 100..249.
  return { bridge: `fxt${tag}`, prefix: `10.213.${100 + randomBytes(1)[0]! % 150}` };
}

/** A fresh state dir path (not created) under /var/tmp, outside the shared /tmp. */
export function testStateDir(tag: string): string {
  return `/var/tmp/fleetx-test-${tag}-${randomBytes(4).toString('hex')}`;
}

/** What a test left behind: mounts, processes, the bridge, the state dir. Empty when clean. */
export async function leftovers(stateDir: string, bridge?: string, hosts: Array<{ name: string; dir: string }> = []): Promise<string[]> {
  const found: string[] = [];
  for (const { name, dir } of hosts) {
    // nspawn's propagation dir, left behind when nspawn is killed and nobody cleans up.
    if (existsSync(`/run/systemd/nspawn/propagate/${name}`)) found.push(`nspawn dir of ${name}`);
    for (const cg of hostCgroups(cgroupKey(name, dir))) if (existsSync(cg)) found.push(`cgroup ${cg}`);
    if (name.length <= 12 && (await linkExists(`vb-${name}`))) found.push(`link vb-${name}`);
  }
  for (const m of mountsUnder(stateDir)) found.push(`mount ${m}`);
  for (const p of listProcs()) {
    if (p.argv.some((a) => a.includes(stateDir))) found.push(`process ${p.pid} ${p.argv.join(' ')}`);
  }
  if (bridge !== undefined && (await linkExists(bridge))) found.push(`link ${bridge}`);
  if (existsSync(stateDir)) found.push(`dir ${stateDir}`);
  return found;
}
