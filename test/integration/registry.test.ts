import { beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { FleetxError } from '../../src/errors/errors.js';
import type { ConnectionOptions } from '../../src/registry/connection.js';
import { collectBodies } from '../../src/registry/gc.js';
import { keyspace } from '../../src/registry/keys.js';
import type { MachineRecord, UnitRecord } from '../../src/registry/records.js';
import { Registry } from '../../src/registry/registry.js';
import { rejection } from '../helpers/errors.js';
import { useEtcd } from '../helpers/etcd-fixture.js';

const NOW = new Date('2026-01-02T03:04:05.000Z');

const etcd = useEtcd();
let conn: ConnectionOptions;
let client: Etcd3;

beforeAll(() => {
  ({ conn, client } = etcd);
});

/** Each test gets its own prefix, so tests share one etcd without seeing each other. */
function fresh(): Registry {
  const prefix = etcd.fresh();
  return new Registry(client, keyspace(prefix), { connection: { ...conn, prefix }, now: () => NOW });
}

const unit = (name: string, hash: string, targetState: UnitRecord['targetState'] = 'inactive'): UnitRecord => ({ name, hash, targetState });

describe('bodies', () => {
  it('putBody stores a body once; a second put of the same hash does not overwrite', async () => {
    const r = fresh();
    await r.putBody('h1', 'first');
    await r.putBody('h1', 'second');
    expect(await r.getBody('h1')).toBe('first');
    expect(await r.getBody('missing')).toBeUndefined();
  });
});

describe('createUnit', () => {
  it('creates the unit and its body in one go, stamped with the injected clock', async () => {
    const r = fresh();
    const res = await r.createUnit(unit('app@1.service', 'aaa', 'loaded'), 'TEXT-A', { replace: false });
    expect(res.outcome).toBe('created');
    expect(await r.getUnit('app@1.service')).toEqual({ ...unit('app@1.service', 'aaa', 'loaded'), updatedAt: NOW.toISOString() });
    expect(await r.getBody('aaa')).toBe('TEXT-A');
    expect(await r.getUnit('nope.service')).toBeUndefined();
  });

  it('an identical resubmission is a no-op that keeps the target state', async () => {
    const r = fresh();
    await r.createUnit(unit('a.service', 'aaa'), 'A', { replace: false });
    await r.setTargetState('a.service', 'launched');
    const before = await r.snapshot();
    const res = await r.createUnit(unit('a.service', 'aaa', 'inactive'), 'A', { replace: false });
    expect(res.outcome).toBe('unchanged');
    expect(res.unit.targetState).toBe('launched');
    expect(await r.snapshot()).toEqual(before);
  });

  it('different contents without replace is a conflict and leaves etcd unchanged', async () => {
    const r = fresh();
    await r.createUnit(unit('app@1.service', 'aaa'), 'A', { replace: false });
    const before = await r.snapshot();
    const e = await rejection(r.createUnit(unit('app@1.service', 'bbb'), 'B', { replace: false }));
    expect(e.kind).toBe('conflict');
    expect(e.message).toBe('unit app@1.service already exists with different contents; use --replace to update it');
    expect(await r.snapshot()).toEqual(before);
  });

  it('replace swaps the hash, keeps the target state and removes the old body', async () => {
    const r = fresh();
    await r.createUnit(unit('a.service', 'aaa'), 'A', { replace: false });
    await r.setTargetState('a.service', 'launched');
    const res = await r.createUnit(unit('a.service', 'bbb', 'inactive'), 'B', { replace: true });
    expect(res.outcome).toBe('replaced');
    expect(await r.getUnit('a.service')).toMatchObject({ hash: 'bbb', targetState: 'launched' });
    expect(await r.getBody('bbb')).toBe('B');
    expect(await r.getBody('aaa')).toBeUndefined();
  });

  it('replace keeps the old body while another unit still uses it', async () => {
    const r = fresh();
    await r.createUnit(unit('a.service', 'shared'), 'S', { replace: false });
    await r.createUnit(unit('b.service', 'shared'), 'S', { replace: false });
    await r.createUnit(unit('a.service', 'new'), 'N', { replace: true });
    expect(await r.getBody('shared')).toBe('S');
  });

  it.each([
    ['a/b.service', 'h'],
    ['', 'h'],
    ['a.service', '../x'],
  ])('rejects name %j / hash %j that would escape its key, writing nothing', async (name, hash) => {
    const r = fresh();
    const e = await rejection(r.createUnit(unit(name, hash), 'X', { replace: false }));
    expect(e.kind).toBe('invalid');
    expect(await r.snapshot()).toEqual({});
  });

  it('listUnits returns all units sorted by name', async () => {
    const r = fresh();
    for (const n of ['c.service', 'a.service', 'b@2.service']) await r.createUnit(unit(n, `h-${n}`), n, { replace: false });
    expect((await r.listUnits()).map((u) => u.name)).toEqual(['a.service', 'b@2.service', 'c.service']);
  });
});

describe('setTargetState', () => {
  it('walks through the target states', async () => {
    const r = fresh();
    await r.createUnit(unit('a.service', 'aaa'), 'A', { replace: false });
    for (const s of ['loaded', 'launched', 'inactive', 'launched'] as const) {
      expect((await r.setTargetState('a.service', s)).targetState).toBe(s);
      expect((await r.getUnit('a.service'))?.targetState).toBe(s);
    }
  });

  it('a missing unit is not-found and nothing is written', async () => {
    const r = fresh();
    const e = await rejection(r.setTargetState('ghost.service', 'launched'));
    expect(e.kind).toBe('not-found');
    expect(await r.snapshot()).toEqual({});
  });

  it('racing a replace never loses either update (compare-and-swap)', async () => {
    const r = fresh();
    for (let round = 0; round < 15; round++) {
      const name = `race${round}.service`;
      await r.createUnit(unit(name, `old${round}`), 'OLD', { replace: false });
      const ops = [
        () => r.createUnit(unit(name, `new${round}`), 'NEW', { replace: true }),
        () => r.setTargetState(name, 'launched'),
        () => r.setTargetState(name, 'launched'),
      ];
      if (round % 2) ops.reverse();
      await Promise.all(ops.map((op) => op()));
      expect(await r.getUnit(name)).toMatchObject({ hash: `new${round}`, targetState: 'launched' });
      expect(await r.getBody(`old${round}`)).toBeUndefined();
    }
  });

  it('many concurrent writers all succeed and the last committed write wins', async () => {
    const r = fresh();
    await r.createUnit(unit('a.service', 'aaa'), 'A', { replace: false });
    const states = ['loaded', 'launched', 'inactive', 'launched', 'loaded', 'inactive', 'launched', 'loaded'] as const;
    const results = await Promise.all(states.map((s) => r.setTargetState('a.service', s)));
    expect(results.map((u) => u.targetState)).toEqual(states);
    const final = await r.getUnit('a.service');
    expect(states).toContain(final?.targetState);
    expect(final?.hash).toBe('aaa');
  });
});

describe('destroyUnit', () => {
  it('removes the unit, its schedule entries, its unschedulable reason and its body', async () => {
    const r = fresh();
    const k = r.keys;
    await r.createUnit(unit('a.service', 'aaa'), 'A', { replace: false });
    await r.createUnit(unit('b.service', 'bbb'), 'B', { replace: false });
    await client.put(k.schedule('m1', 'a.service')).value(JSON.stringify({ name: 'a.service', hash: 'aaa', targetState: 'launched' }));
    await client.put(k.schedule('m2', 'a.service')).value(JSON.stringify({ name: 'a.service', hash: 'aaa', targetState: 'launched' }));
    await client.put(k.schedule('m1', 'b.service')).value(JSON.stringify({ name: 'b.service', hash: 'bbb', targetState: 'launched' }));
    await client.put(k.unschedulable('a.service')).value(JSON.stringify({ name: 'a.service', reason: 'x', machines: {}, updatedAt: 'now' }));

    await r.destroyUnit('a.service');

    expect(Object.keys(await r.snapshot())).toEqual([k.body('bbb'), k.schedule('m1', 'b.service'), k.unit('b.service')]);
  });

  it('removes more schedule entries than fit in one etcd transaction', async () => {
    const r = fresh();
    await r.createUnit(unit('global.service', 'ggg'), 'G', { replace: false });
    for (let i = 0; i < 230; i++) {
      await client.put(r.keys.schedule(`m${i}`, 'global.service')).value(JSON.stringify({ name: 'global.service', hash: 'ggg', targetState: 'launched' }));
    }
    await r.destroyUnit('global.service');
    expect(await r.snapshot()).toEqual({});
  });

  it('keeps a body another unit still uses', async () => {
    const r = fresh();
    await r.createUnit(unit('a.service', 'shared'), 'S', { replace: false });
    await r.createUnit(unit('b.service', 'shared'), 'S', { replace: false });
    await r.destroyUnit('a.service');
    expect(await r.getBody('shared')).toBe('S');
  });

  it('a missing unit is not-found', async () => {
    const r = fresh();
    expect((await rejection(r.destroyUnit('ghost.service'))).kind).toBe('not-found');
  });
});

describe('gcBodies', () => {
  it('deletes unreferenced bodies only', async () => {
    const r = fresh();
    await r.createUnit(unit('a.service', 'used'), 'U', { replace: false });
    await r.putBody('orphan1', 'O1');
    await r.putBody('orphan2', 'O2');
    expect((await r.gcBodies()).sort()).toEqual(['orphan1', 'orphan2']);
    expect(await r.getBody('used')).toBe('U');
    expect(await r.gcBodies()).toEqual([]);
  });

  it('never deletes a body a submit wrote between the scan and the delete', async () => {
    const r = fresh();
    await r.putBody('hhh', 'H');
    // The orphan looks like garbage at scan time; a submit referencing it
    // lands right after the scan. A gc without the range compare would delete it.
    const deleted = await collectBodies(client, r.keys, undefined, {
      afterScan: async (round) => {
        if (round === 0) await r.createUnit(unit('late.service', 'hhh'), 'H', { replace: false });
      },
    });
    expect(deleted).toEqual([]);
    expect(await r.getBody('hhh')).toBe('H');
  });

  it('never deletes a body a unit was pointed at between scan and delete, even without re-putting it', async () => {
    const r = fresh();
    await r.putBody('hhh', 'H');
    // Another writer (not createUnit) re-points a unit at an existing body.
    const deleted = await collectBodies(client, r.keys, undefined, {
      afterScan: async (round) => {
        if (round === 0) await client.put(r.keys.unit('other.service')).value(JSON.stringify(unit('other.service', 'hhh')));
      },
    });
    expect(deleted).toEqual([]);
    expect(await r.getBody('hhh')).toBe('H');
  });

  it('re-checks a body re-put between scan and delete, then collects it if still unused', async () => {
    const r = fresh();
    await r.putBody('hhh', 'H');
    let rounds = 0;
    const deleted = await collectBodies(client, r.keys, undefined, {
      afterScan: async (round) => {
        rounds = round + 1;
        if (round === 0) await client.put(r.keys.body('hhh')).value('H');
      },
    });
    expect(rounds).toBe(2);
    expect(deleted).toEqual(['hhh']);
  });

  it('concurrent submits and gcs never leave a unit without its body', async () => {
    const r = fresh();
    for (let i = 0; i < 20; i++) {
      await r.putBody(`h${i}`, `B${i}`);
      await Promise.all([r.gcBodies(), r.createUnit(unit(`u${i}.service`, `h${i}`), `B${i}`, { replace: false }), r.gcBodies()]);
    }
    for (const u of await r.listUnits()) expect(await r.getBody(u.hash)).toBeDefined();
  });
});

describe('machines, states, schedules', () => {
  const machine = (id: string, metadata: Record<string, string>): MachineRecord => ({
    id,
    ip: '10.0.0.1',
    metadata,
    version: '0.1.0',
    startedAt: NOW.toISOString(),
  });

  it('listMachines merges set-metadata overrides over what the agent reports', async () => {
    const r = fresh();
    await client.put(r.keys.machine('m2')).value(JSON.stringify(machine('m2', { role: 'web' })));
    await client.put(r.keys.machine('m1')).value(JSON.stringify(machine('m1', { role: 'db', disk: 'ssd' })));
    await r.setMachineMetadata('m1', { role: 'web', zone: 'a' });
    await r.setMachineMetadata('gone', { role: 'x' });
    const ms = await r.listMachines();
    expect(ms.map((m) => [m.id, m.metadata])).toEqual([
      ['m1', { role: 'web', disk: 'ssd', zone: 'a' }],
      ['m2', { role: 'web' }],
    ]);
    await r.setMachineMetadata('m1', {});
    expect((await r.listMachines())[0]?.metadata).toEqual({ role: 'db', disk: 'ssd' });
  });

  it('lists states, schedules (with machine) and unschedulable reasons', async () => {
    const r = fresh();
    const k = r.keys;
    const st = { name: 'a.service', machine: 'm1', hash: 'h', loadState: 'loaded', activeState: 'active', subState: 'running', updatedAt: 'x' };
    await client.put(k.state('m1', 'a.service')).value(JSON.stringify(st));
    await client.put(k.schedule('m2', 'b.service')).value(JSON.stringify({ name: 'b.service', hash: 'h', targetState: 'launched' }));
    await client.put(k.schedule('m1', 'b.service')).value(JSON.stringify({ name: 'b.service', hash: 'h', targetState: 'launched' }));
    await client.put(k.unschedulable('c.service')).value(JSON.stringify({ name: 'c.service', reason: 'no machine', machines: { m1: 'conflict' }, updatedAt: 'x' }));
    expect(await r.listStates()).toEqual([st]);
    expect((await r.listSchedules()).map((s) => [s.name, s.machine])).toEqual([
      ['b.service', 'm1'],
      ['b.service', 'm2'],
    ]);
    expect(await r.listUnschedulable()).toEqual([{ name: 'c.service', reason: 'no machine', machines: { m1: 'conflict' }, updatedAt: 'x' }]);
  });

  it('a corrupt record is an internal error naming the key', async () => {
    const r = fresh();
    await client.put(r.keys.unit('bad.service')).value('{not json');
    const e = await rejection(r.listUnits());
    expect(e.kind).toBe('internal');
    expect(e.message).toContain(r.keys.unit('bad.service'));
  });
});

describe('changeUnits (bulk)', () => {
  const toLoaded = (_name: string, current: UnitRecord | undefined) =>
    current && current.targetState !== 'loaded' ? { type: 'put' as const, record: { ...current, targetState: 'loaded' as const } } : undefined;

  it('re-reads and re-decides a unit changed after the snapshot, keeping the other writer\'s change', async () => {
    const r = fresh();
    for (const n of ['a.service', 'b.service']) await r.createUnit(unit(n, 'h'), 'BODY', { replace: false });
    const snapshot = await r.readUnits();
    // another writer changes b after our read
    await client.put(r.keys.unit('b.service')).value(JSON.stringify({ ...unit('b.service', 'h'), submittedBy: 'other' }));
    const seen: string[] = [];
    const applied = await r.changeUnits(snapshot, ['a.service', 'b.service'], (name, current) => {
      seen.push(`${name}:${current?.submittedBy ?? '-'}`);
      return toLoaded(name, current);
    });
    expect(applied.map((a) => a.name).sort()).toEqual(['a.service', 'b.service']);
    expect(seen).toContain('b.service:other'); // decided again on the fresh record
    expect(await r.getUnit('b.service')).toMatchObject({ targetState: 'loaded', submittedBy: 'other' });
    expect(await r.getUnit('a.service')).toMatchObject({ targetState: 'loaded' });
  });

  it('destroys units with all their schedule entries, more than fit in one transaction, and collects the body', async () => {
    const r = fresh();
    await r.createUnit(unit('g.service', 'hg', 'launched'), 'G', { replace: false });
    for (let m = 0; m < 250; m++) await client.put(r.keys.schedule(`m${m}`, 'g.service')).value('{}');
    await r.createUnit(unit('x.service', 'hx', 'launched'), 'X', { replace: false });
    await client.put(r.keys.schedule('m1', 'x.service')).value('{}');
    const applied = await r.changeUnits(await r.readUnits(), ['g.service', 'x.service'], () => ({ type: 'delete' }));
    expect(applied.map((a) => a.name).sort()).toEqual(['g.service', 'x.service']);
    expect(await r.snapshot()).toEqual({});
  });

  it('a unit created by someone else after the snapshot is not overwritten by a create', async () => {
    const r = fresh();
    const snapshot = await r.readUnits();
    await r.createUnit(unit('n.service', 'theirs', 'launched'), 'THEIRS', { replace: false });
    await r.changeUnits(snapshot, ['n.service'], (_name, current) =>
      current ? undefined : { type: 'put', record: unit('n.service', 'mine'), body: { hash: 'mine', text: 'MINE' } },
    );
    expect(await r.getUnit('n.service')).toMatchObject({ hash: 'theirs', targetState: 'launched' });
  });
});
