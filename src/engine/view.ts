/**
 * What the leader reads in one pass, decoded from raw etcd key-values into
 * records. Pure: takes strings, returns records plus a list of problems
 * (undecodable keys are skipped and reported, never fatal: one bad record
 * must not stop scheduling for everyone).
 */
import { metadataOf, withOverrides } from '../registry/metadata.js';
import type { Keyspace } from '../registry/keys.js';
import type { MachineRecord, ScheduleRecord, TargetState, UnitRecord, UnschedulableRecord } from '../registry/records.js';
import { TARGET_STATES } from '../registry/records.js';

export interface RawKV {
  key: string;
  value: string;
  /** etcd revision of the key's last change (decimal), when known: writes are guarded on units' */
  modRevision?: string;
}

/** The five prefixes one pass reads, in one consistent snapshot. */
export interface RawView {
  revision: string;
  units: RawKV[];
  machines: RawKV[];
  machineMetas: RawKV[];
  schedules: RawKV[];
  unschedulable: RawKV[];
}

export interface LiveMachine {
  id: string;
  metadata: Record<string, string>;
  /** for people (fleetx why); the scheduler does not use it */
  ip?: string;
}

export interface Placement {
  machine: string;
  record: ScheduleRecord;
}

export interface ClusterView {
  revision: string;
  units: UnitRecord[];
  /** machines whose lease-bound key exists, with set-metadata merged over their own */
  machines: LiveMachine[];
  schedules: Placement[];
  unschedulable: UnschedulableRecord[];
}

export function decodeView(keys: Keyspace, raw: RawView): { view: ClusterView; problems: string[] } {
  const problems: string[] = [];
  const json = (kv: RawKV): unknown => {
    try {
      return JSON.parse(kv.value);
    } catch {
      problems.push(`${kv.key}: not JSON`);
      return undefined;
    }
  };

  const units: UnitRecord[] = [];
  for (const kv of raw.units) {
    const v = json(kv);
    if (isUnitLike(v)) units.push(v as UnitRecord);
    else if (v !== undefined) problems.push(`${kv.key}: not a unit record`);
  }

  const metas = new Map<string, Record<string, string>>();
  for (const kv of raw.machineMetas) {
    const v = json(kv);
    if (v !== undefined) metas.set(kv.key.slice(keys.machineMetas().length), metadataOf(v));
  }
  const machines: LiveMachine[] = [];
  for (const kv of raw.machines) {
    const id = kv.key.slice(keys.machines().length);
    const v = json(kv) as Partial<MachineRecord> | undefined;
    if (id === '' || id.includes('/')) continue;
    const own = v && typeof v === 'object' ? metadataOf(v.metadata ?? {}) : {};
    machines.push({ id, metadata: withOverrides(own, metas.get(id)), ...(typeof v?.ip === 'string' ? { ip: v.ip } : {}) });
  }

  const schedules: Placement[] = [];
  for (const kv of raw.schedules) {
    const rest = kv.key.slice(keys.schedules().length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) {
      problems.push(`${kv.key}: not a schedule key`);
      continue;
    }
    const machine = rest.slice(0, slash);
    const name = rest.slice(slash + 1);
    const v = json(kv);
    // A key whose record does not decode is still a placement: keep it so the
    // planner overwrites or deletes it instead of ignoring it forever.
    const record: ScheduleRecord = isUnitLike(v) ? { name, hash: v.hash, targetState: v.targetState } : { name, hash: '', targetState: 'inactive' };
    schedules.push({ machine, record });
  }

  const unschedulable: UnschedulableRecord[] = [];
  for (const kv of raw.unschedulable) {
    const v = json(kv) as Partial<UnschedulableRecord> | undefined;
    const name = kv.key.slice(keys.unschedulables().length);
    unschedulable.push({
      name,
      reason: typeof v?.reason === 'string' ? v.reason : '',
      machines: v?.machines && typeof v.machines === 'object' ? metadataOf(v.machines) : {},
      updatedAt: typeof v?.updatedAt === 'string' ? v.updatedAt : '',
    });
  }

  byName(units);
  machines.sort((a, b) => cmp(a.id, b.id));
  schedules.sort((a, b) => cmp(a.machine, b.machine) || cmp(a.record.name, b.record.name));
  byName(unschedulable);
  return { view: { revision: raw.revision, units, machines, schedules, unschedulable }, problems };
}

function isUnitLike(v: unknown): v is { name: string; hash: string; targetState: TargetState } {
  if (v === null || typeof v !== 'object') return false;
  const r = v as Record<string, unknown>;
  return typeof r.name === 'string' && typeof r.hash === 'string' && TARGET_STATES.includes(r.targetState as TargetState);
}

function byName<T extends { name: string }>(xs: T[]): void {
  xs.sort((a, b) => cmp(a.name, b.name));
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
