/**
 * The desired state in etcd, behind one narrow class. Writes that must not
 * lose a concurrent update are compare-and-swap transactions on the key's
 * mod revision, retried a bounded number of times.
 *
 * Error contract: every method throws only FleetxError —
 *   'unavailable' (etcd unreachable in time), 'usage' (credentials,
 *   permissions, TLS files), 'invalid' (a name or hash containing "/"),
 *   'not-found' / 'conflict' as documented per method, 'internal'
 *   (corrupt record, bug).
 */
import { metadataOf, withOverrides } from './metadata.js';
import type { Etcd3 } from 'etcd3';
import { conflictError, invalidError, notFoundError } from '../errors/errors.js';
import type { Keyspace } from './keys.js';
import { lastSegment } from './keys.js';
import type { MachineRecord, ScheduleRecord, TargetState, UnitRecord, UnitStateRecord, UnschedulableRecord } from './records.js';
import { decode, decodeKv, encode } from './codec.js';
import { toFleetxError, type ErrorContext } from './errors.js';
import { collectBodies } from './gc.js';
import { changeUnits, readUnitSnapshot, type AppliedChange, type DecideChange, type UnitSnapshot } from './bulk.js';

export interface RegistryOptions {
  /** for error messages: endpoints, timeout, user, prefix */
  connection: ErrorContext;
  /** clock for updatedAt stamps */
  now: () => Date;
}

export type CreateOutcome = 'created' | 'replaced' | 'unchanged';

/** How often a compare-and-swap is retried before reporting a conflict. */
const CAS_ATTEMPTS = 50;
/** Deletes per transaction, below etcd's default --max-txn-ops of 128. */
const TXN_BATCH = 100;

export class Registry {
  constructor(
    private readonly client: Etcd3,
    readonly keys: Keyspace,
    private readonly options: RegistryOptions,
  ) {}

