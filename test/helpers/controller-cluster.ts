/**
 * Test harness for the rollout controller: a tiny fake cluster in the test
 * process that plays the agents (schedule -> state + health) and the
 * presence syncer (holds + health -> presence-status), all through the REAL
 * etcd. It follows the engine's schedule keys, so a unit record change has
 * to go through the real Engine before an "agent" acts on it.
 *
 * It also records what matters to the assertions: how many instances were
 * down at once, and every etcd event under the prefix in revision order.
 */
import type { Etcd3, Watcher } from 'etcd3';
import type { HealthRecord } from '../../src/health/types.js';
import type { PresenceStatusRecord } from '../../src/presence/types.js';
import type { Keyspace } from '../../src/registry/keys.js';
import type { ScheduleRecord, UnitRecord, UnitStateRecord } from '../../src/registry/records.js';
import type { InstancePhase, RolloutRecord } from '../../src/rollout/types.js';
import type { RolloutPolicy } from '../../src/service/types.js';
import { parseUnit } from '../../src/unit/parse.js';
import { unitHash } from '../../src/unit/hash.js';

export interface LoggedEvent {
  revision: bigint;
  type: 'put' | 'delete';
  key: string;
  value: string;
}

export interface FakeClusterOptions {
  client: Etcd3;
  keys: Keyspace;
  machines: string[];
  /** service -> prefix of its instances' names (e.g. app -> "app@") */
  services: Record<string, string>;
  /** bodies that start but never pass their health check */
  badHashes?: Set<string>;
  stepMs?: number;
}

export class FakeCluster {
  /** per service, most instances not active at once, as the agents reported them */
  readonly maxDownOf = new Map<string, number>();
  readonly events: LoggedEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private watcher: Watcher | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly leases: { revoke(): Promise<unknown> }[] = [];

  constructor(private readonly o: FakeClusterOptions) {}

