/**
 * The etcd store of services, revisions, rollout records (the deploy lock),
 * rollout control and history. Every method throws only FleetxError
 * (etcd3 errors are converted here, once).
 *
 * A deploy is ONE transaction (commitDeploy): body, revision, service,
 * template unit, new instances and the rollout record, guarded by "no
 * rollout exists" and "nothing I read changed". So a refused or raced
 * deploy writes nothing, and a body is always put in the same transaction
 * as the records that reference it (what gc.ts relies on).
 */
import type { Etcd3 } from 'etcd3';
import { conflictError, FleetxError, invalidError, notFoundError } from '../errors/errors.js';
import { decode, decodeKv, encode } from '../registry/codec.js';
import { PrefixWatch } from '../registry/watch.js';
import { toFleetxError, type ErrorContext } from '../registry/errors.js';
import { collectBodies } from '../registry/gc.js';
import type { Keyspace } from '../registry/keys.js';
import type { UnitRecord } from '../registry/records.js';
import type { RolloutControl, RolloutRecord } from '../rollout/types.js';
import type { RevisionRecord, ServiceRecord } from '../service/types.js';
import { isInstanceOf } from '../unit/name.js';
import { describeHolder } from './holder.js';

/** What one deploy (or restart / undo) writes, all or nothing. */
export interface DeployWrite {
  service?: string;
  /** body to (re-)put with the records that reference it */
  body?: { hash: string; text: string };
  /** a new revision; its number must be free */
  revision?: RevisionRecord;
  serviceRecord?: ServiceRecord;
  /** units to put, each with the mod revision it was read at ('0' = must not exist) */
  units: Array<{ record: UnitRecord; readAt: string }>;
  rollout?: RolloutRecord;
  /** bodies the write stops referencing: collected afterwards if nothing else uses them */
  released?: string[];
}

export interface Versioned<T> {
  value: T;
  modRevision: string;
}

export class DeployStore {
  readonly keys: Keyspace;

  constructor(
    private readonly client: Etcd3,
    keys: Keyspace,
    private readonly connection: ErrorContext,
  ) {
    this.keys = guarded(keys);
  }

  getService(name: string): Promise<ServiceRecord | undefined> {
    return this.run(() => this.getJson<ServiceRecord>(this.keys.service(name)));
  }

  listServices(): Promise<ServiceRecord[]> {
    return this.run(async () => sortBy(await this.listJson<ServiceRecord>(this.keys.services()), (s) => s.name));
  }

  putService(rec: ServiceRecord): Promise<void> {
    return this.run(async () => void (await this.client.put(this.keys.service(rec.name)).value(encode(rec)).exec()));
  }

  /** Oldest first (keys are zero-padded numbers). */
  listRevisions(svc: string): Promise<RevisionRecord[]> {
    return this.run(async () => sortBy(await this.listJson<RevisionRecord>(this.keys.revisions(svc)), (r) => r.revision));
  }

