/**
 * The order in which the scheduler considers units. It matters twice: an
 * earlier unit keeps a contested machine, and a unit is placed only after the
 * units it must follow. Edges: a MachineOf target comes before the units that
 * name it; a unit with Replaces=X comes before X (so it can claim X's
 * machine). Among units free to go next, the smallest name goes first. A
 * cycle is broken by taking the smallest remaining name; a unit's MachineOf
 * target that lands after it is then treated as unsatisfiable (see filters).
 */
import type { SchedUnit } from './types.js';

export interface UnitOrder {
  /** unit names, in processing order */
  names: string[];
  /** unit name -> position in `names` */
  index: Map<string, number>;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function processingOrder(units: readonly SchedUnit[]): UnitOrder {
  const names = units.map((u) => u.name).sort(byName);
  const known = new Set(names);
  const after = new Map<string, string[]>(names.map((n) => [n, []]));
  const indegree = new Map<string, number>(names.map((n) => [n, 0]));
  const edge = (from: string, to: string) => {
    if (!known.has(from) || from === to) return;
    after.get(from)!.push(to);
    indegree.set(to, indegree.get(to)! + 1);
  };
  for (const u of units) {
    for (const target of new Set(u.xfleet.machineOf)) edge(target, u.name);
    for (const victim of new Set(u.xfleet.replaces)) edge(u.name, victim);
  }

  const out: string[] = [];
  const done = new Set<string>();
  // Names are few (hundreds to thousands); a sorted ready list is plenty.
  let ready = names.filter((n) => indegree.get(n) === 0);
  while (out.length < names.length) {
    if (ready.length === 0) {
      // Cycle: break it at the smallest name not yet ordered.
      ready = [names.find((n) => !done.has(n))!];
    }
    const next = ready.shift()!;
    if (done.has(next)) continue;
    done.add(next);
    out.push(next);
    let grew = false;
    for (const to of after.get(next)!) {
      const d = indegree.get(to)! - 1;
      indegree.set(to, d);
      if (d === 0 && !done.has(to)) {
        ready.push(to);
        grew = true;
      }
    }
    if (grew) ready.sort(byName);
  }
  return { names: out, index: new Map(out.map((n, i) => [n, i])) };
}
