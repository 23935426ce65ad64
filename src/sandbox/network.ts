/**
 * The sandbox's test network: a Linux bridge with no uplink. Hosts join it
 * through nspawn's --network-bridge; the machine talks to them (and they to
 * the sandbox etcd) through the bridge's own address. Both calls are
 * idempotent.
 */
import { createHash } from 'node:crypto';
import { conflictError, invalidError } from '../errors/errors.js';
import { run, runOk } from './run.js';

interface IpAddrInfo {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

/** Pure: dotted quad to a 32-bit number. */
export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw invalidError(`not an IPv4 address: ${JSON.stringify(ip)}`);
  }
  return parts.reduce((n, p) => n * 256 + p, 0);
}

/** Pure: parses `a.b.c.d/len`. */
export function parseCidr(cidr: string): { ip: string; prefix: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr);
  if (!m || Number(m[2]) > 32) throw invalidError(`not an IPv4 CIDR: ${JSON.stringify(cidr)}`, 'e.g. 10.213.0.1/24');
  ipv4ToInt(m[1]!);
  return { ip: m[1]!, prefix: Number(m[2]) };
}

/** Pure: whether two CIDRs share addresses. */
export function cidrsOverlap(a: string, b: string): boolean {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  const prefix = Math.min(pa.prefix, pb.prefix);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return ((ipv4ToInt(pa.ip) & mask) >>> 0) === ((ipv4ToInt(pb.ip) & mask) >>> 0);
}

async function addresses(): Promise<IpAddrInfo[]> {
  const r = await runOk('ip', ['-j', 'addr', 'show']);
  return JSON.parse(r.stdout) as IpAddrInfo[];
}

export async function linkExists(name: string): Promise<boolean> {
  return (await run('ip', ['link', 'show', 'dev', name])).code === 0;
}

/**
 * Creates bridge `name` with address `cidr` (e.g. 10.213.0.1/24) and sets it
 * up. Already there with that address: nothing to do.
 * @throws FleetxError 'conflict' when another interface already uses an
 *         overlapping range (the sandbox must not shadow a real network).
 */
export async function createBridge(name: string, cidr: string): Promise<void> {
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name)) throw invalidError(`bad bridge name ${JSON.stringify(name)}`, 'at most 15 characters [A-Za-z0-9_.-]');
  const { ip } = parseCidr(cidr);
  for (const link of await addresses()) {
    if (link.ifname === name) continue;
    for (const a of link.addr_info ?? []) {
      if (a.family === 'inet' && cidrsOverlap(`${a.local}/${a.prefixlen}`, cidr)) {
        throw conflictError(
          `${cidr} overlaps ${a.local}/${a.prefixlen} on ${link.ifname}`,
          'choose another sandbox subnet',
        );
      }
    }
  }
  // A bridge without an address of its own takes the lowest MAC of its
  // ports and changes it when that port goes (a host powered off): every
  // host's ARP entry for the bridge (where etcd listens) then points
  // nowhere until it is resolved again, long enough for leases to lapse.
  // A fixed MAC, derived from the name, never changes.
  if (!(await linkExists(name))) await runOk('ip', ['link', 'add', name, 'address', bridgeMac(name), 'type', 'bridge']);
  else await runOk('ip', ['link', 'set', name, 'address', bridgeMac(name)]);
  const mine = (await addresses()).find((l) => l.ifname === name)?.addr_info ?? [];
  if (!mine.some((a) => a.family === 'inet' && a.local === ip)) await runOk('ip', ['addr', 'add', cidr, 'dev', name]);
  await runOk('ip', ['link', 'set', name, 'up']);
}

/** Pure: a locally administered unicast MAC derived from the bridge name. */
export function bridgeMac(name: string): string {
  const h = createHash('sha256').update(`fleetx bridge ${name}`).digest();
  const bytes = [0x02, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Deletes the bridge; absent is fine. */
export async function deleteBridge(name: string): Promise<void> {
  if (!(await linkExists(name))) return;
  const r = await run('ip', ['link', 'del', name]);
  if (r.code !== 0 && (await linkExists(name))) await runOk('ip', ['link', 'del', name]);
}
