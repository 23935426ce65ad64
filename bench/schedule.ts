/**
 * One scheduler pass (the pure `schedule()`), at bench:scale's size and mix:
 *
 *   npx tsx bench/schedule.ts [MACHINES] [UNITS]      (default 1000 10000)
 *
 * 5 global units, then Conflicts groups of 50, MachineMetadata (10 zones),
 * MachineOf pairs and plain units in equal parts. Two passes: from nothing
 * (every unit placed) and the steady one after it (every assignment kept),
 * each with its wall and CPU time (CPU is what to compare on a shared machine).
 */
import { schedule } from '../src/scheduler/schedule.js';
import type { ScheduleInput, SchedUnit } from '../src/scheduler/types.js';
import type { XFleetOptions } from '../src/unit/types.js';

const M = Number(process.argv[2] ?? 1000);
const U = Number(process.argv[3] ?? 10000);
const unit = (name: string, x: Partial<XFleetOptions> = {}): SchedUnit => ({
  name,
  targetState: 'launched',
  xfleet: { global: false, conflicts: [], machineOf: [], replaces: [], machineMetadata: {}, ...x },
});
const units: SchedUnit[] = [];
for (let g = 1; g <= 5; g++) units.push(unit(`global${g}.service`, { global: true }));
const q = Math.floor((U - 5) / 4);
for (let i = 0; i < q; i++) units.push(unit(`cg${Math.floor(i / 50)}@${i}.service`, { conflicts: [`cg${Math.floor(i / 50)}@*.service`] }));
for (let i = 0; i < q; i++) units.push(unit(`zone${i % 10}@${i}.service`, { machineMetadata: { zone: [`z${i % 10}`] } }));
for (let i = 0; i < q / 2; i++) units.push(unit(`app@${i}.service`), unit(`side@${i}.service`, { machineOf: [`app@${i}.service`] }));
for (let i = 0; units.length < U; i++) units.push(unit(`plain@${i}.service`));
const machines = Array.from({ length: M }, (_, i) => ({ id: `h${String(i).padStart(5, '0')}`, metadata: { zone: `z${i % 10}` } }));

function timed<T>(f: () => T): { value: T; wallMs: number; cpuMs: number } {
  const c = process.cpuUsage();
  const t = performance.now();
  const value = f();
  const d = process.cpuUsage(c);
  return { value, wallMs: performance.now() - t, cpuMs: (d.user + d.system) / 1000 };
}

const input: ScheduleInput = { units, machines, current: [] };
const first = timed(() => schedule(input));
console.log(`${U} units on ${M} machines, from nothing: placed ${first.value.place.length}, unschedulable ${first.value.unschedulable.length}; wall ${first.wallMs.toFixed(0)} ms, CPU ${first.cpuMs.toFixed(0)} ms`);
const current = first.value.place.map((d) => ({ unit: d.unit, machine: d.machine }));
const steady = timed(() => schedule({ ...input, current }));
console.log(`steady pass: kept ${steady.value.keep.length}, placed ${steady.value.place.length}; wall ${steady.wallMs.toFixed(0)} ms, CPU ${steady.cpuMs.toFixed(0)} ms`);