  async start(): Promise<void> {
    const { client, keys } = this.o;
    this.watcher = await client.watch().prefix(`${keys.prefix}/`).create();
    this.watcher.on('put', (kv) => this.log('put', kv));
    this.watcher.on('delete', (kv) => this.log('delete', kv));
    this.watcher.on('error', () => undefined);
    for (const id of this.o.machines) {
      const lease = client.lease(30);
      this.leases.push(lease);
      await lease.put(keys.machine(id)).value(JSON.stringify({ id, ip: '127.0.0.1', metadata: {}, version: 'test', startedAt: '' })).exec();
    }
    const loop = () => {
      if (this.stopped) return;
      this.running = this.step().catch(() => undefined).then(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.o.stepMs ?? 50);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
    await this.watcher?.cancel().catch(() => undefined);
    await Promise.all(this.leases.map((l) => l.revoke().catch(() => undefined)));
  }

  /** most instances of the first service not active at once */
  get maxDown(): number {
    return this.maxDownOf.get(Object.keys(this.o.services)[0]!) ?? 0;
  }

  /** Events on one key, in revision order. */
  eventsOf(key: string): LoggedEvent[] {
    return this.events.filter((e) => e.key === key);
  }

  private log(type: 'put' | 'delete', kv: { key: Buffer; value: Buffer; mod_revision: string }): void {
    this.events.push({ revision: BigInt(kv.mod_revision), type, key: kv.key.toString(), value: kv.value.toString() });
  }

  /** One round of every agent and the syncer. */
  private async step(): Promise<void> {
    const { client, keys } = this.o;
    const now = new Date().toISOString();
    const schedules = await readAll<ScheduleRecord>(client, keys.schedules());
    const states = new Map((await readAll<UnitStateRecord>(client, keys.states())).map(([k, v]) => [k, v]));
    const healths = new Map((await readAll<HealthRecord>(client, keys.healths())).map(([, v]) => [v.unit, v]));
    const scheduled = new Set<string>();
    for (const [key, rec] of schedules) {
      const machine = key.slice(keys.schedules().length).split('/')[0]!;
      const stateKey = keys.state(machine, rec.name);
      scheduled.add(stateKey);
      const cur = states.get(stateKey);
      const want = rec.targetState === 'launched' ? 'active' : 'inactive';
      if (cur !== undefined && cur.activeState === want && cur.hash === rec.hash) continue;
      const next: UnitStateRecord = {
        name: rec.name, machine, hash: rec.hash, loadState: 'loaded', activeState: want, subState: want === 'active' ? 'running' : 'dead', updatedAt: now,
      };
      states.set(stateKey, next);
      await client.put(stateKey).value(JSON.stringify(next)).exec();
      const ok = want === 'active' && !(this.o.badHashes?.has(rec.hash) ?? false);
      const health: HealthRecord = {
        unit: rec.name, machine, hash: rec.hash, status: ok ? 'healthy' : 'unhealthy', since: now, checkedAt: now, consecutive: 1,
      };
      healths.set(rec.name, health);
      await client.put(keys.health(machine, rec.name)).value(JSON.stringify(health)).exec();
    }
    for (const [key, st] of states) {
      if (!scheduled.has(key)) {
        // unscheduled: stopped and removed, its state and health records go (as a real agent's do)
        states.delete(key);
        await client.delete().key(key).exec();
        if (healths.get(st.name)?.machine === st.machine) healths.delete(st.name);
        await client.delete().key(keys.health(st.machine, st.name)).exec();
      }
    }
    for (const [service, prefix] of Object.entries(this.o.services)) {
      const mine = [...states.values()].filter((s) => s.name.startsWith(prefix));
      this.maxDownOf.set(service, Math.max(this.maxDownOf.get(service) ?? 0, mine.filter((s) => s.activeState !== 'active').length));
      await this.syncPresence(service, prefix, healths, now);
    }
  }

  /** The presence syncer: out when held or unhealthy, else in. */
  private async syncPresence(service: string, prefix: string, healths: Map<string, HealthRecord>, now: string): Promise<void> {
    const { client, keys } = this.o;
    const holds = new Set((await client.getAll().prefix(keys.presenceHolds(service)).keys()).map((k) => k.slice(keys.presenceHolds(service).length)));
    const statuses = new Map((await readAll<PresenceStatusRecord>(client, keys.presenceStatuses(service))).map(([, v]) => [v.unit, v]));
    for (const h of healths.values()) {
      if (!h.unit.startsWith(prefix)) continue;
      const state: PresenceStatusRecord['state'] = holds.has(h.unit) || h.status !== 'healthy' ? 'out' : 'in';
      if (statuses.get(h.unit)?.state === state) continue;
      const rec: PresenceStatusRecord = { service, unit: h.unit, state, sessions: 0, address: '127.0.0.1', updatedAt: now };
      await client.put(keys.presenceStatus(service, h.unit)).value(JSON.stringify(rec)).exec();
    }
  }
}

async function readAll<T>(client: Etcd3, prefix: string): Promise<[string, T][]> {
  const m = await client.getAll().prefix(prefix).strings();
  return Object.entries(m).map(([k, v]) => [k, JSON.parse(v) as T]);
}

/** A unit body and its hash; `v` makes bodies differ. */
export function body(v: string): { text: string; hash: string } {
  const text = `[Unit]\nDescription=app\n\n[Service]\nEnvironment=V=${v}\nExecStart=/bin/sleep infinity\n`;
  return { text, hash: unitHash(parseUnit(text)) };
}

/** Submits a template and its instances on `hash` (what `fleetx deploy` did before), launched. */
export async function submitService(client: Etcd3, keys: Keyspace, b: { text: string; hash: string }, names: string[], template = 'app@.service'): Promise<void> {
  await client.put(keys.body(b.hash)).value(b.text).exec();
  await client.put(keys.unit(template)).value(JSON.stringify({ name: template, hash: b.hash, targetState: 'inactive' } satisfies UnitRecord)).exec();
  for (const name of names) {
    const rec: UnitRecord = { name, hash: b.hash, targetState: 'launched', template };
    await client.put(keys.unit(name)).value(JSON.stringify(rec)).exec();
  }
}

export const POLICY: RolloutPolicy = { maxUnavailable: 1, surge: 0, minHealthyMs: 200, deadlineMs: 10_000, autoRevert: true };

/** A rollout record as the CLI creates it: every instance pending. */
export function rolloutRecord(o: {
  id: string;
  service?: string;
  template?: string;
  kind: RolloutRecord['kind'];
  toHash: string;
  names: string[];
  toRevision?: number;
  revertTo?: RolloutRecord['revertTo'];
  policy?: Partial<RolloutPolicy>;
  presence?: boolean;
  createdAt?: string;
}): RolloutRecord {
  const now = o.createdAt ?? new Date().toISOString();
  const policy = { ...POLICY, ...o.policy };
  return {
    id: o.id,
    service: o.service ?? 'app',
    template: o.template ?? 'app@.service',
    kind: o.kind,
    state: 'running',
    toHash: o.toHash,
    ...(o.toRevision !== undefined ? { toRevision: o.toRevision } : {}),
    ...(o.revertTo !== undefined ? { revertTo: o.revertTo } : {}),
    autoRevert: policy.autoRevert,
    presence: o.presence ?? true,
    policy,
    holder: { user: 'tester', host: 'test' },
    createdAt: now,
    updatedAt: now,
    drainTimeoutMs: 1000,
    instances: Object.fromEntries(o.names.map((unit) => [unit, { unit, phase: 'pending' as InstancePhase, since: now, targetHash: o.toHash }])),
  };
}
