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
  // A min-heap of names free to go next: 10,000 units with MachineOf pairs
  // made a sorted array (shift + sort on every step) the slowest part of a pass.
  const ready = new NameHeap(names.filter((n) => indegree.get(n) === 0));
  let nextUnordered = 0; // cycle breaking scans `names` once in all
  while (out.length < names.length) {
    if (ready.size === 0) {
      // Cycle: break it at the smallest name not yet ordered.
      while (done.has(names[nextUnordered]!)) nextUnordered++;
      ready.push(names[nextUnordered]!);
    }
    const next = ready.pop()!;
    if (done.has(next)) continue;
    done.add(next);
    out.push(next);
    for (const to of after.get(next)!) {
      const d = indegree.get(to)! - 1;
      indegree.set(to, d);
      if (d === 0 && !done.has(to)) ready.push(to);
    }
  }
  return { names: out, index: new Map(out.map((n, i) => [n, i])) };
}

/** Binary min-heap of strings (code-unit order, as byName). */
class NameHeap {
  private readonly xs: string[] = [];

  constructor(initial: string[]) {
    for (const x of initial) this.push(x);
  }

  get size(): number {
    return this.xs.length;
  }

  push(x: string): void {
    const xs = this.xs;
    let i = xs.push(x) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (xs[parent]! <= x) break;
      xs[i] = xs[parent]!;
      i = parent;
    }
    xs[i] = x;
  }

  pop(): string | undefined {
    const xs = this.xs;
    const top = xs[0];
    const last = xs.pop();
    if (xs.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= xs.length) break;
      const c = l + 1 < xs.length && xs[l + 1]! < xs[l]! ? l + 1 : l;
      if (xs[c]! >= last) break;
      xs[i] = xs[c]!;
      i = c;
    }
    xs[i] = last;
    return top;
  }
}
