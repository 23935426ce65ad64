/**
 * The pure core of the presence syncer: from what etcd says (health, holds,
 * machines) and what the driver last reported, compute for every instance
 * whether it belongs in the load balancer, with a reason.
 *
 * An instance is IN when it is not held by a rollout, its health record
 * (the one that counts, health/counts.ts) says healthy, and the machine that reported it is still registered.
 * Everything else is OUT. The instances considered are the union of units
 * with a health record, held units and units the driver reported as not out
 * (so an instance that vanished from etcd is still taken out of the LB, and
 * then forgotten, its status deleted). Output is
 * sorted by unit name; no clock, no I/O.
 */
import type { HealthRecord } from '../health/types.js';
import type { MachineRecord } from '../registry/records.js';
import { healthThatCounts } from '../health/counts.js';
import { isInstanceOf } from '../unit/name.js';
import type { Desired, Observed, PresenceHold } from './types.js';

export interface DecideInput {
  /** the service's template, e.g. app@.service; other units are ignored */
  template: string;
  /** PresenceConfig.port: where the LB sends traffic on the instance's machine */
  port: number;
  health: readonly HealthRecord[];
  holds: readonly PresenceHold[];
  machines: readonly MachineRecord[];
  /** what the driver reported last time (empty on the first pass) */
  observed: readonly Observed[];
  /**
   * Keep in the instances the LB has in whose health record or machine
   * vanished, when no instance would be left in otherwise (see
   * everyRecordVanished). The syncer sets it for at most 2 x TTL.
   */
  keepVanished?: boolean;
}

export function decide(input: DecideInput): Desired[] {
  const mine = (u: string) => isInstanceOf(input.template, u);
  const machines = new Map(input.machines.map((m) => [m.id, m]));
  const live = new Set(machines.keys());
  const holds = new Map<string, PresenceHold>();
  for (const h of input.holds) if (mine(h.unit)) holds.set(h.unit, h);
  const health = new Map<string, HealthRecord[]>();
  for (const h of input.health) {
    if (!mine(h.unit)) continue;
    const list = health.get(h.unit) ?? [];
    list.push(h);
    health.set(h.unit, list);
  }
  const lastAddress = new Map<string, string>();
  for (const o of input.observed) if (o.address !== undefined) lastAddress.set(o.unit, o.address);

  // an instance the driver has out and nobody reports any more is done with
  const lingering = input.observed.filter((o) => o.state !== 'out' && mine(o.unit)).map((o) => o.unit);
  const wasIn = new Set(input.observed.filter((o) => o.state === 'in' && mine(o.unit)).map((o) => o.unit));
  const units = new Set<string>([...health.keys(), ...holds.keys(), ...lingering]);
  return [...units].sort(cmp).map((unit): Desired => {
    const record = healthThatCounts(health.get(unit) ?? [], live);
    const machine = record ? machines.get(record.machine) : undefined;
    const address = machine?.ip ?? lastAddress.get(unit);
    const out = (reason: string): Desired => ({ unit, ...(address !== undefined ? { address } : {}), port: input.port, want: 'out', reason });
    const hold = holds.get(unit);
    if (hold) return out(`held out by rollout ${hold.rollout}`);
    const keep = input.keepVanished === true && wasIn.has(unit) && address !== undefined;
    const kept = (why: string): Desired => ({ unit, address: address!, port: input.port, want: 'in', reason: `${why}; kept in: every record vanished at once (an etcd outage expires every lease together)` });
    if (!record) return keep ? kept('no health record') : out('no health record (not running, or its machine is gone)');
    if (!machine) return keep ? kept(`machine ${record.machine} is gone`) : out(`machine ${record.machine} is gone`);
    if (record.status !== 'healthy') return out(`health is ${record.status} on ${record.machine}`);
    return { unit, address: machine.ip, port: input.port, want: 'in', reason: `healthy on ${record.machine}` };
  });
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Pure: the LB had instances in, and this decision takes every one out only
 * because health records or machines vanished (none unhealthy, none held).
 * That is what an etcd outage longer than the lease TTL looks like: every
 * agent's lease expires together, the agents re-register a moment later.
 * Emptying the LB then failed requests (503) though every instance served
 * (found by the fault matrix, all etcd members frozen 30 s). A host that
 * really died is still taken out when others stay in, and HAProxy's own
 * checks take out a backend that does not answer.
 *
 * Only instances the LB already has in count as left in: one a rollout
 * puts back at that moment is not serving yet (HAProxy waits for its first
 * check), so taking the others out left no backend for a moment (503s,
 * found by the fault matrix: quorum lost 30 s mid rolling-restart).
 */
export function everyRecordVanished(desired: readonly Desired[], observed: readonly Observed[]): boolean {
  const wasIn = new Set(observed.filter((o) => o.state === 'in').map((o) => o.unit));
  if (wasIn.size === 0 || desired.some((d) => d.want === 'in' && wasIn.has(d.unit))) return false;
  const leaving = desired.filter((d) => wasIn.has(d.unit));
  return leaving.length > 0 && leaving.every((d) => /^(no health record|machine \S+ is gone)/.test(d.reason));
}
