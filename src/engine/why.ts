/**
 * `fleetx why UNIT`, answered from the engine's own pass input: one
 * snapshot of the same five prefixes a leader pass reads, the same X-Fleet
 * parsing and `scheduleInputOf`, then the pure `explain()` of the scheduler,
 * so the explanation cannot drift from what the leader decides. It writes
 * nothing and needs no leadership.
 *
 * Errors: what `convert` makes of etcd3's errors (the registry's
 * toFleetxError), by default FleetxError 'unavailable'.
 */
import type { Etcd3 } from 'etcd3';
import type { FleetxError } from '../errors/errors.js';
import type { Keyspace } from '../registry/keys.js';
import type { UnitRecord, UnschedulableRecord } from '../registry/records.js';
import { explain } from '../scheduler/explain.js';
import type { Explanation } from '../scheduler/types.js';
import { parseXFleet } from '../unit/xfleet.js';
import { XFleetCache } from './bodies.js';
import { scheduleInputOf } from './plan.js';
import { EngineStore } from './store.js';
import type { LiveMachine } from './view.js';
import { decodeView } from './view.js';

export interface WhyAnswer {
  unit: UnitRecord;
  /** machines whose schedule keys name the unit now */
  scheduledOn: string[];
  /** what the leader recorded when it could not place the unit */
  unschedulable?: UnschedulableRecord;
  /** the scheduler's verdict on the current state, machine by machine (absent when the unit's options cannot be read) */
  explanation?: Explanation;
  /** why the unit's X-Fleet options cannot be read (missing body, bad section) */
  unreadable?: string;
  machines: LiveMachine[];
}

/** undefined when no unit has that name. */
export async function whyUnit(client: Etcd3, keys: Keyspace, name: string, convert?: (e: unknown) => FleetxError): Promise<WhyAnswer | undefined> {
  const store = new EngineStore(client, keys, undefined, convert);
  const { view } = decodeView(keys, await store.readView());
  const unit = view.units.find((u) => u.name === name);
  if (unit === undefined) return undefined;
  const active = view.units.filter((u) => u.targetState !== 'inactive');
  const cache = new XFleetCache(parseXFleet);
  for (const [hash, text] of await store.readBodies(undefined, cache.missing(active))) cache.addBody(hash, text);
  const xfleet = cache.lookup(active);
  const { input } = scheduleInputOf(view, xfleet);
  const options = xfleet.get(name);
  const unreadable = unit.targetState === 'inactive' ? undefined : options === undefined ? `body ${unit.hash} of the unit is missing` : 'error' in options ? options.error : undefined;
  const unschedulable = view.unschedulable.find((u) => u.name === name);
  return {
    unit,
    scheduledOn: view.schedules.filter((s) => s.record.name === name).map((s) => s.machine),
    ...(unschedulable !== undefined ? { unschedulable } : {}),
    ...(unreadable !== undefined ? { unreadable } : unit.targetState !== 'inactive' ? { explanation: explain(input, name) } : {}),
    machines: view.machines,
  };
}
