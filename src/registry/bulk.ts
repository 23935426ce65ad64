/**
 * Changing many units in one command (start, stop, destroy … of 1,000
 * units): ONE read of the units and schedule keys, each unit's change
 * decided from what was read, written in batched transactions within
 * etcd's limits, a few in flight at a time. Each unit's write is guarded by
 * its own mod revision, as the one-unit methods are, so nothing a
 * concurrent writer did is overwritten: a batch whose compare fails is
 * re-read and re-decided (that batch only).
 *
 * Interrupted half-way (Ctrl-C, a killed CI job), every unit is either
 * done or untouched, since each batch is one transaction; and since every
 * decision depends only on the unit's current record, running the same
 * command again finishes the rest.
 *
 * etcd refusing a batch because it is overloaded ("too many requests": its
 * raft log is 5,000 entries behind; "request timed out") is ridden out: the
 * batch is sent again after a backoff, a few times. That is safe because of
 * the guards: a batch that did land after all fails its compares on the
 * second try and is re-decided from what is stored (seen with 1,000 agents
 * reporting while a 10,000-unit start ran, bench:scale).
 *
 * Errors: etcd3's, unconverted (Registry converts them); a FleetxError the
 * decide function throws (thrown while planning, before anything is
 * written, unless a unit changed under the command); 'conflict' when units
 * keep changing under it.
 */
import type { Etcd3, IRequestOp } from 'etcd3';
import PQueue from 'p-queue';
import { conflictError } from '../errors/errors.js';
import { Backoff, sleep } from './backoff.js';
import { decodeKv, encode, prefixEnd } from './codec.js';
import type { Keyspace } from './keys.js';
import { lastSegment } from './keys.js';
import type { UnitRecord } from './records.js';
import { ETCD_TXN_LIMITS, packTxns } from './txn-batches.js';

export interface StoredUnit {
  record: UnitRecord;
  /** etcd mod revision of the unit's key ('0': absent) */
  modRevision: string;
}

/** What one read saw: every unit, and the schedule keys of each unit on every machine. */
export interface UnitSnapshot {
  units: Map<string, StoredUnit>;
  scheduleKeys: Map<string, string[]>;
}

export type UnitChange = { type: 'put'; record: UnitRecord; body?: { hash: string; text: string } } | { type: 'delete' };

/**
 * Decides one unit's change from its current record (undefined: no such
 * unit). Returns undefined when there is nothing to do; may throw a
 * FleetxError to refuse. Called again with the fresh record when the unit
 * changed under the command.
 */
export type DecideChange = (name: string, current: UnitRecord | undefined) => UnitChange | undefined;

export interface AppliedChange {
  name: string;
  before?: UnitRecord;
  change: UnitChange;
}

/** Transactions in flight at once: etcd orders them anyway; a few hide the round trips. */
const CONCURRENCY = 4;
/** Rounds of re-reading units that changed under the command before giving up. */
const ROUNDS = 20;
/** etcd's answers when it is behind, not broken: the batch is sent again. */
const OVERLOADED = /too many requests|request timed out/;
/** Sends of one batch to an overloaded etcd before its error stands (0.5 s doubling to 8 s: about 20 s in all). */
const OVERLOAD_ATTEMPTS = 6;

export async function readUnitSnapshot(client: Etcd3, keys: Keyspace): Promise<UnitSnapshot> {
  const range = (prefix: string, keysOnly: boolean): IRequestOp => ({
    request_range: { key: Buffer.from(prefix), range_end: prefixEnd(prefix), keys_only: keysOnly },
  });
  const res = await client.kv.txn({ compare: [], success: [range(keys.units(), false), range(keys.schedules(), true)], failure: [] });
  const [units, schedules] = res.responses.map((r) => r.response_range.kvs);
  const snapshot: UnitSnapshot = { units: new Map(), scheduleKeys: new Map() };
  for (const kv of units ?? []) {
    const record = decodeKv<UnitRecord>(kv);
    snapshot.units.set(record.name, { record, modRevision: kv.mod_revision });
  }
  for (const kv of schedules ?? []) {
    const key = kv.key.toString();
    const name = lastSegment(key);
    snapshot.scheduleKeys.set(name, [...(snapshot.scheduleKeys.get(name) ?? []), key]);
  }
  return snapshot;
}

interface Planned {
  name: string;
  before?: StoredUnit;
  change: UnitChange;
  compares: number;
  ops: number;
  bytes: number;
  requests: IRequestOp[];
  /** schedule keys of a destroyed unit that did not fit in its transaction */
  leftover: string[];
  /** the body put, which a transaction holds once for all its units (bodiesOnce) */
  shared?: { key: string; ops: number; bytes: number };
}

