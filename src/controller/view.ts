/**
 * From what one pass read out of etcd to the RolloutView nextSteps() takes
 * (pure). A record that is not valid JSON is skipped and reported as a
 * problem: one corrupt key must not stop every rollout.
 */
import { healthThatCounts } from '../health/counts.js';
import type { HealthRecord } from '../health/types.js';
import type { PresenceStatusRecord } from '../presence/types.js';
import { lastSegment } from '../registry/keys.js';
import type { UnitRecord, UnitStateRecord } from '../registry/records.js';
import type { InstanceView, RolloutControl, RolloutRecord, RolloutView } from '../rollout/types.js';
import type { RevisionRecord, ServiceRecord } from '../service/types.js';

/** A key-value as read, with the mod revision writes compare against. */
export interface RawKV {
  key: string;
  value: string;
  modRevision: string;
}

export interface Versioned<T> {
  value: T;
  modRevision: string;
}

/** One rollout lock and its control command. */
export interface RolloutEntry {
  service: string;
  rollout: Versioned<RolloutRecord>;
  control?: RolloutControl;
}

/** What the second read of a pass returns for one rollout. */
export interface RolloutDetails {
  /** instance unit records, by name (only names in the rollout record) */
  units: Map<string, Versioned<UnitRecord>>;
  template?: Versioned<UnitRecord>;
  statuses: Map<string, PresenceStatusRecord>;
  holds: Set<string>;
  revision?: Versioned<RevisionRecord>;
  /** the revision a failed rollout goes back to (its values become the service's again) */
  revertRevision?: Versioned<RevisionRecord>;
  service?: Versioned<ServiceRecord>;
}

/** The second read of a pass for one rollout, undecoded. */
export interface RawDetails {
  units: RawKV[];
  template?: RawKV;
  statuses: RawKV[];
  holds: RawKV[];
  revision?: RawKV;
  revertRevision?: RawKV;
  service?: RawKV;
}

/** States and health of every unit, by unit name, the registered machines and every schedule key: shared by all rollouts of a pass. */
export interface Reports {
  states: Map<string, UnitStateRecord[]>;
  health: Map<string, HealthRecord[]>;
  machines: Set<string>;
  placements: Map<string, Placement[]>;
}

/** One schedule key of a unit ({p}/schedule/{machine}/{unit}), as read. */
export interface Placement {
  machine: string;
  key: string;
  modRevision: string;
  /** the body the record asks the machine to pull ahead (ScheduleRecord.next) */
  next?: string;
}

/** The shared ranges of a pass's detail read, undecoded. */
export interface RawReports {
  states: RawKV[];
  healths: RawKV[];
  machines: RawKV[];
  schedules: RawKV[];
}

export class Decoder {
  readonly problems: string[] = [];

  json<T>(kv: RawKV): T | undefined {
    try {
      return JSON.parse(kv.value) as T;
    } catch {
      this.problems.push(`corrupt record at ${kv.key} (not JSON); ignored`);
      return undefined;
    }
  }

  versioned<T>(kv: RawKV | undefined): Versioned<T> | undefined {
    if (kv === undefined) return undefined;
    const value = this.json<T>(kv);
    return value === undefined ? undefined : { value, modRevision: kv.modRevision };
  }

  /** Rollout records and control commands, keyed by service (the last key segment). */
  rollouts(rollouts: RawKV[], controls: RawKV[]): RolloutEntry[] {
    const byService = new Map<string, RolloutControl>();
    for (const kv of controls) {
      const c = this.json<RolloutControl>(kv);
      if (c !== undefined) byService.set(lastSegment(kv.key), c);
    }
    const out: RolloutEntry[] = [];
    for (const kv of rollouts) {
      const rollout = this.versioned<RolloutRecord>(kv);
      if (rollout === undefined) continue;
      const service = lastSegment(kv.key);
      const control = byService.get(service);
      out.push({ service, rollout, ...(control !== undefined ? { control } : {}) });
    }
    return out;
  }

