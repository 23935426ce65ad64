import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnitChanges, unitNameOfPath, unitPathOf } from '../../src/systemd/status.js';
import type { UnitStatus } from '../../src/systemd/types.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('unit object paths', () => {
  it.each([
    ['bench@1.service', '/org/freedesktop/systemd1/unit/bench_401_2eservice'],
    ['dbus.service', '/org/freedesktop/systemd1/unit/dbus_2eservice'],
  ])('%s ↔ %s (systemd bus_label_escape)', (name, path) => {
    expect(unitPathOf(name)).toBe(path);
    expect(unitNameOfPath(path)).toBe(name);
  });

  it('unitNameOfPath undoes unitPathOf for any name', () => {
    fc.assert(fc.property(fc.string({ minLength: 1, unit: 'grapheme' }), (name) => {
      expect(unitNameOfPath(unitPathOf(name))).toBe(name);
    }));
  });
});

describe('UnitChanges and LoadState', () => {
  const setup = () => {
    const emitted: UnitStatus[] = [];
    const asked: string[] = [];
    const changes = new UnitChanges((s) => emitted.push(s), async (path) => (asked.push(path), 'loaded'));
    return { emitted, asked, changes };
  };
  const active = { ActiveState: 'active', SubState: 'running' };

  it('asks systemd for the LoadState of a unit first seen through a signal', async () => {
    const { emitted, asked, changes } = setup();
    changes.propertiesChanged(unitPathOf('a.service'), 'org.freedesktop.systemd1.Unit', active);
    await tick();
    await tick();
    expect(asked).toEqual([unitPathOf('a.service')]);
    expect(emitted).toEqual([{ name: 'a.service', loadState: 'loaded', activeState: 'active', subState: 'running' }]);
  });

  it.each([
    ['before the state signal', true],
    ['after the state signal, before the change is reported', false],
  ])('a start job that ended done (%s) makes the LoadState known', async (_, jobFirst) => {
    const { emitted, asked, changes } = setup();
    if (jobFirst) changes.loadedByJob('a.service');
    changes.propertiesChanged(unitPathOf('a.service'), 'org.freedesktop.systemd1.Unit', active);
    if (!jobFirst) changes.loadedByJob('a.service');
    await tick();
    await tick();
    expect(asked).toEqual([]);
    expect(emitted).toEqual([{ name: 'a.service', loadState: 'loaded', activeState: 'active', subState: 'running' }]);
  });
});
