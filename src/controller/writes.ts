/**
 * From a step of nextSteps() to the etcd writes that carry it out (pure).
 *
 * Every batch is guarded (by the store) by the leader fence and by the
 * rollout key's mod revision as read, so neither a deposed leader nor a
 * stale pass overwrites a newer record (e.g. the next rollout after this one
 * ended). Unit and revision records are read-modify-write: their batch also
 * compares their mod revision, so a concurrent `fleetx` command wins and the
 * step is retried on the next pass.
 *
 * A unit's stop or start (set-unit) also rewrites its schedule keys, in the
 * same transaction as the unit record and guarded by their mod revisions as
 * read: the agent sees it at once instead of after an engine pass (which
 * then finds nothing to change). The fence is the same one the engine's
 * writes compare, so only the leader writes schedule keys; a key the engine
 * moved meanwhile fails the guard and the step is retried.
 *
 * The record (or the finish) is written in the LAST batch, together with the
 * actions when they fit (one atomic transaction). When they do not fit in
 * one transaction, the earlier batches carry actions only: should a later
 * one fail, the record is unchanged and nextSteps() emits what is still
 * missing again (its actions are derived from the phases, not transitions).
 */
import type { Keyspace } from '../registry/keys.js';
import type { ScheduleRecord, UnitRecord } from '../registry/records.js';
import type { PresenceHold } from '../presence/types.js';
import type { RolloutAction, RolloutRecord, RolloutStep, RolloutView } from '../rollout/types.js';
import type { ServiceRecord } from '../service/types.js';
import type { Placement, RolloutDetails, RolloutEntry } from './view.js';

/** etcd's default --max-txn-ops is 128 (per branch); stay below it. */
export const MAX_TXN_OPS = 100;

export type WriteOp =
  | { type: 'put'; key: string; value: string; reason: string }
  | { type: 'delete'; key: string; reason: string };

/** A condition of a batch besides the fence: the key's mod revision is still `modRevision` ('0': key absent). */
export interface Guard {
  key: string;
  modRevision: string;
}

export interface Batch {
  guards: Guard[];
  ops: WriteOp[];
}

export interface WritePlan {
  batches: Batch[];
  /** the record archived to history, when the step finishes the rollout */
  finished?: RolloutRecord;
  /** actions that could not be carried out (their target is gone); the next pass re-plans */
  skipped: string[];
}

export interface WriteInput {
  keys: Keyspace;
  entry: RolloutEntry;
  details: RolloutDetails;
  view: RolloutView;
  step: RolloutStep;
  /** ISO time stamped on holds and updated records */
  now: string;
  /** schedule keys by unit name (absent: none is rewritten, the engine propagates) */
  placements?: ReadonlyMap<string, Placement[]>;
}

export function planWrites(input: WriteInput): WritePlan {
  const { keys, entry, details, view, step, now } = input;
  const svc = entry.service;
  const record = step.rollout;
  const actions = new OpList();
  const guards = new Map<string, string>();
  const skipped: string[] = [];
  const units = new Map<string, UnitRecord>();
  let finish: Extract<RolloutAction, { type: 'finish' }> | undefined;

  for (const a of step.actions) {
    switch (a.type) {
      case 'hold': {
        const hold: PresenceHold = { service: svc, unit: a.unit, rollout: record.id, since: now };
        actions.put(keys.presenceHold(svc, a.unit), hold, a.reason);
        break;
      }
      case 'release':
        actions.del(keys.presenceHold(svc, a.unit), a.reason);
        break;
      case 'set-unit': {
        const read = details.units.get(a.unit);
        if (read === undefined) {
          skipped.push(`set-unit ${a.unit}: the unit record is gone`);
          break;
        }
        const base = units.get(a.unit) ?? read.value;
        const next: UnitRecord = { ...base, targetState: a.targetState, hash: a.hash, updatedAt: now };
        units.set(a.unit, next);
        guards.set(keys.unit(a.unit), read.modRevision);
        actions.put(keys.unit(a.unit), next, a.reason);
        for (const p of input.placements?.get(a.unit) ?? []) {
          const schedule: ScheduleRecord = { name: a.unit, hash: a.hash, targetState: a.targetState };
          guards.set(p.key, p.modRevision);
          actions.put(p.key, schedule, `${a.reason} (schedule on ${p.machine}, with the unit record)`);
        }
        break;
      }
      case 'pull': {
        // The next body goes on the schedule record the agent watches (its
        // own unit record is untouched: the unit keeps running). The agent
        // pulls that body's image and reports it in the unit's state.
        const read = details.units.get(a.unit);
        const ps = input.placements?.get(a.unit) ?? [];
        if (read === undefined || ps.length === 0) {
          skipped.push(`pull ${a.unit}: ${read === undefined ? 'the unit record is gone' : 'no machine is scheduled to run it'}`);
          break;
        }
        const rec = units.get(a.unit) ?? read.value;
        for (const p of ps) {
          const schedule: ScheduleRecord = { name: a.unit, hash: rec.hash, targetState: rec.targetState, next: a.hash };
          guards.set(p.key, p.modRevision);
          actions.put(p.key, schedule, `${a.reason} (schedule on ${p.machine})`);
        }
        break;
      }
      case 'destroy-unit': {
        // A surge instance the rollout no longer needs: deleting its record
        // makes the engine unschedule it and the agent stop it. Its hold
        // stays: the planner releases it once nothing runs the instance (a
        // hold deleted here let the balancer take the dying instance back).
        const read = details.units.get(a.unit);
        if (read === undefined) {
          skipped.push(`destroy-unit ${a.unit}: the unit record is gone already`);
          break;
        }
        units.delete(a.unit);
        guards.set(keys.unit(a.unit), read.modRevision);
        actions.del(keys.unit(a.unit), a.reason);
        actions.del(keys.unschedulable(a.unit), `${a.reason}: its unschedulable reason goes with it`);
        break;
      }
      case 'mark-healthy': {
        const rev = details.revision;
        if (rev === undefined || rev.value.revision !== a.revision) {
          skipped.push(`mark-healthy: revision ${a.revision} of ${svc} is gone`);
          break;
        }
        if (rev.value.healthy) break;
        guards.set(keys.revision(svc, a.revision), rev.modRevision);
        actions.put(keys.revision(svc, a.revision), { ...rev.value, healthy: true }, a.reason);
        break;
      }
      case 'finish':
        finish = a;
        break;
    }
  }

  const last = new OpList();
  const lastGuards = new Map<string, string>();
  if (finish !== undefined) {
    const final: RolloutRecord = { ...record, finishedAt: record.finishedAt ?? now };
    // A finished rollout leaves no hold behind except on failed instances (nextSteps releases them; this is the safety net).
    for (const v of view.instances) {
      if (v.held && record.instances[v.unit]?.phase !== 'failed' && !actions.has(keys.presenceHold(svc, v.unit))) {
        last.del(keys.presenceHold(svc, v.unit), 'rollout finished: no hold may outlive it');
      }
    }
    revertBookkeeping(input, last, lastGuards);
    last.put(keys.rolloutHistory(svc, record.id), final, `rollout ${finish.state}: archived`);
    last.del(keys.rollout(svc), 'rollout finished: lock released');
    last.del(keys.rolloutControl(svc), 'rollout finished: control command consumed');
    return { batches: batches(actions, guards, last, lastGuards), finished: final, skipped };
  }
  if (step.changed !== false && step.rollout !== view.rollout) {
    last.put(keys.rollout(svc), record, 'rollout record moved on');
  }
  return { batches: batches(actions, guards, last, lastGuards), skipped };
}

