/**
 * The working assignment while one schedule() call runs: which units sit on
 * which machine, and whether each was kept from `current` or placed in this
 * pass. Local to a call; nothing outlives it.
 */
export type Origin = 'kept' | 'placed';

export class Board {
  private readonly byMachine = new Map<string, Map<string, Origin>>();
  private readonly byUnit = new Map<string, Set<string>>();
  /** machine ids in the order given (sorted by id) and their positions */
  private readonly ids: string[];
  private readonly position = new Map<string, number>();
  /** byLoad[n]: positions of the machines holding n units, ascending */
  private readonly byLoad: number[][] = [[]];

  constructor(machineIds: Iterable<string>) {
    this.ids = [...machineIds];
    this.ids.forEach((id, i) => {
      this.byMachine.set(id, new Map());
      this.position.set(id, i);
      this.byLoad[0]!.push(i);
    });
  }

  add(unit: string, machine: string, origin: Origin): void {
    const here = this.byMachine.get(machine)!;
    const before = here.size;
    here.set(unit, origin);
    if (here.size !== before) this.moveLoad(machine, before, here.size);
    let ms = this.byUnit.get(unit);
    if (ms === undefined) this.byUnit.set(unit, (ms = new Set()));
    ms.add(machine);
  }

  remove(unit: string, machine: string): void {
    const here = this.byMachine.get(machine);
    if (here?.delete(unit)) this.moveLoad(machine, here.size + 1, here.size);
    this.byUnit.get(unit)?.delete(machine);
  }

  /**
   * Machine ids, least loaded first, ties in the order given to the
   * constructor (by id): the order in which the scheduler ranks machines
   * for a unit that displaces nothing. Do not change the board while
   * iterating.
   */
  *byLoadThenId(): Iterable<string> {
    for (const bucket of this.byLoad) for (const i of bucket) yield this.ids[i]!;
  }

  origin(unit: string, machine: string): Origin | undefined {
    return this.byMachine.get(machine)?.get(unit);
  }

  /** units on a machine, in insertion order */
  unitsOn(machine: string): string[] {
    return [...this.neighbours(machine)];
  }

  /** the same without copying, for the hot loops of the filters */
  neighbours(machine: string): IterableIterator<string> {
    return (this.byMachine.get(machine) ?? new Map<string, Origin>()).keys();
  }

  machinesOf(unit: string): string[] {
    return [...(this.byUnit.get(unit) ?? [])].sort();
  }

  isPlaced(unit: string): boolean {
    return (this.byUnit.get(unit)?.size ?? 0) > 0;
  }

  load(machine: string): number {
    return this.byMachine.get(machine)?.size ?? 0;
  }

  private moveLoad(machine: string, from: number, to: number): void {
    const i = this.position.get(machine)!;
    const old = this.byLoad[from]!;
    old.splice(sortedIndex(old, i), 1);
    while (this.byLoad.length <= to) this.byLoad.push([]);
    const now = this.byLoad[to]!;
    now.splice(sortedIndex(now, i), 0, i);
  }

  /** every (unit, machine) pair with its origin */
  *entries(): Iterable<[string, string, Origin]> {
    for (const [machine, units] of this.byMachine) {
      for (const [unit, origin] of units) yield [unit, machine, origin];
    }
  }
}

/** Where `x` is, or would go, in the ascending array `xs` (binary search). */
function sortedIndex(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