  /** Stores a unit body under its hash unless it is already there. */
  putBody(hash: string, text: string): Promise<void> {
    return this.run(async () => {
      assertSegment('body hash', hash);
      const key = this.keys.body(hash);
      await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(text)).commit();
    });
  }

  getBody(hash: string): Promise<string | undefined> {
    return this.run(async () => (await this.client.get(this.keys.body(hash)).string()) ?? undefined);
  }

  getUnit(name: string): Promise<UnitRecord | undefined> {
    return this.run(async () => (await this.readUnit(name))?.record);
  }

  /** All units, sorted by name. */
  listUnits(): Promise<UnitRecord[]> {
    return this.run(async () => {
      const units = await this.listJson<UnitRecord>(this.keys.units());
      return units.sort((a, b) => cmp(a.name, b.name));
    });
  }

  /**
   * Submits a unit and its body in one transaction.
   * - new unit: stored as given ('created');
   * - same hash already there: nothing is written, target state kept ('unchanged');
   * - different hash: 'conflict' unless opts.replace, which swaps the hash and
   *   keeps the current target state ('replaced'); the old body is then
   *   garbage-collected if nothing else uses it.
   */
  createUnit(rec: UnitRecord, text: string, opts: { replace: boolean }): Promise<{ outcome: CreateOutcome; unit: UnitRecord }> {
    return this.run(async () => {
      assertSegment('unit name', rec.name);
      assertSegment('body hash', rec.hash);
      const key = this.keys.unit(rec.name);
      const bodyKey = this.keys.body(rec.hash);
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const current = await this.readUnit(rec.name);
        if (current && current.record.hash === rec.hash) return { outcome: 'unchanged', unit: current.record };
        if (current && !opts.replace) {
          throw conflictError(
            `unit ${rec.name} already exists with different contents; use --replace to update it`,
            `destroy it first or pass --replace to keep its target state (${current.record.targetState}) with the new contents`,
          );
        }
        const unit: UnitRecord = current
          ? { ...rec, targetState: current.record.targetState, updatedAt: this.stamp() }
          : { ...rec, updatedAt: this.stamp() };
        // The body is always put with the unit (never "if absent" here): gc.ts
        // relies on it to never lose a body a concurrent submit needs.
        const res = await this.client
          .if(key, 'Mod', '==', current ? current.modRevision : 0)
          .then(this.client.put(bodyKey).value(text), this.client.put(key).value(encode(unit)))
          .commit();
        if (!res.succeeded) continue;
        if (current) await this.tidyBody(current.record.hash);
        return { outcome: current ? 'replaced' : 'created', unit };
      }
      throw this.contended(rec.name);
    });
  }

  /**
   * Sets a unit's target state with compare-and-swap, so concurrent callers
   * never overwrite each other's other fields. Returns the stored record.
   * @throws 'not-found' when the unit does not exist.
   */
  setTargetState(name: string, state: TargetState): Promise<UnitRecord> {
    return this.run(async () => {
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const current = await this.readUnit(name);
        if (!current) throw notFoundError(`unit ${name} does not exist`, 'submit it first');
        if (current.record.targetState === state) return current.record;
        const unit: UnitRecord = { ...current.record, targetState: state, updatedAt: this.stamp() };
        const key = this.keys.unit(name);
        const res = await this.client
          .if(key, 'Mod', '==', current.modRevision)
          .then(this.client.put(key).value(encode(unit)))
          .commit();
        if (res.succeeded) return unit;
      }
      throw this.contended(name);
    });
  }

  /**
   * Moves a unit from one body to another (an instance following its
   * replaced template), with compare-and-swap. Returns false, writing
   * nothing, when the unit is gone or no longer on `from` (someone moved it
   * meanwhile: theirs wins). The old body is left to tidyBody/gcBodies.
   */
  switchBody(name: string, from: string, to: string): Promise<boolean> {
    return this.run(async () => {
      assertSegment('body hash', to);
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const current = await this.readUnit(name);
        if (!current || current.record.hash !== from) return false;
        const unit: UnitRecord = { ...current.record, hash: to, updatedAt: this.stamp() };
        const key = this.keys.unit(name);
        const res = await this.client
          .if(key, 'Mod', '==', current.modRevision)
          .and(this.keys.body(to), 'Create', '>', 0)
          .then(this.client.put(key).value(encode(unit)))
          .commit();
        if (res.succeeded) return true;
        if ((await this.getBody(to)) === undefined) throw notFoundError(`body ${to.slice(0, 7)} is not in the registry`);
      }
      throw this.contended(name);
    });
  }

  /**
   * Deletes a unit, its schedule entries on every machine and its
   * unschedulable reason in one transaction, then its body if unused.
   * A schedule entry the engine writes concurrently is not covered: the
   * engine unschedules units that no longer exist on its next pass.
   * @throws 'not-found' when the unit does not exist.
   */
  destroyUnit(name: string): Promise<void> {
    return this.run(async () => {
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const current = await this.readUnit(name);
        if (!current) throw notFoundError(`unit ${name} does not exist`);
        const scheduled = (await this.client.getAll().prefix(this.keys.schedules()).keys()).filter((k) => lastSegment(k) === name);
        // etcd caps a transaction at 128 operations (--max-txn-ops): entries
        // beyond the first batch go in follow-up batches; they are harmless
        // meanwhile, as a schedule entry of a missing unit is stopped anyway.
        const [first, rest] = [scheduled.slice(0, TXN_BATCH), scheduled.slice(TXN_BATCH)];
        const key = this.keys.unit(name);
        const res = await this.client
          .if(key, 'Mod', '==', current.modRevision)
          .then(
            this.client.delete().key(key),
            this.client.delete().key(this.keys.unschedulable(name)),
            ...first.map((k) => this.client.delete().key(k)),
          )
          .commit();
        if (!res.succeeded) continue;
        for (let i = 0; i < rest.length; i += TXN_BATCH) {
          const batch = rest.slice(i, i + TXN_BATCH);
          await this.client.if(key, 'Create', '==', 0).then(...batch.map((k) => this.client.delete().key(k))).commit();
        }
        await this.tidyBody(current.record.hash);
        return;
      }
      throw this.contended(name);
    });
  }

  /** Every unit with its mod revision, and every schedule key, in one read: the start of a bulk change. */
  readUnits(): Promise<UnitSnapshot> {
    return this.run(() => readUnitSnapshot(this.client, this.keys));
  }

  /**
   * Changes many units at once, each decided from its current record and
   * guarded by its mod revision, in batched transactions (see bulk.ts);
   * then collects the bodies that replaced or destroyed units left unused.
   * @throws what `decide` throws; 'conflict' when units keep changing under it.
   */
  changeUnits(snapshot: UnitSnapshot, names: readonly string[], decide: DecideChange): Promise<AppliedChange[]> {
    return this.run(async () => {
      const applied = await changeUnits(this.client, this.keys, snapshot, names, decide);
      const unused = applied.filter((a) => a.before && (a.change.type === 'delete' || a.change.record.hash !== a.before.hash));
      if (unused.length > 0) await collectBodies(this.client, this.keys, [...new Set(unused.map((a) => a.before!.hash))]).catch(() => undefined);
      return applied;
    });
  }

  /** Deletes every body no unit references; returns the deleted hashes. See gc.ts for why this is safe. */
  gcBodies(): Promise<string[]> {
    return this.run(() => collectBodies(this.client, this.keys));
  }

  /** Live machines (those with a presence record), metadata overridden by `set-metadata`, sorted by id. */
  listMachines(): Promise<MachineRecord[]> {
    return this.run(async () => {
      const machines = await this.listJson<MachineRecord>(this.keys.machines());
      const metas = await this.client.getAll().prefix(this.keys.machineMetas()).strings();
      const overrides = new Map<string, Record<string, string>>();
      for (const [k, v] of Object.entries(metas)) overrides.set(lastSegment(k), metadataOf(decode<unknown>(k, v)));
      return machines
        .map((m) => ({ ...m, metadata: withOverrides(m.metadata ?? {}, overrides.get(m.id)) }))
        .sort((a, b) => cmp(a.id, b.id));
    });
  }

  /** A machine's `set-metadata` overrides (an empty value removes that key). */
  getMachineMetadata(id: string): Promise<Record<string, string>> {
    return this.run(async () => {
      assertSegment('machine id', id);
      const v = await this.client.get(this.keys.machineMeta(id)).string();
      return v === null ? {} : metadataOf(decode<unknown>(this.keys.machineMeta(id), v));
    });
  }

  /** Replaces a machine's metadata overrides; an empty object removes them. */
  setMachineMetadata(id: string, metadata: Record<string, string>): Promise<void> {
    return this.run(async () => {
      assertSegment('machine id', id);
      const key = this.keys.machineMeta(id);
      if (Object.keys(metadata).length === 0) await this.client.delete().key(key).exec();
      else await this.client.put(key).value(encode(metadata)).exec();
    });
  }

  /** Reported unit states of all machines, sorted by unit then machine. */
  listStates(): Promise<UnitStateRecord[]> {
    return this.run(async () => {
      const states = await this.listJson<UnitStateRecord>(this.keys.states());
      return states.sort((a, b) => cmp(a.name, b.name) || cmp(a.machine, b.machine));
    });
  }

  /** Every schedule entry with the machine it is on, sorted by unit then machine. */
  listSchedules(): Promise<Array<ScheduleRecord & { machine: string }>> {
    return this.run(async () => {
      const raw = await this.client.getAll().prefix(this.keys.schedules()).strings();
      const base = this.keys.schedules();
      return Object.entries(raw)
        .map(([k, v]) => ({ ...decode<ScheduleRecord>(k, v), machine: k.slice(base.length, k.lastIndexOf('/')) }))
        .sort((a, b) => cmp(a.name, b.name) || cmp(a.machine, b.machine));
    });
  }

  listUnschedulable(): Promise<UnschedulableRecord[]> {
    return this.run(async () => {
      const recs = await this.listJson<UnschedulableRecord>(this.keys.unschedulables());
      return recs.sort((a, b) => cmp(a.name, b.name));
    });
  }

  /** Every key under the prefix with its raw value (for tests: proves that bad input changed nothing). */
  snapshot(): Promise<Record<string, string>> {
    return this.run(async () => {
      const all = await this.client.getAll().prefix(`${this.keys.prefix}/`).strings();
      return Object.fromEntries(Object.entries(all).sort(([a], [b]) => cmp(a, b)));
    });
  }

  private async readUnit(name: string): Promise<{ record: UnitRecord; modRevision: string } | undefined> {
    const res = await this.client.get(this.keys.unit(name)).exec();
    const kv = res.kvs[0];
    return kv ? { record: decodeKv<UnitRecord>(kv), modRevision: kv.mod_revision } : undefined;
  }

  private async listJson<T>(prefix: string): Promise<T[]> {
    const raw = await this.client.getAll().prefix(prefix).strings();
    return Object.entries(raw).map(([k, v]) => decode<T>(k, v));
  }

  /**
   * Removes a body the last write may have orphaned. Best effort on purpose:
   * the write itself succeeded, and reporting it as failed would make callers
   * retry it; a leftover body is collected by the next gcBodies().
   */
  private async tidyBody(hash: string): Promise<void> {
    await collectBodies(this.client, this.keys, [hash]).catch(() => undefined);
  }

  private stamp(): string {
    return this.options.now().toISOString();
  }

  private contended(name: string) {
    return conflictError(`unit ${name} is being changed by others too often; try again`);
  }

  /** The single place where etcd3 errors become FleetxErrors. */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw toFleetxError(e, this.options.connection);
    }
  }
}

/** Names become key segments: a "/" would silently move a record elsewhere in the keyspace. */
function assertSegment(what: string, value: string): void {
  if (value === '' || value.includes('/')) throw invalidError(`${what} "${value}" must be non-empty and contain no "/"`);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