/**
 * A rollout that reverted (finished 'failed' with no instance failed: every
 * instance is back on revertTo) leaves the service on the revert revision,
 * so the service record and the template's hash say what actually runs and
 * the next deploy or instance starts from the known-good body. Skipped when
 * a user changed them meanwhile (they no longer say toRevision/toHash).
 */
function revertBookkeeping(input: WriteInput, ops: OpList, guards: Map<string, string>): void {
  const { keys, details, step, now } = input;
  const r = step.rollout;
  const revert = r.revertTo;
  // surge instances keep the attempted body until they are destroyed; they say nothing about the revert
  const progress = Object.values(r.instances).filter((p) => !p.surge);
  if (r.state !== 'failed' || revert === undefined || progress.some((p) => p.phase === 'failed')) return;
  if (progress.some((p) => p.targetHash !== revert.hash)) return;
  const svc = details.service;
  if (svc !== undefined && r.toRevision !== undefined && svc.value.revision === r.toRevision) {
    // the values that render the revert body, so the next deploy does not carry the failed ones
    const values = details.revertRevision?.value.values ?? svc.value.values;
    const next: ServiceRecord = { ...svc.value, values, revision: revert.revision, updatedAt: now };
    guards.set(keys.service(r.service), svc.modRevision);
    ops.put(keys.service(r.service), next, `reverted to revision ${revert.revision}`);
  }
  const tpl = details.template;
  if (tpl !== undefined && tpl.value.hash === r.toHash && r.toHash !== revert.hash) {
    guards.set(keys.unit(r.template), tpl.modRevision);
    ops.put(keys.unit(r.template), { ...tpl.value, hash: revert.hash, updatedAt: now }, `template back to revision ${revert.revision}`);
  }
}

/** Actions in batches of MAX_TXN_OPS; the last batch also carries `last` (record write or finish), never split. */
function batches(actions: OpList, guards: Map<string, string>, last: OpList, lastGuards: Map<string, string>): Batch[] {
  const ops = actions.list();
  const tail = last.list();
  const out: Batch[] = [];
  let i = 0;
  while (ops.length - i + tail.length > MAX_TXN_OPS) {
    const part = ops.slice(i, i + MAX_TXN_OPS);
    if (part.length === 0) break;
    out.push({ guards: guardsFor(part, guards), ops: part });
    i += part.length;
  }
  const rest = [...ops.slice(i), ...tail];
  if (rest.length > 0) out.push({ guards: guardsFor(rest, new Map([...guards, ...lastGuards])), ops: rest });
  return out;
}

function guardsFor(ops: WriteOp[], guards: Map<string, string>): Guard[] {
  return ops.filter((o) => guards.has(o.key)).map((o) => ({ key: o.key, modRevision: guards.get(o.key)! }));
}

/** Operations keyed by key, in first-seen order: etcd refuses a key twice in one transaction, and the last word wins. */
class OpList {
  private readonly byKey = new Map<string, WriteOp>();

  put(key: string, value: unknown, reason: string): void {
    this.byKey.set(key, { type: 'put', key, value: JSON.stringify(value), reason });
  }
  del(key: string, reason: string): void {
    this.byKey.set(key, { type: 'delete', key, reason });
  }
  has(key: string): boolean {
    return this.byKey.has(key);
  }
  list(): WriteOp[] {
    return [...this.byKey.values()];
  }
}
