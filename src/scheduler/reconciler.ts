/**
 * One scheduling pass over normalized input. Two phases, both in processing
 * order (see order.ts):
 *   1. keep: every current assignment that still passes the filters stays
 *      (stability: nothing moves just to balance load); the rest are
 *      unscheduled with a reason.
 *   2. place: every wanted unit without a machine (every machine, for a
 *      global unit) goes to the best machine the filters accept.
 * A placement that displaces units it replaces puts them back in the queue,
 * together with every unit still waiting, so nothing is left out because of
 * a machine that has since been freed. That rule is what makes the result a
 * fixed point: scheduling the applied result again changes nothing.
 */
import { FleetxError } from '../errors/errors.js';
import { Board } from './board.js';
import { checkMachine, formatRejection, type Mode } from './filters.js';
import type { UnitOrder } from './order.js';
import type { Assignment, Decision, Rejection, SchedMachine, SchedUnit, Trace } from './types.js';

export const pairKey = (unit: string, machine: string) => `${unit}\u0000${machine}`;

interface Fit {
  m: SchedMachine;
  evicts: string[];
}

export class Reconciler {
  readonly board: Board;
  readonly trace: Trace = new Map();
  readonly unschedule: Decision[] = [];
  readonly placed = new Map<string, Decision>();
  private readonly byId: Map<string, SchedMachine>;

  constructor(
    readonly machines: readonly SchedMachine[], // sorted by id
    readonly active: ReadonlyMap<string, SchedUnit>,
    readonly order: UnitOrder,
    /**
     * keep the verdicts of the machines a unit placed on the fast path was
     * checked against (`fleetx why` reads them); schedule() does not, and
     * 10,000 of those maps were a large share of a pass's garbage
     */
    private readonly traceFastPath = true,
  ) {
    this.byId = new Map(machines.map((m) => [m.id, m]));
    this.board = new Board(this.byId.keys());
  }

  /** Phase 1. `current` holds only assignments of wanted units to live machines, sorted by machine. */
  keep(current: ReadonlyMap<string, readonly string[]>): void {
    for (const name of this.order.names) {
      const u = this.active.get(name);
      for (const m of (u && current.get(name)) ?? []) {
        // a global unit keeps every machine: no need to list (and sort) where it is, 1,000 times over
        const first = u!.xfleet.global ? undefined : this.board.machinesOf(name)[0];
        if (first !== undefined) {
          this.unschedule.push({ unit: name, machine: m, reason: `duplicate assignment, kept on ${first}` });
          continue;
        }
        const v = this.check(u!, this.byId.get(m)!, 'keep');
        if (v.ok) this.board.add(name, m, 'kept');
        else this.unschedule.push({ unit: name, machine: m, reason: `violates ${formatRejection(v.rejection)}` });
      }
    }
  }

  /** Phase 2. Throws `internal` if displacements fail to settle (a bug: see the termination note in README.md). */
  place(): void {
    const { names } = this.order;
    const queue = names.map((n) => this.active.has(n));
    const limit = 4 * (this.active.size + 1) * (this.machines.length + 1) + 1000;
    let steps = 0;
    for (let i = 0; i < queue.length; ) {
      if (!queue[i]) {
        i++;
        continue;
      }
      queue[i] = false;
      if (++steps > limit) throw new FleetxError('internal', 'scheduler did not settle; this is a bug, please report the input');
      if (!this.consider(this.active.get(names[i]!)!)) continue;
      names.forEach((n, j) => {
        const u = this.active.get(n);
        if (u !== undefined && (u.xfleet.global || !this.board.isPlaced(n))) queue[j] = true;
      });
      i = 0;
    }
  }

  /** Assignments kept from `current`. */
  kept(): Assignment[] {
    const out: Assignment[] = [];
    for (const [unit, machine, origin] of this.board.entries()) if (origin === 'kept') out.push({ unit, machine });
    return out;
  }

  private check(unit: SchedUnit, machine: SchedMachine, mode: Mode) {
    return checkMachine({ unit, machine, mode, board: this.board, active: this.active, order: this.order });
  }

  /** Weigh the machines for one unit and place it; true when that displaced someone. */
  private consider(u: SchedUnit): boolean {
    if (!u.xfleet.global && this.board.isPlaced(u.name)) return false;
    if (!u.xfleet.global && u.xfleet.replaces.length === 0 && this.firstFit(u)) return false;
    const verdicts = new Map<string, Rejection | undefined>();
    const fits: Fit[] = [];
    for (const m of this.machines) {
      if (this.board.origin(u.name, m.id) !== undefined) {
        verdicts.set(m.id, undefined);
        continue;
      }
      const v = this.check(u, m, 'place');
      verdicts.set(m.id, v.ok ? undefined : v.rejection);
      if (v.ok) fits.push({ m, evicts: v.evicts });
    }
    this.trace.set(u.name, verdicts);
    // A global unit goes to every machine that fits: placing it on one
    // machine cannot change another machine's verdict.
    const chosen = u.xfleet.global ? fits : this.best(fits);
    let displaced = false;
    for (const { m, evicts } of chosen) {
      for (const v of evicts) this.evict(v, m.id, u, evicts);
      displaced ||= evicts.length > 0;
      const reason = placeReason(u, m, fits.length, this.board.load(m.id), evicts);
      this.placed.set(pairKey(u.name, m.id), { unit: u.name, machine: m.id, reason });
      this.board.add(u.name, m.id, 'placed');
    }
    return displaced;
  }

