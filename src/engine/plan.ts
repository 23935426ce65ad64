/**
 * The decide step of a leader pass, pure: from what was read (ClusterView and
 * each unit's X-Fleet options) to a list of etcd operations, each a plain
 * object with a named reason. The loop (engine.ts) only reads, calls this and
 * writes the result with fenced transactions.
 *
 * Beyond the scheduler's placement decisions this
 * - deletes schedule keys of destroyed or inactive units and of machines that
 *   are gone (so a machine coming back finds an empty schedule), except on
 *   machines `held` (absence.ts): those keep their units, which are neither
 *   moved nor placed a second time,
 * - propagates a unit's hash and target state to the schedule keys it keeps
 *   (launched -> loaded, or a --replace that changed the body),
 * - writes an unschedulable record with per-machine reasons for a unit that
 *   fits nowhere and deletes it once the unit is placed or gone.
 * It only emits operations that change something, so a quiet cluster costs
 * no writes.
 */
import type { ScheduleRecord, UnitRecord, UnschedulableRecord } from '../registry/records.js';
import type { ScheduleInput, ScheduleResult } from '../scheduler/types.js';
import type { XFleetOptions } from '../unit/types.js';
import { cmp, type ClusterView } from './view.js';

export type EngineOp =
  | { type: 'put-schedule'; machine: string; record: ScheduleRecord; reason: string }
  | { type: 'delete-schedule'; machine: string; name: string; reason: string }
  | { type: 'put-unschedulable'; record: UnschedulableRecord; reason: string }
  | { type: 'delete-unschedulable'; name: string; reason: string };

export type ScheduleFn = (input: ScheduleInput) => ScheduleResult;

/** X-Fleet options of a unit, or why they could not be read (missing body, parse error). */
export type XFleetLookup = ReadonlyMap<string, XFleetOptions | { error: string }>;

export interface PlanInput {
  view: ClusterView;
  xfleet: XFleetLookup;
  /** ISO time stamped on unschedulable records */
  now: string;
  /** machines without a record whose units stay put (absence.ts); default none */
  held?: ReadonlySet<string>;
}

/**
 * What the scheduler is given in a pass (also what `fleetx why` explains):
 * units that are active and whose X-Fleet options could be read, the live
 * machines, and the placements that stay candidates. Alongside: schedule
 * keys that must go whatever the scheduler says, units left where they
 * are because their options cannot be read, and placements kept on `held`
 * machines (left out of scheduling; a global unit still goes to every live
 * machine).
 */
export function scheduleInputOf(view: ClusterView, xfleet: XFleetLookup, held: ReadonlySet<string> = new Set()): {
  input: ScheduleInput;
  current: CurrentPlacement[];
  kept: CurrentPlacement[];
  dropped: Array<{ machine: string; name: string; reason: string }>;
  unreadable: Set<string>;
} {
  const units = new Map(view.units.map((u) => [u.name, u]));
  const live = new Set(view.machines.map((m) => m.id));
  const current: CurrentPlacement[] = [];
  const kept: CurrentPlacement[] = [];
  const dropped: Array<{ machine: string; name: string; reason: string }> = [];
  const unreadable = new Set<string>(); // units whose X-Fleet cannot be read: left where they are
  for (const { machine, record } of view.schedules) {
    const unit = units.get(record.name);
    const drop = (reason: string) => dropped.push({ machine, name: record.name, reason });
    if (unit === undefined) drop('unit was destroyed');
    else if (unit.targetState === 'inactive') drop('unit is inactive');
    else if (!live.has(machine) && held.has(machine)) kept.push({ machine, record, unit });
    else if (!live.has(machine)) drop(`machine ${machine} is gone`);
    else if (isError(xfleet.get(unit.name))) unreadable.add(unit.name);
    else current.push({ machine, record, unit });
  }
  const onHeld = new Set(kept.filter((p) => !(xfleet.get(p.unit.name) as XFleetOptions | undefined)?.global).map((p) => p.unit.name));
  const schedulable = view.units.filter((u) => u.targetState !== 'inactive' && !isError(xfleet.get(u.name)) && xfleet.has(u.name) && !onHeld.has(u.name));
  const input: ScheduleInput = {
    units: schedulable.map((u) => ({ name: u.name, targetState: u.targetState, xfleet: xfleet.get(u.name) as XFleetOptions })),
    machines: view.machines.map((m) => ({ id: m.id, metadata: m.metadata })),
    current: current.map((p) => ({ unit: p.record.name, machine: p.machine })),
  };
  return { input, current, kept, dropped, unreadable };
}

