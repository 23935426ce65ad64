import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide, everyRecordVanished, type DecideInput } from '../../src/presence/decide.js';
import { slotName, unitOfSlot } from '../../src/presence/instances.js';
import { isInstanceOf } from '../../src/unit/name.js';
import type { HealthRecord, HealthStatus } from '../../src/health/types.js';
import type { MachineRecord } from '../../src/registry/records.js';
import type { Observed, PresenceHold } from '../../src/presence/types.js';

const T = 'app@.service';
const machine = (id: string, ip: string): MachineRecord => ({ id, ip, metadata: {}, version: '0', startedAt: '2026-01-01T00:00:00Z' });
const health = (unit: string, m: string, status: HealthStatus = 'healthy', checkedAt = '2026-01-01T00:00:01Z'): HealthRecord => ({
  unit, machine: m, hash: 'h', status, since: '2026-01-01T00:00:00Z', checkedAt, consecutive: 1,
});
const hold = (unit: string): PresenceHold => ({ service: 'app', unit, rollout: 'r1', since: '2026-01-01T00:00:00Z' });
const input = (p: Partial<DecideInput>): DecideInput => ({ template: T, port: 8080, health: [], holds: [], machines: [], observed: [], ...p });
const M = [machine('m1', '10.0.0.1'), machine('m2', '10.0.0.2')];

describe('every record vanished at once (an etcd outage longer than the TTL)', () => {
  const inLb: Observed[] = [
    { unit: 'app@1.service', state: 'in', address: '10.0.0.1' },
    { unit: 'app@2.service', state: 'in', address: '10.0.0.2' },
  ];
  it.each<[string, Partial<DecideInput>, boolean]>([
    ['every lease expired: no machine, no health record', { observed: inLb }, true],
    ['health records left, machines gone', { observed: inLb, health: [health('app@1.service', 'm1'), health('app@2.service', 'm2')] }, true],
    ['one host died, the other serves', { observed: inLb, machines: [M[1]!], health: [health('app@2.service', 'm2')] }, false],
    ['both unhealthy: a real outage of the service', { observed: inLb, machines: M, health: [health('app@1.service', 'm1', 'unhealthy'), health('app@2.service', 'm2', 'unhealthy')] }, false],
    ['both held by a rollout', { observed: inLb, holds: [hold('app@1.service'), hold('app@2.service')] }, false],
    ['nothing was in', { observed: inLb.map((o) => ({ ...o, state: 'out' as const })) }, false],
    // a rollout puts app@3 back as the others' records vanish: it is not serving yet, so it does not count as left in
    ['every record vanished as a rollout puts another back', { observed: [...inLb, { unit: 'app@3.service', state: 'out', address: '10.0.0.3' }], machines: [machine('m3', '10.0.0.3')], health: [health('app@3.service', 'm3')] }, true],
    ['one that was in stays in as another is put back', { observed: [...inLb, { unit: 'app@3.service', state: 'out', address: '10.0.0.3' }], machines: [M[1]!, machine('m3', '10.0.0.3')], health: [health('app@2.service', 'm2'), health('app@3.service', 'm3')] }, false],
  ])('%s: %s', (_name, p, vanished) => {
    expect(everyRecordVanished(decide(input(p)), p.observed ?? [])).toBe(vanished);
  });

  it('keepVanished keeps them in at their last address; without it they go out', () => {
    expect(decide(input({ observed: inLb })).map((d) => d.want)).toEqual(['out', 'out']);
    const kept = decide(input({ observed: inLb, keepVanished: true }));
    expect(kept.map((d) => [d.unit, d.want, d.address])).toEqual([['app@1.service', 'in', '10.0.0.1'], ['app@2.service', 'in', '10.0.0.2']]);
    expect(kept[0]!.reason).toMatch(/^no health record; kept in: every record vanished at once/);
    // the one put back goes in beside them
    const joining = decide(input({ observed: [...inLb, { unit: 'app@3.service', state: 'out', address: '10.0.0.3' }], machines: [machine('m3', '10.0.0.3')], health: [health('app@3.service', 'm3')], keepVanished: true }));
    expect(joining.map((d) => [d.unit, d.want])).toEqual([['app@1.service', 'in'], ['app@2.service', 'in'], ['app@3.service', 'in']]);
    // a held one still goes out
    expect(decide(input({ observed: inLb, holds: [hold('app@1.service')], keepVanished: true })).map((d) => d.want)).toEqual(['out', 'in']);
  });
});