  /**
   * The fast path for a unit that can displace nobody (no Replaces) and
   * goes to one machine: its rank is the machine's load, so the first
   * machine that passes in (load, id) order is the one best() would pick
   * from a full scan. Only the machines looked at get a verdict in the
   * trace (`fleetx why` checks the others when asked). A unit that must
   * run with others (MachineOf) only looks where they all are. False when
   * nothing passed there: consider() then weighs every machine, which
   * gives an unschedulable unit its full per-machine reasons.
   * This keeps a pass near units × (a few machines) instead of
   * units × machines × units per machine (10,000 units on 1,000 machines:
   * seconds instead of minutes).
   */
  private firstFit(u: SchedUnit): boolean {
    const verdicts = this.traceFastPath ? new Map<string, Rejection | undefined>() : undefined;
    const where = this.candidates(u);
    for (const id of where) {
      const m = this.byId.get(id)!;
      const v = this.check(u, m, 'place');
      verdicts?.set(id, v.ok ? undefined : v.rejection);
      if (!v.ok) continue;
      if (verdicts !== undefined) this.trace.set(u.name, verdicts);
      this.placed.set(pairKey(u.name, id), { unit: u.name, machine: id, reason: placeReason(u, m, undefined, this.board.load(id), []) });
      this.board.add(u.name, id, 'placed');
      return true;
    }
    return false;
  }

  /** Machines worth looking at for a unit without Replaces, best first. */
  private candidates(u: SchedUnit): Iterable<string> {
    const targets = [...new Set(u.xfleet.machineOf)].filter((t) => t !== u.name);
    if (u.xfleet.machineId !== undefined) return this.byId.has(u.xfleet.machineId) ? [u.xfleet.machineId] : [];
    if (targets.length === 0) return this.board.byLoadThenId();
    let common: string[] | undefined;
    for (const t of targets) {
      const at = this.board.machinesOf(t);
      common = common === undefined ? at : common.filter((m) => at.includes(m));
    }
    return [...(common ?? [])].sort((a, b) => this.board.load(a) - this.board.load(b) || (a < b ? -1 : a > b ? 1 : 0));
  }

  /**
   * Rank: displacing is the last resort, then the least loaded machine, ties
   * by id (machines are scanned in id order, so the first minimum wins).
   */
  private best(fits: Fit[]): Fit[] {
    let top: Fit | undefined;
    let topRank = Infinity;
    for (const f of fits) {
      const rank = (f.evicts.length > 0 ? 1e9 : 0) + this.board.load(f.m.id);
      if (rank < topRank) [top, topRank] = [f, rank];
    }
    return top === undefined ? [] : [top];
  }

  private evict(victim: string, m: string, by: SchedUnit, evicts: readonly string[]): void {
    const origin = this.board.origin(victim, m);
    this.board.remove(victim, m);
    if (origin === 'placed') {
      this.placed.delete(pairKey(victim, m)); // placed and displaced in the same pass: never written
      return;
    }
    const target = this.active.get(victim)!.xfleet.machineOf.find((t) => evicts.includes(t));
    const reason = by.xfleet.replaces.includes(victim) ? `replaced by ${by.name}` : `must run with ${target}, which ${by.name} replaces here`;
    this.unschedule.push({ unit: victim, machine: m, reason });
  }
}

/** `eligible` is known only when every machine was weighed (not on the fast path). */
function placeReason(u: SchedUnit, m: SchedMachine, eligible: number | undefined, load: number, evicts: readonly string[]): string {
  const x = u.xfleet;
  let why: string;
  if (x.global) why = 'global unit, machine passes its constraints';
  else if (x.machineOf.length > 0) why = `runs with ${[...new Set(x.machineOf)].sort().join(', ')} (MachineOf)`;
  else if (x.machineId !== undefined) why = `MachineID=${m.id}`;
  else if (eligible === undefined) why = `least loaded eligible machine (${load} unit${load === 1 ? '' : 's'})`;
  else why = `least loaded of ${eligible} eligible machine${eligible === 1 ? '' : 's'} (${load} unit${load === 1 ? '' : 's'})`;
  const direct = evicts.filter((v) => x.replaces.includes(v));
  return direct.length > 0 ? `${why}; replaces ${direct.join(', ')}` : why;
}
