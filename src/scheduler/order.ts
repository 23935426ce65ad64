/**
 * The order in which the scheduler considers units. It matters twice: an
 * earlier unit keeps a contested machine, and a unit is placed only after the
 * units it must follow. Edges: a MachineOf target comes before the units that
 * name it; a unit with Replaces=X comes before X (so it can claim X's
 * machine). Among units free to go next, the smallest name goes first. A
 * cycle is broken at the smallest name inside it (in a cycle nothing outside
 * still waits to go first), never at a unit merely downstream of one: that
 * unit waits for the cycle like any other follower. A unit's MachineOf
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
    if (!known.has(from) || !known.has(to) || from === to) return;
    after.get(from)!.push(to);
    indegree.set(to, indegree.get(to)! + 1);
  };
  for (const u of units) {
    for (const target of new Set(u.xfleet.machineOf)) edge(target, u.name);
    for (const victim of new Set(u.xfleet.replaces)) edge(u.name, victim);
  }
  // Edges still to be taken into each strongly connected component from
  // outside it: a cycle may be broken only once its count is 0.
  const component = components(names, after);
  const waitingFromOutside = new Map<number, number>();
  for (const [from, tos] of after) {
    for (const to of tos) {
      const c = component.get(to)!;
      if (component.get(from) !== c) waitingFromOutside.set(c, (waitingFromOutside.get(c) ?? 0) + 1);
    }
  }
  const breakable = (n: string) => (waitingFromOutside.get(component.get(n)!) ?? 0) === 0;

  const out: string[] = [];
  const done = new Set<string>();
  // A min-heap of names free to go next: 10,000 units with MachineOf pairs
  // made a sorted array (shift + sort on every step) the slowest part of a pass.
  const ready = new NameHeap(names.filter((n) => indegree.get(n) === 0));
  let firstUnordered = 0;
  while (out.length < names.length) {
    if (ready.size === 0) {
      // Cycle: break it at the smallest name of a cycle nothing else waits on.
      while (done.has(names[firstUnordered]!)) firstUnordered++;
      let i = firstUnordered;
      while (done.has(names[i]!) || !breakable(names[i]!)) i++;
      ready.push(names[i]!);
    }
    const next = ready.pop()!;
    if (done.has(next)) continue;
    done.add(next);
    out.push(next);
    for (const to of after.get(next)!) {
      const d = indegree.get(to)! - 1;
      indegree.set(to, d);
      const c = component.get(to)!;
      if (component.get(next) !== c) waitingFromOutside.set(c, waitingFromOutside.get(c)! - 1);
      if (d === 0 && !done.has(to)) ready.push(to);
    }
  }
  return { names: out, index: new Map(out.map((n, i) => [n, i])) };
}

/**
 * Strongly connected components (Tarjan's algorithm, iterative: a chain of
 * 10,000 MachineOf units must not overflow the stack): name -> component id.
 */
function components(names: readonly string[], after: ReadonlyMap<string, readonly string[]>): Map<string, number> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const component = new Map<string, number>();
  let counter = 0;
  let id = 0;
  for (const root of names) {
    if (index.has(root)) continue;
    const frames: Array<{ n: string; edge: number }> = [{ n: root, edge: 0 }];
    index.set(root, counter), low.set(root, counter++), stack.push(root), onStack.add(root);
    while (frames.length > 0) {
      const f = frames[frames.length - 1]!;
      const tos = after.get(f.n)!;
      if (f.edge < tos.length) {
        const to = tos[f.edge++]!;
        if (!index.has(to)) {
          index.set(to, counter), low.set(to, counter++), stack.push(to), onStack.add(to);
          frames.push({ n: to, edge: 0 });
        } else if (onStack.has(to)) {
          low.set(f.n, Math.min(low.get(f.n)!, index.get(to)!));
        }
        continue;
      }
      frames.pop();
      const parent = frames[frames.length - 1];
      if (parent) low.set(parent.n, Math.min(low.get(parent.n)!, low.get(f.n)!));
      if (low.get(f.n) === index.get(f.n)) {
        for (;;) {
          const m = stack.pop()!;
          onStack.delete(m);
          component.set(m, id);
          if (m === f.n) break;
        }
        id++;
      }
    }
  }
  return component;
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