  /**
   * Stores a revision under the next free number, with its body, in one
   * create-if-absent transaction; concurrent callers get distinct numbers.
   */
  putRevision(rec: Omit<RevisionRecord, 'revision'>, text: string): Promise<RevisionRecord> {
    return this.run(async () => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const revs = await this.listJson<RevisionRecord>(this.keys.revisions(rec.service));
        const n = revs.reduce((m, r) => Math.max(m, r.revision), 0) + 1;
        const full: RevisionRecord = { ...rec, revision: n };
        const key = this.keys.revision(rec.service, n);
        const res = await this.client
          .if(key, 'Create', '==', 0)
          .then(this.client.put(this.keys.body(rec.hash)).value(text), this.client.put(key).value(encode(full)))
          .commit();
        if (res.succeeded) return full;
      }
      throw conflictError(`revisions of ${rec.service} are being created by others too often; try again`);
    });
  }

  getBody(hash: string): Promise<string | undefined> {
    return this.run(async () => (await this.client.get(this.keys.body(hash)).string()) ?? undefined);
  }

  /** The template unit and its instances (by name: prefix@X.type), each with its mod revision, sorted by name. */
  unitsOf(template: string): Promise<{ template?: Versioned<UnitRecord>; instances: Array<Versioned<UnitRecord>> }> {
    return this.run(async () => {
      const res = await this.client.getAll().prefix(this.keys.units()).exec();
      let tpl: Versioned<UnitRecord> | undefined;
      const instances: Array<Versioned<UnitRecord>> = [];
      for (const kv of res.kvs) {
        const v = { value: decodeKv<UnitRecord>(kv), modRevision: kv.mod_revision };
        const name = v.value.name;
        if (name === template) tpl = v;
        else if (isInstanceOf(template, name)) instances.push(v);
      }
      return { template: tpl, instances: sortBy(instances, (i) => i.value.name) };
    });
  }

  getRollout(svc: string): Promise<RolloutRecord | undefined> {
    return this.run(() => this.getJson<RolloutRecord>(this.keys.rollout(svc)));
  }

  listRollouts(): Promise<RolloutRecord[]> {
    return this.run(async () => sortBy(await this.listJson<RolloutRecord>(this.keys.rollouts()), (r) => r.service));
  }

  /** Creates the rollout record unless one exists (the deploy lock). @throws 'conflict' naming the holder. */
  createRollout(rec: RolloutRecord): Promise<void> {
    return this.commitDeploy({ service: rec.service, units: [], rollout: rec });
  }

  /**
   * Writes everything of one deploy in a single transaction.
   * @throws 'conflict' naming the holder when a rollout of the service runs,
   *   or when a record read for the plan changed meanwhile (plan again).
   */
  commitDeploy(w: DeployWrite): Promise<void> {
    return this.run(async () => {
      const cmps: Array<[string, 'Create' | 'Mod', string | number]> = [];
      const puts: Array<[string, string]> = [];
      const svc = w.rollout?.service ?? w.service;
      if (svc !== undefined && w.rollout) cmps.push([this.keys.rollout(svc), 'Create', 0]);
      if (w.revision) cmps.push([this.keys.revision(w.revision.service, w.revision.revision), 'Create', 0]);
      for (const u of w.units) cmps.push([this.keys.unit(u.record.name), 'Mod', u.readAt]);
      if (w.body) puts.push([this.keys.body(w.body.hash), w.body.text]);
      if (w.revision) puts.push([this.keys.revision(w.revision.service, w.revision.revision), encode(w.revision)]);
      if (w.serviceRecord) puts.push([this.keys.service(w.serviceRecord.name), encode(w.serviceRecord)]);
      for (const u of w.units) puts.push([this.keys.unit(u.record.name), encode(u.record)]);
      if (w.rollout) puts.push([this.keys.rollout(w.rollout.service), encode(w.rollout)]);

      let txn = this.client.if(cmps[0]![0], cmps[0]![1], '==', cmps[0]![2]);
      for (const [k, t, v] of cmps.slice(1)) txn = txn.and(k, t, '==', v);
      // A control record left from an earlier rollout must not steer the new one.
      const clear = w.rollout ? [this.client.delete().key(this.keys.rolloutControl(w.rollout.service))] : [];
      const res = await txn.then(...puts.map(([k, v]) => this.client.put(k).value(v)), ...clear).commit();
      if (res.succeeded) {
        if (w.released?.length) await collectBodies(this.client, this.keys, w.released);
        return;
      }
      if (svc !== undefined) {
        const holder = await this.getJson<RolloutRecord>(this.keys.rollout(svc));
        if (holder) throw lockError(holder);
      }
      throw conflictError(`${svc ?? 'the service'} changed while the deploy was being prepared; nothing was written`, 'run the command again');
    });
  }

  /** Requests pause / resume / abort. @throws 'not-found' when no rollout of svc runs. */
  writeControl(svc: string, control: RolloutControl): Promise<RolloutRecord> {
    return this.run(async () => {
      const current = await this.getJson<RolloutRecord>(this.keys.rollout(svc));
      if (!current) throw notFoundError(`no rollout of ${svc} is running`, `see past ones with fleetx rollout history ${svc}`);
      // Only while the lock exists: a control record must not outlive its rollout.
      const res = await this.client
        .if(this.keys.rollout(svc), 'Create', '>', 0)
        .then(this.client.put(this.keys.rolloutControl(svc)).value(encode(control)))
        .commit();
      if (!res.succeeded) throw notFoundError(`the rollout of ${svc} ended just now`, `see it with fleetx rollout history ${svc}`);
      return current;
    });
  }

  getControl(svc: string): Promise<RolloutControl | undefined> {
    return this.run(() => this.getJson<RolloutControl>(this.keys.rolloutControl(svc)));
  }

  /** Finished rollouts of a service, oldest first. */
  listHistory(svc: string): Promise<RolloutRecord[]> {
    return this.run(async () => {
      const raw = await this.client.getAll().prefix(this.keys.rolloutHistories(svc)).strings();
      const list = Object.entries(raw).map(([k, v]) => decode<RolloutRecord>(k, v));
      return list.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    });
  }

  /**
   * Follows the rollout record of svc with a PrefixWatch on its key
   * (registry/watch.ts: it re-lists by itself after a compaction or a lost
   * stream). `record` gets the record after every list and every change, or
   * undefined when there is none (the rollout ended); `problem` gets list and
   * watch failures and unreadable records, all recovered from. Returns stop().
   */
  watchRollout(
    svc: string,
    on: { record: (r: RolloutRecord | undefined) => void; problem: (e: FleetxError) => void },
  ): () => Promise<void> {
    const key = this.keys.rollout(svc);
    const show = (value: string | undefined) => {
      try {
        on.record(value === undefined ? undefined : decode<RolloutRecord>(key, value));
      } catch (e) {
        on.problem(e instanceof FleetxError ? e : toFleetxError(e, this.connection));
      }
    };
    const watch = new PrefixWatch(this.client, { key }, {
      replace: (items) => show(items[0]?.value),
      event: (e) => show(e.type === 'put' ? e.value : undefined),
      problem: (_msg, e) => on.problem(e instanceof FleetxError ? e : toFleetxError(e, this.connection)),
    });
    void watch.start();
    return () => watch.stop();
  }

  /** The machine whose engine leads now (it runs rollouts), or undefined when no leader is alive. */
  engineLeader(): Promise<string | undefined> {
    return this.run(async () => (await this.client.get(this.keys.leader()).string()) ?? undefined);
  }

  getHistory(svc: string, id: string): Promise<RolloutRecord | undefined> {
    return this.run(() => this.getJson<RolloutRecord>(this.keys.rolloutHistory(svc, id)));
  }

  private async getJson<T>(key: string): Promise<T | undefined> {
    const text = await this.client.get(key).string();
    return text === null ? undefined : decode<T>(key, text);
  }

  private async listJson<T>(prefix: string): Promise<T[]> {
    const raw = await this.client.getAll().prefix(prefix).strings();
    return Object.entries(raw).map(([k, v]) => decode<T>(k, v));
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw e instanceof FleetxError ? e : toFleetxError(e, this.connection);
    }
  }
}