  details(raw: RawDetails, holdsPrefix: string): RolloutDetails {
    const units = new Map<string, Versioned<UnitRecord>>();
    for (const kv of raw.units) {
      const v = this.versioned<UnitRecord>(kv);
      if (v !== undefined) units.set(v.value.name, v);
    }
    const statuses = new Map<string, PresenceStatusRecord>();
    for (const kv of raw.statuses) {
      const s = this.json<PresenceStatusRecord>(kv);
      if (s !== undefined) statuses.set(s.unit, s);
    }
    const template = this.versioned<UnitRecord>(raw.template);
    const revision = this.versioned<RevisionRecord>(raw.revision);
    const revertRevision = this.versioned<RevisionRecord>(raw.revertRevision);
    const service = this.versioned<ServiceRecord>(raw.service);
    return {
      units,
      statuses,
      holds: new Set(raw.holds.map((kv) => kv.key.slice(holdsPrefix.length))),
      ...(template !== undefined ? { template } : {}),
      ...(revision !== undefined ? { revision } : {}),
      ...(revertRevision !== undefined ? { revertRevision } : {}),
      ...(service !== undefined ? { service } : {}),
    };
  }

  reports(raw: RawReports, schedulesPrefix: string): Reports {
    const { states, healths, machines, schedules } = raw;
    const out: Reports = { states: new Map(), health: new Map(), machines: new Set(machines.map((kv) => lastSegment(kv.key))), placements: new Map() };
    for (const kv of schedules) {
      // {machine}/{unit}: the key, and the pull asked for (the controller overwrites the rest)
      const rest = kv.key.slice(schedulesPrefix.length);
      const slash = rest.indexOf('/');
      if (slash <= 0 || slash === rest.length - 1) continue;
      const next = nextOf(kv.value);
      push(out.placements, rest.slice(slash + 1), { machine: rest.slice(0, slash), key: kv.key, modRevision: kv.modRevision, ...(next !== undefined ? { next } : {}) });
    }
    for (const kv of states) {
      const s = this.json<UnitStateRecord>(kv);
      if (s !== undefined) push(out.states, s.name, s);
    }
    for (const kv of healths) {
      const h = this.json<HealthRecord>(kv);
      if (h !== undefined) push(out.health, h.unit, h);
    }
    return out;
  }
}

/** The view of one rollout: every instance the record names, in name order. */
export function buildView(entry: RolloutEntry, details: RolloutDetails, reports: Reports, now: number, deadlineFloor?: number): RolloutView {
  const record = entry.rollout.value;
  const instances: InstanceView[] = Object.keys(record.instances)
    .sort()
    .map((unit) => {
      const states = reports.states.get(unit) ?? [];
      const unitRecord = details.units.get(unit)?.value;
      const health = healthThatCounts(reports.health.get(unit) ?? [], reports.machines);
      const presence = details.statuses.get(unit);
      const placed = reports.placements.get(unit) ?? [];
      // asked only when every machine it is placed on was asked for the same body
      const pullAsked = placed.length > 0 && placed.every((p) => p.next === placed[0]!.next) ? placed[0]!.next : undefined;
      return {
        unit,
        ...(unitRecord !== undefined ? { record: unitRecord } : {}),
        states,
        ...(health !== undefined ? { health } : {}),
        ...(presence !== undefined ? { presence } : {}),
        held: details.holds.has(unit),
        ...(pullAsked !== undefined ? { pullAsked } : {}),
      };
    });
  return { rollout: record, instances, ...(entry.control !== undefined ? { control: entry.control } : {}), now, ...(deadlineFloor !== undefined ? { deadlineFloor } : {}) };
}

/**
 * The key prefix all instance names of a rollout share, so their unit
 * records are one range read ("app@" for app@1.service … app@9.service).
 */
export function commonPrefix(names: string[]): string {
  if (names.length === 0) return '';
  let p = names[0]!;
  for (const n of names) {
    let i = 0;
    while (i < p.length && i < n.length && p[i] === n[i]) i++;
    p = p.slice(0, i);
  }
  return p;
}

/** ScheduleRecord.next of a schedule value; a value that is not JSON says nothing (the engine rewrites it). */
function nextOf(value: string): string | undefined {
  try {
    const next = (JSON.parse(value) as { next?: unknown }).next;
    return typeof next === 'string' && next !== '' ? next : undefined;
  } catch {
    return undefined;
  }
}

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const xs = m.get(k);
  if (xs === undefined) m.set(k, [v]);
  else xs.push(v);
}