/** Applies decide() to `names` as described above; returns what was written. */
export async function changeUnits(client: Etcd3, keys: Keyspace, snapshot: UnitSnapshot, names: readonly string[], decide: DecideChange): Promise<AppliedChange[]> {
  const applied: AppliedChange[] = [];
  const leftovers: string[] = [];
  const queue = new PQueue({ concurrency: CONCURRENCY });
  let pending = plan(keys, snapshot, names, decide);
  for (let round = 0; pending.length > 0; round++) {
    if (round === ROUNDS) throw conflictError(`${pending.length} units are being changed by others too often; try again`);
    const conflicted: string[] = [];
    await queue.addAll(
      packTxns(pending).map((batch) => async () => {
        const res = await ridingOutOverload(() => client.kv.txn({ compare: batch.map((p) => guard(keys, p)), success: bodiesOnce(batch.flatMap((p) => p.requests)), failure: [] }));
        if (!res.succeeded) return void conflicted.push(...batch.map((p) => p.name));
        for (const p of batch) {
          applied.push({ name: p.name, before: p.before?.record, change: p.change });
          leftovers.push(...p.leftover);
        }
      }),
    );
    if (conflicted.length === 0) break;
    pending = plan(keys, await readUnitSnapshot(client, keys), conflicted, decide);
  }
  await deleteLeftovers(client, keys, leftovers, queue);
  return applied;
}

/** Runs `send` again after a backoff while etcd answers that it is overloaded (see the top of this file). */
async function ridingOutOverload<T>(send: () => Promise<T>): Promise<T> {
  const backoff = new Backoff({ initialMs: 500, maxMs: 8000 });
  for (;;) {
    try {
      return await send();
    } catch (e) {
      if (backoff.attempts + 1 >= OVERLOAD_ATTEMPTS || !OVERLOADED.test(e instanceof Error ? e.message : String(e))) throw e;
      await sleep(backoff.next());
    }
  }
}

function plan(keys: Keyspace, snapshot: UnitSnapshot, names: readonly string[], decide: DecideChange): Planned[] {
  const out: Planned[] = [];
  for (const name of names) {
    const before = snapshot.units.get(name);
    const change = decide(name, before?.record);
    if (change !== undefined) out.push(toPlanned(keys, name, before, change, snapshot.scheduleKeys.get(name) ?? []));
  }
  return out;
}

function toPlanned(keys: Keyspace, name: string, before: StoredUnit | undefined, change: UnitChange, scheduled: string[]): Planned {
  const requests: IRequestOp[] = [];
  let bytes = 0;
  const put = (key: string, value: string) => {
    requests.push({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  };
  const del = (key: string) => {
    requests.push({ request_delete_range: { key: Buffer.from(key) } });
    bytes += Buffer.byteLength(key);
  };
  let leftover: string[] = [];
  let shared: Planned['shared'];
  if (change.type === 'put') {
    // The body is put with every unit that references it (gc.ts relies on it).
    if (change.body) {
      const key = keys.body(change.body.hash);
      put(key, change.body.text);
      shared = { key, ops: 1, bytes: Buffer.byteLength(key) + Buffer.byteLength(change.body.text) };
    }
    put(keys.unit(name), encode(change.record));
  } else {
    // A unit scheduled on more machines than fit in one transaction (a
    // global unit) leaves the rest for afterwards: harmless meanwhile, as
    // agents stop a schedule entry whose unit is gone.
    const room = ETCD_TXN_LIMITS.maxOps - 2;
    leftover = scheduled.slice(room);
    del(keys.unit(name));
    del(keys.unschedulable(name));
    for (const k of scheduled.slice(0, room)) del(k);
  }
  return { name, before, change, compares: 1, ops: requests.length, bytes, requests, leftover, ...(shared ? { shared } : {}) };
}

/** etcd refuses a transaction that names a key twice: units sharing a body (instances of one template) put it once. */
function bodiesOnce(requests: IRequestOp[]): IRequestOp[] {
  const seen = new Set<string>();
  return requests.filter((r) => {
    if (!r.request_put) return true;
    const key = r.request_put.key!.toString();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The unit's key still has the mod revision the decision was made on ('0': still absent). */
function guard(keys: Keyspace, p: Planned) {
  return { key: Buffer.from(keys.unit(p.name)), target: 'Mod' as const, result: 'Equal' as const, mod_revision: p.before?.modRevision ?? '0' };
}

/** Deletes schedule keys left over by destroyed units, while their unit is still absent. */
async function deleteLeftovers(client: Etcd3, keys: Keyspace, leftovers: string[], queue: PQueue): Promise<void> {
  const byUnit = new Map<string, string[]>();
  for (const k of leftovers) byUnit.set(lastSegment(k), [...(byUnit.get(lastSegment(k)) ?? []), k]);
  const tasks: Array<() => Promise<unknown>> = [];
  for (const [name, ks] of byUnit) {
    for (let i = 0; i < ks.length; i += ETCD_TXN_LIMITS.maxOps) {
      const part = ks.slice(i, i + ETCD_TXN_LIMITS.maxOps);
      tasks.push(() => client.if(keys.unit(name), 'Create', '==', 0).then(...part.map((k) => client.delete().key(k))).commit());
    }
  }
  await queue.addAll(tasks);
}