/**
 * "a rollout of app is already running: deploy to revision 4 by alice@ci-1 (jenkins-app-42) since …".
 * details.lock carries the same facts for -o json errors and for a deploy
 * that waits for an aborted holder (cli/follow/started.ts).
 */
export function lockError(r: RolloutRecord): FleetxError {
  const what = r.kind === 'restart' ? 'rolling restart' : `${r.kind} to revision ${r.toRevision ?? '?'}`;
  const by = describeHolder(r.holder);
  const aborting = r.control?.command === 'abort';
  return new FleetxError(
    'conflict',
    `a rollout of ${r.service} is already running: ${what} by ${by} since ${r.createdAt} (${aborting ? 'aborting' : r.state}); ` +
      `follow it with fleetx rollout status ${r.service} --follow, or fleetx rollout abort ${r.service}`,
    { details: { lock: { service: r.service, rollout: r.id, what, by, holder: r.holder, since: r.createdAt, state: r.state, aborting } } },
  );
}

/** Service names and ids become key segments: a "/" would move a record elsewhere in the keyspace. */
function guarded(keys: Keyspace): Keyspace {
  const check = (what: string, v: string) => {
    if (v === '' || v.includes('/')) throw invalidError(`${what} "${v}" must be non-empty and contain no "/"`);
    return v;
  };
  return {
    ...keys,
    service: (s) => keys.service(check('service name', s)),
    revision: (s, n) => keys.revision(check('service name', s), n),
    revisions: (s) => keys.revisions(check('service name', s)),
    rollout: (s) => keys.rollout(check('service name', s)),
    rolloutControl: (s) => keys.rolloutControl(check('service name', s)),
    rolloutHistory: (s, id) => keys.rolloutHistory(check('service name', s), check('rollout id', id)),
    rolloutHistories: (s) => keys.rolloutHistories(check('service name', s)),
    unit: (n) => keys.unit(check('unit name', n)),
    body: (h) => keys.body(check('body hash', h)),
  };
}

function sortBy<T>(xs: T[], key: (x: T) => string | number): T[] {
  return xs.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