describe('decide', () => {
  it.each<[string, Partial<DecideInput>, Array<[string, 'in' | 'out', string?]>]>([
    ['healthy, not held -> in at its machine ip', { health: [health('app@1.service', 'm1')], machines: M }, [['app@1.service', 'in', '10.0.0.1']]],
    ['held -> out even when healthy', { health: [health('app@1.service', 'm1')], holds: [hold('app@1.service')], machines: M }, [['app@1.service', 'out', '10.0.0.1']]],
    ['unhealthy -> out', { health: [health('app@1.service', 'm1', 'unhealthy')], machines: M }, [['app@1.service', 'out', '10.0.0.1']]],
    ['unknown health -> out', { health: [health('app@1.service', 'm1', 'unknown')], machines: M }, [['app@1.service', 'out']]],
    ['machine gone -> out, no address', { health: [health('app@1.service', 'm9')], machines: M }, [['app@1.service', 'out', undefined]]],
    ['held without health record -> out', { holds: [hold('app@2.service')], machines: M }, [['app@2.service', 'out']]],
    ['driver still has a unit nobody reports -> out, last address kept', { machines: M, observed: [{ unit: 'app@3.service', state: 'in', address: '10.0.0.3' }] }, [['app@3.service', 'out', '10.0.0.3']]],
    ['an instance the driver has out and nobody reports is forgotten', { machines: M, observed: [{ unit: 'app@3.service', state: 'out' }] }, []],
    ['other services\' units are ignored', { health: [health('web@1.service', 'm1'), health('app@1.service', 'm1'), health('app.service', 'm1')], machines: M }, [['app@1.service', 'in']]],
    ['moving unit: the live machine\'s record wins', { health: [health('app@1.service', 'm9'), health('app@1.service', 'm2', 'healthy')], machines: M }, [['app@1.service', 'in', '10.0.0.2']]],
    // health/counts.ts: the newest record counts whatever it says, so a dead agent's stale healthy record never hides a fresh failure
    ['two live records: the newest counts, even when it is unhealthy', { health: [health('app@1.service', 'm1', 'unhealthy', '2026-01-01T00:00:09Z'), health('app@1.service', 'm2')], machines: M }, [['app@1.service', 'out', '10.0.0.1']]],
    ['two live records: the newest counts when it is healthy', { health: [health('app@1.service', 'm1', 'unhealthy'), health('app@1.service', 'm2', 'healthy', '2026-01-01T00:00:09Z')], machines: M }, [['app@1.service', 'in', '10.0.0.2']]],
    ['sorted by unit name', { health: [health('app@b.service', 'm1'), health('app@a.service', 'm2', 'unhealthy')], machines: M }, [['app@a.service', 'out'], ['app@b.service', 'in']]],
  ])('%s', (_name, p, want) => {
    const got = decide(input(p));
    expect(got.map((d) => d.unit)).toEqual(want.map((w) => w[0]));
    for (const [i, [, w, address]] of want.entries()) {
      expect(got[i]!.want).toBe(w);
      expect(got[i]!.port).toBe(8080);
      expect(got[i]!.reason).not.toBe('');
      if (address !== undefined || want[i]!.length === 3) expect(got[i]!.address).toBe(address);
    }
  });

  const unitArb = fc.constantFrom('app@1.service', 'app@2.service', 'app@3.service', 'app@x.service', 'web@1.service');
  const machineArb = fc.constantFrom('m1', 'm2', 'm3');
  const healthArb = fc.record({ unit: unitArb, m: machineArb, status: fc.constantFrom<HealthStatus>('healthy', 'unhealthy', 'unknown'), at: fc.integer({ min: 0, max: 9 }) })
    .map((h) => health(h.unit, h.m, h.status, `2026-01-01T00:00:0${h.at}Z`));
  const inputArb = fc.record({
    // one record per (machine, unit): that is one etcd key
    health: fc.uniqueArray(healthArb, { maxLength: 8, selector: (h) => `${h.machine}/${h.unit}` }),
    holds: fc.uniqueArray(unitArb, { maxLength: 3 }).map((us) => us.map(hold)),
    machines: fc.subarray([machine('m1', '10.0.0.1'), machine('m2', '10.0.0.2'), machine('m3', '10.0.0.3')]),
    observed: fc.array(fc.record({ unit: unitArb, state: fc.constantFrom<Observed['state']>('in', 'out', 'draining', 'unknown') }), { maxLength: 4 }),
  }).map((p) => input(p));

  it('property: held -> out; in only when healthy on a live machine; deterministic and order-independent', () => {
    fc.assert(
      fc.property(inputArb, (inp) => {
        const got = decide(inp);
        const live = new Set(inp.machines.map((m) => m.id));
        for (const d of got) {
          expect(isInstanceOf(T, d.unit)).toBe(true);
          if (inp.holds.some((h) => h.unit === d.unit)) expect(d.want).toBe('out');
          if (d.want === 'in') {
            expect(inp.health.some((h) => h.unit === d.unit && h.status === 'healthy' && live.has(h.machine))).toBe(true);
            // the address is that of a live machine reporting the unit healthy
            const ips = inp.machines.filter((m) => inp.health.some((h) => h.unit === d.unit && h.machine === m.id && h.status === 'healthy')).map((m) => m.ip);
            expect(ips).toContain(d.address);
          }
          if (!inp.health.some((h) => h.unit === d.unit && h.status === 'healthy')) expect(d.want).toBe('out');
          if (!inp.health.some((h) => h.unit === d.unit && live.has(h.machine))) expect(d.want).toBe('out');
        }
        const shuffled = { ...inp, health: [...inp.health].reverse(), machines: [...inp.machines].reverse(), holds: [...inp.holds].reverse() };
        expect(decide(shuffled)).toEqual(got);
        expect(decide(inp)).toEqual(got);
        // every instance with a record, a hold or still in the LB is decided, once
        const lingering = inp.observed.filter((o) => o.state !== 'out').map((o) => o.unit);
        const units = new Set([...inp.health.map((h) => h.unit), ...inp.holds.map((h) => h.unit), ...lingering].filter((u) => isInstanceOf(T, u)));
        expect(got.map((d) => d.unit).sort()).toEqual([...units].sort());
      }),
      { numRuns: 500 },
    );
  });
});

describe('instance names', () => {
  it.each([
    ['app@1.service', 'app-1'],
    ['app@blue:2.service', 'app-blue:2'],
    ['my-app@a_b.service', 'my-app-a_b'],
    ['app.service', 'app'],
  ])('slotName(%s) = %s and back', (unit, slot) => {
    expect(slotName(unit)).toBe(slot);
    const template = unit.includes('@') ? unit.replace(/@[^.]*\./, '@.') : unit;
    expect(unitOfSlot(template, slot)).toBe(unit);
  });

  it('unitOfSlot ignores slots of other names', () => {
    expect(unitOfSlot('app@.service', 'web-1')).toBeUndefined();
    expect(unitOfSlot('app@.service', 'app-')).toBeUndefined();
  });
});
