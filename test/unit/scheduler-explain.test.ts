import { describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { explain } from '../../src/scheduler/explain.js';
import { processingOrder } from '../../src/scheduler/order.js';
import type { ScheduleInput } from '../../src/scheduler/types.js';
import { at, machine, machines, unit } from '../helpers/scheduler.js';

const apps = [1, 2, 3, 4].map((n) => unit(`app@${n}.service`, { conflicts: ['app@*.service'] }));
const cluster: ScheduleInput = {
  units: [
    ...apps,
    unit('web.service', { machineMetadata: { role: ['web'] } }),
    unit('off.service', {}, 'inactive'),
    unit('pinned.service', { machineId: 'm2' }),
  ],
  machines: [machine('m1', { role: 'web' }), machine('m2'), machine('m3')],
  current: [at('pinned.service on m1'), at('web.service on m1')],
};

describe('explain', () => {
  it('names the filter that rejected each machine for an unschedulable unit', () => {
    const e = explain(cluster, 'app@4.service');
    expect(e.status).toBe('unschedulable');
    expect(e.summary).toBe('no machine passes its constraints (rejected by Conflicts on 3)');
    expect(e.machines).toEqual([
      // web.service already loads m1, so app@1 and app@2 take the empty m2 and m3 first
      { machine: 'm1', outcome: 'rejected', filter: 'Conflicts', reason: 'conflicts with app@3.service' },
      { machine: 'm2', outcome: 'rejected', filter: 'Conflicts', reason: 'conflicts with app@1.service' },
      { machine: 'm3', outcome: 'rejected', filter: 'Conflicts', reason: 'conflicts with app@2.service' },
    ]);
  });

  it('shows where a kept unit runs and which other machines would take it', () => {
    const e = explain(cluster, 'web.service');
    expect(e.status).toBe('kept');
    expect(e.summary).toBe('kept on m1');
    expect(e.machines).toEqual([
      { machine: 'm1', outcome: 'assigned', reason: 'kept: still passes its constraints' },
      { machine: 'm2', outcome: 'rejected', filter: 'MachineMetadata', reason: 'requires role in [web], machine has no role' },
      { machine: 'm3', outcome: 'rejected', filter: 'MachineMetadata', reason: 'requires role in [web], machine has no role' },
    ]);
  });

  it('explains a move', () => {
    const e = explain(cluster, 'pinned.service');
    expect(e.status).toBe('moved');
    expect(e.summary).toBe('moved from m1 (violates MachineID: requires machine m2) to m2');
    expect(e.machines.map((m) => [m.machine, m.outcome, m.filter])).toEqual([
      ['m1', 'rejected', 'MachineID'],
      ['m2', 'assigned', undefined],
      ['m3', 'rejected', 'MachineID'],
    ]);
  });

  it('explains a fresh placement, with the machines that passed but ranked lower', () => {
    const e = explain({ units: [unit('a.service')], machines: machines('m1', 'm2'), current: [] }, 'a.service');
    expect(e.status).toBe('placed');
    expect(e.summary).toBe('placed on m1: least loaded eligible machine (0 units)');
    expect(e.machines[1]).toEqual({ machine: 'm2', outcome: 'eligible', reason: 'passes every filter' });
  });

  it('says an inactive unit is not scheduled', () => {
    expect(explain(cluster, 'off.service')).toMatchObject({ status: 'inactive', machines: [] });
  });

  it('throws not-found for an unknown unit', () => {
    let err: unknown;
    try {
      explain(cluster, 'nope.service');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FleetxError);
    expect((err as FleetxError).kind).toBe('not-found');
  });
});

describe('processing order', () => {
  it.each([
    ['names when nothing depends on anything', [unit('b.service'), unit('a.service')], ['a.service', 'b.service']],
    [
      'MachineOf targets before their followers',
      [unit('a.service', { machineOf: ['b.service'] }), unit('b.service', { machineOf: ['c.service'] }), unit('c.service')],
      ['c.service', 'b.service', 'a.service'],
    ],
    ['a replacing unit before the unit it replaces', [unit('new.service', { replaces: ['a.service'] }), unit('a.service')], ['new.service', 'a.service']],
    [
      'a cycle broken at the smallest name',
      [unit('b.service', { machineOf: ['a.service'] }), unit('a.service', { machineOf: ['b.service'] }), unit('0.service')],
      ['0.service', 'a.service', 'b.service'],
    ],
    [
      'a unit downstream of a cycle waits for the whole cycle, though its name is smaller',
      [
        unit('a.service', { machineOf: ['z.service'] }),
        unit('y.service', { machineOf: ['z.service'] }),
        unit('z.service', { machineOf: ['y.service'] }),
      ],
      ['y.service', 'z.service', 'a.service'],
    ],
    ['targets that do not exist are ignored', [unit('a.service', { machineOf: ['zz.service'] })], ['a.service']],
  ])('%s', (_name, units, want) => {
    expect(processingOrder(units).names).toEqual(want);
    expect(processingOrder([...units].reverse()).names).toEqual(want);
  });
});
