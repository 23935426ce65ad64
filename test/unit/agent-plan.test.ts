import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { planTasks } from '../../src/agent/plan.js';
import { isRunning, type CurrentUnit, type DesiredUnit, type Task } from '../../src/agent/types.js';
import type { TargetState } from '../../src/registry/records.js';

const U = 'app.service';
const H = 'h1';

type Want = 'absent' | TargetState;
type Have = 'none' | 'inactive' | 'active' | 'failed';

function desiredOf(want: Want, hasInstall: boolean): Map<string, DesiredUnit> {
  if (want === 'absent') return new Map();
  return new Map([[U, { name: U, hash: H, targetState: want, hasInstall, available: true }]]);
}

function currentOf(have: Have, sameHash: boolean, enabled = false): Map<string, CurrentUnit> {
  if (have === 'none') return new Map();
  const unit: CurrentUnit = {
    name: U,
    fileHash: sameHash ? H : 'h0',
    loadState: 'loaded',
    activeState: have,
    subState: have === 'active' ? 'running' : have === 'failed' ? 'failed' : 'dead',
    enabled,
    needsReload: false,
  };
  return new Map([[U, unit]]);
}

const types = (tasks: Task[]) => tasks.map((t) => t.type).join(' ');

describe('planTasks: desired state × current state × hash × [Install]', () => {
  // [desired, current, same hash, [Install] in body, expected task types]
  it.each<[Want, Have, boolean, boolean, string]>([
    // not scheduled here (absent or inactive): remove fleetx files, stopping first
    ['absent', 'none', true, false, ''],
    ['absent', 'inactive', true, false, 'remove-file reload'],
    ['absent', 'inactive', false, false, 'remove-file reload'],
    ['absent', 'active', true, false, 'stop remove-file reload'],
    ['absent', 'active', false, false, 'stop remove-file reload'],
    ['absent', 'failed', true, false, 'remove-file reload'],
    ['inactive', 'none', true, true, ''],
    ['inactive', 'inactive', true, true, 'remove-file reload'],
    ['inactive', 'inactive', false, false, 'remove-file reload'],
    ['inactive', 'active', true, true, 'stop remove-file reload'],
    ['inactive', 'active', false, false, 'stop remove-file reload'],
    ['inactive', 'failed', false, true, 'remove-file reload'],
    // loaded: file written, not running
    ['loaded', 'none', true, false, 'write-file'], // systemd reads a new file on demand
    ['loaded', 'none', true, true, 'write-file enable reload'],
    ['loaded', 'inactive', true, false, ''],
    ['loaded', 'inactive', true, true, 'enable reload'],
    ['loaded', 'inactive', false, false, 'write-file reload'],
    ['loaded', 'inactive', false, true, 'write-file enable reload'],
    ['loaded', 'active', true, false, 'stop'],
    ['loaded', 'active', true, true, 'stop enable reload'],
    ['loaded', 'active', false, false, 'stop write-file reload'],
    ['loaded', 'active', false, true, 'stop write-file enable reload'],
    ['loaded', 'failed', true, false, ''],
    ['loaded', 'failed', true, true, 'enable reload'],
    ['loaded', 'failed', false, false, 'write-file reload'],
    ['loaded', 'failed', false, true, 'write-file enable reload'],
    // launched: running; a changed hash restarts, never stops
    ['launched', 'none', true, false, 'write-file start'],
    ['launched', 'none', true, true, 'write-file enable reload start'],
    ['launched', 'inactive', true, false, 'start'],
    ['launched', 'inactive', true, true, 'enable reload start'],
    ['launched', 'inactive', false, false, 'write-file reload start'],
    ['launched', 'inactive', false, true, 'write-file enable reload start'],
    ['launched', 'active', true, false, ''],
    ['launched', 'active', true, true, 'enable reload'],
    ['launched', 'active', false, false, 'write-file reload restart'],
    ['launched', 'active', false, true, 'write-file enable reload restart'],
    ['launched', 'failed', true, false, 'start'],
    ['launched', 'failed', true, true, 'enable reload start'],
    ['launched', 'failed', false, false, 'write-file reload start'],
    ['launched', 'failed', false, true, 'write-file enable reload start'],
  ])('%s wanted, %s on host, same hash %s, [Install] %s → [%s]', (want, have, same, install, expected) => {
    expect(types(planTasks(desiredOf(want, install), currentOf(have, same)))).toBe(expected);
  });
});

