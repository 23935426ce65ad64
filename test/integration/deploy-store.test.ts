/**
 * The deploy store and follow loop against a real etcd: revision numbers
 * under concurrency, the lock under concurrent deploys, body gc keeping
 * bodies that only revisions reference, watch errors after compaction,
 * detaching.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { FleetxError } from '../../src/errors/errors.js';
import { keyspace } from '../../src/registry/keys.js';
import { Registry } from '../../src/registry/registry.js';
import { DeployStore } from '../../src/deploy/store.js';
import { followRollout } from '../../src/cli/follow/follow.js';
import type { Renderer } from '../../src/cli/follow/render.js';
import type { RolloutRecord } from '../../src/rollout/types.js';
import { useEtcd } from '../helpers/etcd-fixture.js';

const etcd = useEtcd();
let client: Etcd3;
const conn = () => ({ endpoints: etcd.server.endpoints, requestTimeoutMs: 5000, prefix: '/x' });

beforeAll(() => {
  client = etcd.client;
});

function fresh() {
  const keys = etcd.freshKeys('s');
  return { keys, store: new DeployStore(client, keys, conn()), registry: new Registry(client, keys, { connection: conn(), now: () => new Date() }) };
}

function rollout(id: string, over: Partial<RolloutRecord> = {}): RolloutRecord {
  const now = new Date().toISOString();
  return {
    id, service: 'app', template: 'app@.service', kind: 'deploy', state: 'running', toRevision: 1, toHash: 'h1', autoRevert: true, presence: false,
    policy: { maxUnavailable: 1, surge: 0, minHealthyMs: 0, deadlineMs: 1000, autoRevert: true },
    holder: { user: 'u', host: 'h' }, createdAt: now, updatedAt: now, instances: {}, ...over,
  };
}

const recorder = (): Renderer & { seen: RolloutRecord[] } => {
  const seen: RolloutRecord[] = [];
  return { seen, show: (r) => void seen.push(r), close() {} };
};

async function moveToHistory(keys: ReturnType<typeof keyspace>, r: RolloutRecord, state: RolloutRecord['state']) {
  await client.if(keys.rollout(r.service), 'Create', '>', 0)
    .then(client.put(keys.rolloutHistory(r.service, r.id)).value(JSON.stringify({ ...r, state })), client.delete().key(keys.rollout(r.service)))
    .commit();
}

describe('DeployStore', () => {
  it('gives concurrent putRevision calls distinct consecutive numbers', async () => {
    const { store } = fresh();
    const made = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.putRevision({ service: 'app', hash: `h${i}`, values: {}, createdAt: '', createdBy: 't', healthy: false }, `body ${i}`)),
    );
    expect(made.map((r) => r.revision).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect((await store.listRevisions('app')).map((r) => r.revision)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('lets exactly one of several concurrent rollouts take the lock', async () => {
    const { store } = fresh();
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => store.createRollout(rollout(`r${i}`, { holder: { user: `u${i}`, host: 'h' } }))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as FleetxError);
    expect(refused.every((e) => e.kind === 'conflict' && /a rollout of app is already running: deploy to revision 1 by u\d@h/.test(e.message))).toBe(true);
  });

  it('gc keeps bodies referenced only by revisions, and still deletes unreferenced ones', async () => {
    const { store, registry, keys } = fresh();
    const rev = await store.putRevision({ service: 'app', hash: 'kept', values: {}, createdAt: '', createdBy: 't', healthy: true }, '[Service]\nExecStart=/bin/true\n');
    await registry.createUnit({ name: 'app@.service', hash: 'kept', targetState: 'inactive' }, '[Service]\nExecStart=/bin/true\n', { replace: false });
    await registry.createUnit({ name: 'other.service', hash: 'gone', targetState: 'inactive' }, '[Service]\nExecStart=/bin/false\n', { replace: false });
    await registry.destroyUnit('app@.service');
    await registry.destroyUnit('other.service');
    await registry.gcBodies();
    expect(await client.get(keys.body(rev.hash)).string()).toBe('[Service]\nExecStart=/bin/true\n');
    expect(await client.get(keys.body('gone')).string()).toBeNull();
  });

  it('a new rollout clears a control record left from an earlier one', async () => {
    const { store, keys } = fresh();
    await client.put(keys.rolloutControl('app')).value(JSON.stringify({ command: 'abort', by: 'u', at: '' }));
    await store.createRollout(rollout('r1'));
    expect(await client.get(keys.rolloutControl('app')).string()).toBeNull();
  });

  it('control records need a running rollout', async () => {
    const { store, keys } = fresh();
    await expect(store.writeControl('app', { command: 'pause', by: 'u', at: '' })).rejects.toMatchObject({ kind: 'not-found' });
    await store.createRollout(rollout('r1'));
    await store.writeControl('app', { command: 'abort', by: 'u', at: 'now' });
    expect(JSON.parse((await client.get(keys.rolloutControl('app')).string())!)).toEqual({ command: 'abort', by: 'u', at: 'now' });
  });
});

describe('followRollout', () => {
  it('shows the record as it changes and ends with the history record', async () => {
    const { store, keys } = fresh();
    await store.createRollout(rollout('r1'));
    const ui = recorder();
    const following = followRollout(store, { service: 'app', renderer: ui });
    while (ui.seen.length === 0) await new Promise((r) => setTimeout(r, 25));
    await client.put(keys.rollout('app')).value(JSON.stringify({ ...rollout('r1'), state: 'paused' }));
    while (ui.seen.at(-1)?.state !== 'paused') await new Promise((r) => setTimeout(r, 25));
    await moveToHistory(keys, rollout('r1'), 'succeeded');
    const done = await following;
    expect(done.state).toBe('succeeded');
    expect(ui.seen.map((r) => r.state)).toEqual([rollout('r1').state, 'paused', 'succeeded']);
  });

  it('reads history when the rollout already ended, and detaches on SIGTERM with 143', async () => {
    const { store, keys } = fresh();
    await store.createRollout(rollout('r1'));
    await moveToHistory(keys, rollout('r1'), 'aborted');
    expect((await followRollout(store, { service: 'app', id: 'r1', renderer: recorder() })).state).toBe('aborted');

    await store.createRollout(rollout('r2'));
    const ac = new AbortController();
    const following = followRollout(store, { service: 'app', renderer: recorder(), signal: ac.signal });
    setTimeout(() => ac.abort('SIGTERM'), 100);
    const err = (await following.catch((e) => e)) as FleetxError;
    expect(err.exitCode).toBe(143);
    expect(err.message).toBe('Detached: the rollout of app continues. Follow it with: fleetx rollout status app --follow');
    expect(await store.getRollout('app')).toMatchObject({ id: 'r2', state: 'running' });
  });

  it('a new rollout taking the lock ends the one being followed', async () => {
    const { store, keys } = fresh();
    await store.createRollout(rollout('r1'));
    const following = followRollout(store, { service: 'app', id: 'r1', renderer: recorder() });
    await new Promise((r) => setTimeout(r, 100));
    // history + new lock in one go, as if the next deploy came right after
    await client.if(keys.rollout('app'), 'Create', '>', 0)
      .then(client.put(keys.rolloutHistory('app', 'r1')).value(JSON.stringify(rollout('r1', { state: 'succeeded' }))), client.put(keys.rollout('app')).value(JSON.stringify(rollout('r2'))))
      .commit();
    expect((await following).state).toBe('succeeded');
  });
});