export function planPass(input: PlanInput, schedule: ScheduleFn): EngineOp[] {
  const { view, xfleet, now } = input;
  const units = new Map(view.units.map((u) => [u.name, u]));
  const ops = new OpSet();

  // 1. Schedule keys that must go whatever the scheduler says.
  const { input: scheduleInput, current, kept, dropped, unreadable } = scheduleInputOf(view, xfleet, input.held);
  for (const d of dropped) ops.deleteSchedule(d.machine, d.name, d.reason);

  // 2. Place what is schedulable.
  const result = schedule(scheduleInput);

  const currentByKey = new Map(current.map((p) => [`${p.machine}/${p.record.name}`, p]));
  const removed = new Set<string>();
  for (const d of result.unschedule) {
    ops.deleteSchedule(d.machine, d.unit, d.reason);
    removed.add(`${d.machine}/${d.unit}`);
  }
  const placed = new Set<string>();
  for (const d of result.place) {
    const unit = units.get(d.unit);
    if (unit === undefined) continue; // the scheduler only places what it was given
    placed.add(unit.name);
    const existing = currentByKey.get(`${d.machine}/${d.unit}`);
    if (existing !== undefined && sameRecord(existing.record, unit)) continue;
    ops.putSchedule(d.machine, toSchedule(unit), d.reason);
  }

  // 3. Kept placements (held machines' too) follow their unit's hash and target state.
  for (const p of [...current, ...kept]) {
    if (removed.has(`${p.machine}/${p.record.name}`)) continue;
    placed.add(p.unit.name);
    if (sameRecord(p.record, p.unit)) continue;
    const why = p.record.hash !== p.unit.hash ? 'unit body changed' : `target state is now ${p.unit.targetState}`;
    ops.putSchedule(p.machine, toSchedule(p.unit), why);
  }

  // 4. Unschedulable records: wanted ones written when they change, stale ones deleted.
  const wanted = new Map<string, UnschedulableRecord>();
  for (const u of result.unschedulable) {
    wanted.set(u.unit, { name: u.unit, reason: u.reason, machines: u.machines, updatedAt: now });
  }
  for (const u of view.units) {
    const x = xfleet.get(u.name);
    if (u.targetState === 'inactive' || unreadable.has(u.name) || placed.has(u.name)) continue;
    if (x === undefined) wanted.set(u.name, { name: u.name, reason: `body ${u.hash} of the unit is missing`, machines: {}, updatedAt: now });
    else if (isError(x)) wanted.set(u.name, { name: u.name, reason: x.error, machines: {}, updatedAt: now });
  }
  const existing = new Map(view.unschedulable.map((r) => [r.name, r]));
  for (const [name, rec] of wanted) {
    const old = existing.get(name);
    if (old !== undefined && old.reason === rec.reason && sameMap(old.machines, rec.machines)) continue;
    ops.putUnschedulable(rec, old === undefined ? 'unit cannot be placed' : 'placement problem changed');
  }
  for (const name of existing.keys()) {
    if (wanted.has(name)) continue;
    ops.deleteUnschedulable(name, !units.has(name) ? 'unit was destroyed' : placed.has(name) ? 'unit is placed' : 'unit is inactive');
  }
  return ops.sorted();
}

export interface CurrentPlacement {
  machine: string;
  record: ScheduleRecord;
  unit: UnitRecord;
}

function isError(x: XFleetOptions | { error: string } | undefined): x is { error: string } {
  return x !== undefined && 'error' in x;
}

function toSchedule(u: UnitRecord): ScheduleRecord {
  return { name: u.name, hash: u.hash, targetState: u.targetState };
}

function sameRecord(r: ScheduleRecord, u: UnitRecord): boolean {
  return r.hash === u.hash && r.targetState === u.targetState;
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

/**
 * Operations keyed by the etcd key they touch: a later put on the same key
 * replaces an earlier delete. Sorted deletes first (a move never holds a unit
 * on two machines for longer than one transaction), then by key.
 */
class OpSet {
  private readonly byKey = new Map<string, EngineOp>();

  deleteSchedule(machine: string, name: string, reason: string): void {
    this.byKey.set(`s:${machine}/${name}`, { type: 'delete-schedule', machine, name, reason });
  }
  putSchedule(machine: string, record: ScheduleRecord, reason: string): void {
    this.byKey.set(`s:${machine}/${record.name}`, { type: 'put-schedule', machine, record, reason });
  }
  putUnschedulable(record: UnschedulableRecord, reason: string): void {
    this.byKey.set(`u:${record.name}`, { type: 'put-unschedulable', record, reason });
  }
  deleteUnschedulable(name: string, reason: string): void {
    this.byKey.set(`u:${name}`, { type: 'delete-unschedulable', name, reason });
  }

  sorted(): EngineOp[] {
    const rank: Record<EngineOp['type'], number> = { 'delete-schedule': 0, 'put-schedule': 1, 'delete-unschedulable': 2, 'put-unschedulable': 3 };
    return [...this.byKey.entries()]
      .sort(([ka, a], [kb, b]) => rank[a.type] - rank[b.type] || cmp(ka, kb))
      .map(([, op]) => op);
  }
}