describe('planTasks: named cases', () => {
  it('gives fleet reasons', () => {
    const tasks = planTasks(desiredOf('launched', false), currentOf('active', false));
    expect(tasks).toEqual([
      { type: 'write-file', unit: U, hash: H, reason: 'unit loaded but hash differs to expected' },
      { type: 'reload', units: [U], reason: 'unit files changed on disk' },
      { type: 'restart', unit: U, reason: 'unit loaded but hash differs to expected' },
    ]);
    expect(planTasks(desiredOf('loaded', false), new Map())[0]).toMatchObject({ reason: 'unit scheduled here but not loaded' });
  });

  it('disables an enabled unit before removing it', () => {
    expect(types(planTasks(new Map(), currentOf('active', true, true)))).toBe('stop disable remove-file reload');
  });

  it('disables a unit whose new body lost its [Install] section', () => {
    expect(types(planTasks(desiredOf('launched', false), currentOf('active', true, true)))).toBe('disable reload');
  });

  it('leaves a unit alone while its body is not fetched', () => {
    const d = new Map([[U, { name: U, hash: H, targetState: 'launched' as const, hasInstall: false, available: false }]]);
    expect(planTasks(d, currentOf('active', false))).toEqual([]);
    expect(planTasks(d, new Map())).toEqual([]);
  });

  it('reloads a matching file systemd has not read yet (agent died between write and reload)', () => {
    const c = currentOf('inactive', true);
    c.get(U)!.needsReload = true;
    expect(types(planTasks(desiredOf('launched', false), c))).toBe('reload start');
  });

  it.each<[Have, boolean, string]>([
    ['inactive', true, ''],
    ['failed', true, ''],
    ['active', true, ''],
    ['inactive', false, 'write-file reload start'],
    ['failed', false, 'write-file reload start'],
    ['active', false, 'write-file reload restart'],
  ])('a launched unit this agent already started (settled) and now %s, same hash %s → [%s]', (have, same, expected) => {
    const c = currentOf(have, same);
    c.get(U)!.settled = true;
    expect(types(planTasks(desiredOf('launched', false), c))).toBe(expected);
  });

  it.each<[string, string]>([
    ['not-found', 'write-file start'],
    ['loaded', 'write-file reload start'],
    ['bad-setting', 'write-file reload start'],
    ['masked', 'write-file reload start'],
  ])('a new file for a unit systemd has %s → [%s] (systemd reads files of units it has not loaded on demand)', (loadState, expected) => {
    const c = new Map([[U, { name: U, loadState, activeState: 'inactive', subState: 'dead', enabled: false, needsReload: false }]]);
    expect(types(planTasks(desiredOf('launched', false), c))).toBe(expected);
  });

  it.each<[string, string]>([
    ['not-found', 'remove-file'],
    ['loaded', 'remove-file reload'],
  ])('removing the file of a unit systemd has %s → [%s]', (loadState, expected) => {
    const c = currentOf('inactive', true);
    c.get(U)!.loadState = loadState;
    expect(types(planTasks(new Map(), c))).toBe(expected);
  });

  it('never touches a unit that has no fleetx file and is not scheduled', () => {
    const c = new Map([[U, { ...currentOf('active', true).get(U)!, fileHash: undefined }]]);
    expect(planTasks(new Map(), c)).toEqual([]);
  });

  it('batches one reload for many units systemd has loaded, tasks grouped then sorted by name', () => {
    const d = new Map<string, DesiredUnit>();
    const c = new Map<string, CurrentUnit>();
    for (const n of ['c.service', 'a.service', 'b.service']) {
      d.set(n, { name: n, hash: H, targetState: 'launched', hasInstall: false, available: true });
      c.set(n, { name: n, fileHash: 'h0', loadState: 'loaded', activeState: 'inactive', subState: 'dead', enabled: false, needsReload: false });
    }
    const tasks = planTasks(d, c);
    expect(tasks.map((t) => `${t.type}:${'unit' in t ? t.unit : t.units.join(',')}`)).toEqual([
      'write-file:a.service', 'write-file:b.service', 'write-file:c.service',
      'reload:a.service,b.service,c.service',
      'start:a.service', 'start:b.service', 'start:c.service',
    ]);
  });
});

// ---- properties -----------------------------------------------------------

const names = ['a.service', 'b.service', 'c@1.service', 'c@2.service', 'd.socket'];
const hashes = ['h1', 'h2', 'h3'];
const activeStates = ['active', 'activating', 'reloading', 'inactive', 'failed', 'deactivating'];

const desiredArb = fc.uniqueArray(
  fc.record({
    name: fc.constantFrom(...names),
    hash: fc.constantFrom(...hashes),
    targetState: fc.constantFrom<TargetState>('inactive', 'loaded', 'launched'),
    hasInstall: fc.boolean(),
    available: fc.boolean(),
  }),
  { selector: (u) => u.name },
);

const currentArb = fc.uniqueArray(
  fc.record({
    name: fc.constantFrom(...names),
    fileHash: fc.option(fc.constantFrom(...hashes, 'unknown'), { nil: undefined }),
    loadState: fc.constantFrom('loaded', 'not-found'),
    activeState: fc.constantFrom(...activeStates),
    subState: fc.constant('x'),
    enabled: fc.boolean(),
    needsReload: fc.boolean(),
    settled: fc.boolean(),
  }),
  { selector: (u) => u.name },
);

const toMap = <T extends { name: string }>(xs: T[]) => new Map(xs.map((x) => [x.name, x]));

