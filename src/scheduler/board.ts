/**
 * The working assignment while one schedule() call runs: which units sit on
 * which machine, and whether each was kept from `current` or placed in this
 * pass. Local to a call; nothing outlives it.
 */
export type Origin = 'kept' | 'placed';

export class Board {
  private readonly byMachine = new Map<string, Map<string, Origin>>();
  private readonly byUnit = new Map<string, Set<string>>();

  constructor(machineIds: Iterable<string>) {
    for (const id of machineIds) this.byMachine.set(id, new Map());
  }

  add(unit: string, machine: string, origin: Origin): void {
    this.byMachine.get(machine)!.set(unit, origin);
    let ms = this.byUnit.get(unit);
    if (ms === undefined) this.byUnit.set(unit, (ms = new Set()));
    ms.add(machine);
  }

  remove(unit: string, machine: string): void {
    this.byMachine.get(machine)?.delete(unit);
    this.byUnit.get(unit)?.delete(machine);
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

  /** every (unit, machine) pair with its origin */
  *entries(): Iterable<[string, string, Origin]> {
    for (const [machine, units] of this.byMachine) {
      for (const [unit, origin] of units) yield [unit, machine, origin];
    }
  }
}
