import { describe, expect, it } from 'vitest';
import { schedule } from '../../src/scheduler/schedule.js';
import type { ScheduleInput } from '../../src/scheduler/types.js';
import { at, expectSchedule, machine, machines, unit, type Expected } from '../helpers/scheduler.js';

const apps = [1, 2, 3, 4].map((n) => unit(`app@${n}.service`, { conflicts: ['app@*.service'] }));

const scenarios: [string, ScheduleInput, Expected][] = [
  [
    'four conflicting app@N on three machines: three spread, the fourth unschedulable',
    { units: apps, machines: machines('m1', 'm2', 'm3'), current: [] },
    {
      place: ['app@1.service on m1', 'app@2.service on m2', 'app@3.service on m3'],
      unschedulable: ['app@4.service'],
      reasons: { 'app@4.service': 'no machine passes its constraints (rejected by Conflicts on 3)' },
      rejected: {
        'app@4.service': {
          m1: 'Conflicts: conflicts with app@1.service',
          m2: 'Conflicts: conflicts with app@2.service',
          m3: 'Conflicts: conflicts with app@3.service',
        },
      },
    },
  ],
  [
    'least loaded wins, ties broken by machine id',
    { units: [unit('a.service'), unit('b.service'), unit('c.service')], machines: machines('m2', 'm1'), current: [at('x.service on m9')] },
    {
      place: ['a.service on m1', 'b.service on m2', 'c.service on m1'],
      unschedule: ['x.service on m9'],
      reasons: { 'a.service on m1': 'least loaded eligible machine (0 units)', 'x.service on m9': 'unit destroyed' },
    },
  ],
  [
    'a target state of loaded is scheduled like launched',
    { units: [unit('a.service', {}, 'loaded')], machines: machines('m1'), current: [] },
    { place: ['a.service on m1'], unschedulable: [] },
  ],
  [
    'global unit goes to every machine',
    { units: [unit('g.service', { global: true })], machines: machines('m1', 'm2', 'm3'), current: [] },
    {
      place: ['g.service on m1', 'g.service on m2', 'g.service on m3'],
      reasons: { 'g.service on m2': 'global unit, machine passes its constraints' },
    },
  ],
  [
    'global unit follows a newly added machine and keeps the others',
    {
      units: [unit('g.service', { global: true })],
      machines: machines('m1', 'm2', 'm3'),
      current: [at('g.service on m1'), at('g.service on m2')],
    },
    { place: ['g.service on m3'], keep: ['g.service on m1', 'g.service on m2'], unschedule: [] },
  ],
  [
    'global unit honours metadata and conflicts',
    {
      units: [unit('g.service', { global: true, machineMetadata: { role: ['web'] }, conflicts: ['db.service'] }), unit('db.service', { machineId: 'm2' })],
      machines: [machine('m1', { role: 'web' }), machine('m2', { role: 'web' }), machine('m3', { role: 'db' })],
      current: [],
    },
    { place: ['db.service on m2', 'g.service on m1'], unschedulable: [] },
  ],
  [
    'global unit with no matching machine is unschedulable with a reason per machine',
    {
      units: [unit('g.service', { global: true, machineMetadata: { role: ['gpu'] } })],
      machines: [machine('m1', { role: 'web' }), machine('m2')],
      current: [],
    },
    {
      place: [],
      unschedulable: ['g.service'],
      rejected: {
        'g.service': {
          m1: 'MachineMetadata: requires role in [gpu], machine has role=web',
          m2: 'MachineMetadata: requires role in [gpu], machine has no role',
        },
      },
    },
  ],
  [
    'machine gone: its units move, the others stay',
    {
      units: [unit('a.service'), unit('b.service'), unit('c.service'), unit('d.service')],
      machines: machines('m1', 'm2', 'm4'),
      current: [at('a.service on m1'), at('b.service on m2'), at('c.service on m3'), at('d.service on m3')],
    },
    {
      keep: ['a.service on m1', 'b.service on m2'],
      unschedule: ['c.service on m3', 'd.service on m3'],
      place: ['c.service on m4', 'd.service on m1'],
      reasons: { 'c.service on m3': 'machine m3 is gone' },
    },
  ],
  [
    'stability: an unbalanced but valid schedule is left alone',
    {
      units: [unit('a.service'), unit('b.service'), unit('c.service')],
      machines: machines('m1', 'm2'),
      current: [at('a.service on m1'), at('b.service on m1'), at('c.service on m1')],
    },
    { keep: ['a.service on m1', 'b.service on m1', 'c.service on m1'], place: [], unschedule: [] },
  ],
  [
    'MachineOf chain is placed dependencies first, all on one machine',
    {
      units: [
        unit('a-sidecar.service', { machineOf: ['b-app.service'] }),
        unit('b-app.service', { machineOf: ['c-db.service'] }),
        unit('c-db.service'),
        unit('a-filler.service', { machineId: 'm1' }),
      ],
      machines: machines('m1', 'm2'),
      current: [],
    },
    {
      place: ['a-sidecar.service on m2', 'b-app.service on m2', 'c-db.service on m2', 'a-filler.service on m1'],
      reasons: { 'a-sidecar.service on m2': 'runs with b-app.service (MachineOf)' },
    },
  ],
  [
    'MachineOf a unit that does not exist waits for it',
    { units: [unit('app.service', { machineOf: ['db.service'] })], machines: machines('m1', 'm2'), current: [] },
    {
      unschedulable: ['app.service'],
      reasons: { 'app.service': 'waits for db.service, which is not placed' },
      rejected: { 'app.service': { m1: 'MachineOf: db.service is not placed', m2: 'MachineOf: db.service is not placed' } },
    },
  ],
  [
    'MachineOf an inactive unit waits, and leaves the machine it was on',
    {
      units: [unit('app.service', { machineOf: ['db.service'] }), unit('db.service', {}, 'inactive')],
      machines: machines('m1'),
      current: [at('app.service on m1'), at('db.service on m1')],
    },
    {
      unschedule: ['app.service on m1', 'db.service on m1'],
      unschedulable: ['app.service'],
      reasons: {
        'app.service on m1': 'violates MachineOf: db.service is not placed',
        'db.service on m1': 'target state inactive',
        'app.service': 'waits for db.service, which is not placed',
      },
    },
  ],
  [
    'MachineOf follows its target when the target moves',
    {
      units: [unit('app.service', { machineOf: ['db.service'] }), unit('db.service')],
      machines: machines('m2', 'm3'),
      current: [at('app.service on m1'), at('db.service on m1'), at('x.service on m3')],
    },
    { place: ['app.service on m2', 'db.service on m2'], unschedule: ['app.service on m1', 'db.service on m1', 'x.service on m3'] },
  ],
  [
    'MachineOf follows its target when the target no longer fits its machine',
    {
      units: [unit('app.service', { machineOf: ['db.service'] }), unit('db.service', { machineMetadata: { disk: ['ssd'] } })],
      machines: [machine('m1', { disk: 'hdd' }), machine('m2', { disk: 'ssd' })],
      current: [at('app.service on m1'), at('db.service on m1')],
    },
    {
      unschedule: ['app.service on m1', 'db.service on m1'],
      place: ['app.service on m2', 'db.service on m2'],
      reasons: {
        'app.service on m1': 'violates MachineOf: db.service does not stay on this machine',
        'db.service on m1': 'violates MachineMetadata: requires disk in [ssd], machine has disk=hdd',
        'app.service on m2': 'runs with db.service (MachineOf)',
      },
    },
  ],
  [
    'MachineOf cycle is unschedulable, not a loop',
    {
      units: [unit('a.service', { machineOf: ['b.service'] }), unit('b.service', { machineOf: ['a.service'] })],
      machines: machines('m1'),
      current: [at('a.service on m1'), at('b.service on m1')],
    },
    {
      unschedulable: ['a.service', 'b.service'],
      unschedule: ['a.service on m1', 'b.service on m1'],
      reasons: { 'a.service': 'MachineOf cycle with b.service', 'b.service': 'waits for a.service, which is not placed' },
      rejected: { 'a.service': { m1: 'MachineOf: b.service is in a MachineOf/Replaces cycle with it' } },
    },
  ],
  [
    'a unit whose MachineOf target sits downstream of a Replaces/MachineOf cycle is still placed beside it (fast-check seed -847302069)',
    {
      units: [
        unit('app.service', { machineOf: ['db.service'] }),
        unit('db.service'),
        unit('web.service', { replaces: ['db.service', 'g.service'], machineOf: ['g.service'] }, 'inactive'),
        unit('g.service', { replaces: ['a.service'] }, 'inactive'),
        unit('a.service', { machineOf: ['app.service'] }, 'inactive'),
      ],
      machines: machines('m1'),
      current: [],
    },
    { place: ['app.service on m1', 'db.service on m1'] },
  ],
  [
    'MachineID pins a unit; an unknown id makes it unschedulable',
    { units: [unit('a.service', { machineId: 'm2' }), unit('b.service', { machineId: 'm9' })], machines: machines('m1', 'm2'), current: [] },
    {
      place: ['a.service on m2'],
      reasons: { 'a.service on m2': 'MachineID=m2' },
      rejected: { 'b.service': { m1: 'MachineID: requires machine m9', m2: 'MachineID: requires machine m9' } },
    },
  ],
  [
    'a changed MachineID moves the unit',
    { units: [unit('a.service', { machineId: 'm2' })], machines: machines('m1', 'm2'), current: [at('a.service on m1')] },
    {
      unschedule: ['a.service on m1'],
      place: ['a.service on m2'],
      reasons: { 'a.service on m1': 'violates MachineID: requires machine m2' },
    },
  ],
  [
    'metadata: keys AND, values OR',
    {
      units: [unit('a.service', { machineMetadata: { region: ['us', 'eu'], disk: ['ssd'] } })],
      machines: [
        machine('m1', { region: 'us', disk: 'hdd' }),
        machine('m2', { region: 'eu', disk: 'ssd' }),
        machine('m3', { region: 'ap', disk: 'ssd' }),
        machine('m4', { region: 'us', disk: 'ssd' }),
      ],
      current: [at('b.service on m2')],
    },
    { place: ['a.service on m2'], unschedule: ['b.service on m2'] },
  ],
  [
    'metadata: a machine whose metadata changed loses the unit',
    {
      units: [unit('a.service', { machineMetadata: { disk: ['ssd'] } })],
      machines: [machine('m1', { disk: 'hdd' }), machine('m2', { disk: 'ssd' })],
      current: [at('a.service on m1')],
    },
    {
      unschedule: ['a.service on m1'],
      place: ['a.service on m2'],
      reasons: { 'a.service on m1': 'violates MachineMetadata: requires disk in [ssd], machine has disk=hdd' },
    },
  ],
  [
    'Replaces: the new unit takes the old one\'s machine, the old one moves',
    {
      units: [unit('new.service', { machineId: 'm1', replaces: ['old.service'] }), unit('old.service')],
      machines: machines('m1', 'm2'),
      current: [at('old.service on m1')],
    },
    {
      place: ['new.service on m1', 'old.service on m2'],
      unschedule: ['old.service on m1'],
      reasons: { 'new.service on m1': 'MachineID=m1; replaces old.service', 'old.service on m1': 'replaced by new.service' },
    },
  ],
  [
    'Replaces: the replaced unit takes its MachineOf followers along',
    {
      units: [
        unit('new.service', { machineId: 'm1', replaces: ['old.service'] }),
        unit('old.service'),
        unit('old-log.service', { machineOf: ['old.service'] }),
      ],
      machines: machines('m1', 'm2'),
      current: [at('old.service on m1'), at('old-log.service on m1')],
    },
    {
      place: ['new.service on m1', 'old.service on m2', 'old-log.service on m2'],
      unschedule: ['old.service on m1', 'old-log.service on m1'],
      reasons: { 'old-log.service on m1': 'must run with old.service, which new.service replaces here' },
    },
  ],
  [
    'Replaces: displacing is a last resort, a free machine is preferred even if busier',
    {
      units: [unit('new.service', { replaces: ['old.service'] }), unit('old.service'), unit('x.service'), unit('y.service')],
      machines: machines('m1', 'm2'),
      current: [at('old.service on m1'), at('x.service on m2'), at('y.service on m2')],
    },
    { place: ['new.service on m2'], keep: ['old.service on m1', 'x.service on m2', 'y.service on m2'] },
  ],
  [
    'Replaces: a unit never stays with a unit it replaces',
    {
      units: [unit('new.service', { replaces: ['old.service'] }), unit('old.service')],
      machines: machines('m1', 'm2'),
      current: [at('old.service on m1'), at('new.service on m1')],
    },
    {
      keep: ['new.service on m1'],
      unschedule: ['old.service on m1'],
      place: ['old.service on m2'],
      reasons: { 'old.service on m1': 'violates Replaces: replaced by new.service' },
    },
  ],
  [
    'Replaces: nowhere else to go makes the replaced unit unschedulable',
    {
      units: [unit('new.service', { replaces: ['old.service'] }), unit('old.service')],
      machines: machines('m1'),
      current: [at('old.service on m1')],
    },
    {
      place: ['new.service on m1'],
      unschedule: ['old.service on m1'],
      rejected: { 'old.service': { m1: 'Replaces: replaced by new.service' } },
    },
  ],
  [
    'inactive units are unscheduled and never placed or reported',
    {
      units: [unit('a.service', {}, 'inactive'), unit('b.service', {}, 'inactive')],
      machines: machines('m1'),
      current: [at('a.service on m1')],
    },
    { unschedule: ['a.service on m1'], place: [], unschedulable: [], reasons: { 'a.service on m1': 'target state inactive' } },
  ],
  [
    'destroyed units are unscheduled, even from gone machines',
    { units: [], machines: machines('m1'), current: [at('gone.service on m1'), at('gone.service on m7')] },
    { unschedule: ['gone.service on m1', 'gone.service on m7'], reasons: { 'gone.service on m7': 'unit destroyed' } },
  ],
  [
    'two conflicting units found together: the first by name stays',
    {
      units: [unit('a.service', { conflicts: ['b.service'] }), unit('b.service')],
      machines: machines('m1', 'm2'),
      current: [at('a.service on m1'), at('b.service on m1')],
    },
    {
      keep: ['a.service on m1'],
      unschedule: ['b.service on m1'],
      place: ['b.service on m2'],
      reasons: { 'b.service on m1': 'violates Conflicts: conflicts with a.service' },
    },
  ],
  [
    'a non-global unit assigned twice keeps one assignment',
    { units: [unit('a.service')], machines: machines('m1', 'm2'), current: [at('a.service on m2'), at('a.service on m1')] },
    { keep: ['a.service on m1'], unschedule: ['a.service on m2'], reasons: { 'a.service on m2': 'duplicate assignment, kept on m1' } },
  ],
  [
    'no live machines',
    { units: [unit('a.service')], machines: [], current: [at('a.service on m1')] },
    { unschedule: ['a.service on m1'], unschedulable: ['a.service'], reasons: { 'a.service': 'no live machines' } },
  ],
];

describe('schedule: scenarios', () => {
  it.each(scenarios)('%s', (_name, input, want) => {
    expectSchedule(input, want);
  });

  it('rejects duplicate unit names and machine ids', () => {
    expect(() => schedule({ units: [unit('a.service'), unit('a.service')], machines: [], current: [] })).toThrow(/duplicate unit a.service/);
    expect(() => schedule({ units: [], machines: machines('m1', 'm1'), current: [] })).toThrow(/duplicate machine m1/);
  });
});