/** What a successful run of the tasks does to the host, as seen by current(). */
function applyEffects(current: Map<string, CurrentUnit>, tasks: Task[]): Map<string, CurrentUnit> {
  const next = new Map([...current].map(([k, v]) => [k, { ...v }]));
  const get = (n: string) => next.get(n)!;
  for (const t of tasks) {
    switch (t.type) {
      case 'stop': get(t.unit).activeState = 'inactive'; break;
      case 'disable': get(t.unit).enabled = false; break;
      case 'remove-file': next.delete(t.unit); break;
      case 'write-file': {
        const u = next.get(t.unit) ?? { name: t.unit, loadState: 'not-found', activeState: 'inactive', subState: 'dead', enabled: false, needsReload: false };
        // a unit systemd has not loaded is read on demand; a loaded one waits for the reload
        if (u.loadState === 'not-found') next.set(t.unit, { ...u, fileHash: t.hash, loadState: 'loaded', needsReload: false });
        else next.set(t.unit, { ...u, fileHash: t.hash, needsReload: true });
        break;
      }
      case 'enable': get(t.unit).enabled = true; break;
      case 'reload': for (const u of next.values()) { u.needsReload = false; if (u.fileHash !== undefined) u.loadState = 'loaded'; } break;
      case 'start': case 'restart': get(t.unit).activeState = 'active'; break;
    }
  }
  return next;
}

describe('planTasks properties', () => {
  it('is deterministic, whatever the insertion order of its inputs', () => {
    fc.assert(fc.property(desiredArb, currentArb, (d, c) => {
      const a = planTasks(toMap(d), toMap(c));
      const b = planTasks(toMap([...d].reverse()), toMap([...c].reverse()));
      expect(b).toEqual(a);
    }));
  });

  it('reaches a fixed point: planning again after applying the effects yields nothing', () => {
    fc.assert(fc.property(desiredArb, currentArb, (d, c) => {
      const after = applyEffects(toMap(c), planTasks(toMap(d), toMap(c)));
      expect(planTasks(toMap(d), after)).toEqual([]);
    }));
  });

  it('never stops a unit that is desired launched with the same hash', () => {
    fc.assert(fc.property(desiredArb, currentArb, (d, c) => {
      const current = toMap(c);
      for (const t of planTasks(toMap(d), current)) {
        if (t.type !== 'stop' && t.type !== 'restart') continue;
        const want = d.find((u) => u.name === t.unit);
        const sameHash = want !== undefined && current.get(t.unit)?.fileHash === want.hash;
        expect(want?.targetState === 'launched' && sameHash).toBe(false);
      }
    }));
  });

  it('has at most one reload, and one whenever systemd must re-read: a loaded unit\'s file or any enablement changes', () => {
    fc.assert(fc.property(desiredArb, currentArb, (d, c) => {
      const current = toMap(c);
      const tasks = planTasks(toMap(d), current);
      const reloads = tasks.filter((t) => t.type === 'reload').length;
      const loaded = (unit: string) => (current.get(unit)?.loadState ?? 'not-found') !== 'not-found';
      const mustReread = tasks.some((t) => t.type === 'enable' || t.type === 'disable' || ((t.type === 'write-file' || t.type === 'remove-file') && loaded(t.unit)));
      const onlyNewFiles = tasks.every((t) => t.type === 'stop' || t.type === 'start' || ((t.type === 'write-file' || t.type === 'remove-file') && !loaded(t.unit)))
        && !c.some((u) => u.needsReload && tasks.some((t) => 'unit' in t && t.unit === u.name));
      expect(reloads).toBeLessThanOrEqual(1);
      if (mustReread) expect(reloads).toBe(1);
      if (onlyNewFiles) expect(reloads).toBe(0);
    }));
  });

  it('never touches units without a fleetx file that are not scheduled', () => {
    fc.assert(fc.property(desiredArb, currentArb, (d, c) => {
      const scheduled = new Set(d.filter((u) => u.targetState !== 'inactive').map((u) => u.name));
      const foreign = new Set(c.filter((u) => u.fileHash === undefined && !scheduled.has(u.name)).map((u) => u.name));
      for (const t of planTasks(toMap(d), toMap(c))) {
        if ('unit' in t) expect(foreign.has(t.unit)).toBe(false);
      }
    }));
  });

  it('never starts a settled unit again at the same hash', () => {
    fc.assert(fc.property(desiredArb, currentArb, (d, c) => {
      const current = toMap(c);
      for (const t of planTasks(toMap(d), current)) {
        if (t.type !== 'start') continue;
        const have = current.get(t.unit);
        const want = d.find((u) => u.name === t.unit)!;
        expect(have?.settled === true && have.fileHash === want.hash).toBe(false);
      }
    }));
  });

  it('starts only what is running-or-not consistently with isRunning', () => {
    fc.assert(fc.property(desiredArb, currentArb, (d, c) => {
      const current = toMap(c);
      for (const t of planTasks(toMap(d), current)) {
        if (t.type === 'start') expect(isRunning(current.get(t.unit)?.activeState ?? 'inactive')).toBe(false);
      }
    }));
  });
});
