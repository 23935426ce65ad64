/**
 * Placement filters: small checks of one unit against one machine, run in a
 * fixed order. The first that rejects names the reason, which is what
 * `fleetx why UNIT` prints. The same chain validates an assignment kept from
 * `current` (mode 'keep') and a new placement (mode 'place'); only Replaces
 * differs: a placement may displace a unit it replaces, a kept one may not.
 */
import { metadataMatches, unitsConflict } from '../unit/constraints.js';
import type { Board } from './board.js';
import type { UnitOrder } from './order.js';
import type { FilterName, Rejection, SchedMachine, SchedUnit } from './types.js';

export type Mode = 'keep' | 'place';

export interface FilterContext {
  unit: SchedUnit;
  machine: SchedMachine;
  board: Board;
  /** units that want to run (target state loaded or launched), by name */
  active: ReadonlyMap<string, SchedUnit>;
  order: UnitOrder;
  mode: Mode;
}

export type Verdict = { ok: true; evicts: string[] } | { ok: false; rejection: Rejection };

const reject = (filter: FilterName, reason: string): Rejection => ({ filter, reason });

/** Accept every machine but the one named by MachineID. */
export function machineIdFilter({ unit, machine }: FilterContext): Rejection | undefined {
  const want = unit.xfleet.machineId;
  if (want === undefined || want === machine.id) return undefined;
  return reject('MachineID', `requires machine ${want}`);
}

/** Keys AND, values OR; names the first failing key (sorted) so the reason is stable. */
export function metadataFilter({ unit, machine }: FilterContext): Rejection | undefined {
  const required = unit.xfleet.machineMetadata;
  if (metadataMatches(required, machine.metadata)) return undefined;
  for (const key of Object.keys(required).sort()) {
    const values = required[key]!;
    if (metadataMatches({ [key]: values }, machine.metadata)) continue;
    const want = `requires ${key} in [${values.join(', ')}]`;
    const has = Object.hasOwn(machine.metadata, key) ? `${key}=${machine.metadata[key]}` : `no ${key}`;
    return reject('MachineMetadata', `${want}, machine has ${has}`);
  }
  return reject('MachineMetadata', 'metadata does not match');
}

/**
 * The unit must sit on a machine of every unit it names. A target ordered
 * after the unit (only in a MachineOf/Replaces cycle) never counts, so the
 * verdict cannot depend on how far the pass has got.
 */
export function machineOfFilter({ unit, machine, board, active, order, mode }: FilterContext): Rejection | undefined {
  const self = order.index.get(unit.name)!;
  for (const target of [...new Set(unit.xfleet.machineOf)].sort()) {
    if (target === unit.name) continue;
    if (!active.has(target)) return reject('MachineOf', `${target} is not placed`);
    if (order.index.get(target)! > self) return reject('MachineOf', `${target} is in a MachineOf/Replaces cycle with it`);
    const at = board.machinesOf(target);
    // While keeping, a target not kept yet may still be placed later in the pass.
    if (at.length === 0) return reject('MachineOf', mode === 'keep' ? `${target} does not stay on this machine` : `${target} is not placed`);
    if (!at.includes(machine.id)) return reject('MachineOf', `must run with ${target}, which is on ${listMachines(at)}`);
  }
  return undefined;
}

function listMachines(ids: string[]): string {
  return ids.length <= 3 ? ids.join(', ') : `${ids.slice(0, 3).join(', ')} and ${ids.length - 3} more`;
}

/**
 * Units the candidate would displace from this machine: only when placing,
 * only units it names in Replaces and ordered after it (so two units that
 * replace each other cannot take turns evicting one another), plus the units
 * that must follow those (MachineOf), which leave with them. Nothing is
 * displaced if the candidate itself must stay with one of them.
 */
export function evictable({ unit, machine, board, active, order, mode }: FilterContext): string[] {
  if (mode === 'keep' || unit.xfleet.replaces.length === 0) return [];
  const self = order.index.get(unit.name)!;
  const replaces = new Set(unit.xfleet.replaces);
  const here = board.unitsOn(machine.id).filter((v) => v !== unit.name);
  const out = new Set(here.filter((v) => replaces.has(v) && order.index.get(v)! > self));
  for (let grew = out.size > 0; grew; ) {
    grew = false;
    for (const w of here) {
      if (!out.has(w) && active.get(w)!.xfleet.machineOf.some((t) => out.has(t))) {
        out.add(w);
        grew = true;
      }
    }
  }
  if (unit.xfleet.machineOf.some((t) => out.has(t))) return [];
  return [...out].sort();
}

/** Never share a machine with a unit it replaces, or with one that replaces it. */
export function replacesFilter(ctx: FilterContext, evicts: readonly string[]): Rejection | undefined {
  const { unit, machine, board, active } = ctx;
  return firstNeighbour(board.neighbours(machine.id), unit.name, evicts, (other) => {
    if (unit.xfleet.replaces.includes(other)) return reject('Replaces', `replaces ${other}, which stays on this machine`);
    if (active.get(other)?.xfleet.replaces.includes(unit.name)) return reject('Replaces', `replaced by ${other}`);
    return undefined;
  });
}

/** Conflicts in both directions, against every unit on the machine that will stay there. */
export function conflictsFilter(ctx: FilterContext, evicts: readonly string[]): Rejection | undefined {
  const { unit, machine, board, active } = ctx;
  return firstNeighbour(board.neighbours(machine.id), unit.name, evicts, (other) => {
    const o = active.get(other);
    return o !== undefined && unitsConflict(unit, o) ? reject('Conflicts', `conflicts with ${other}`) : undefined;
  });
}

/**
 * The rejection caused by the smallest-named neighbour, so the reason does
 * not depend on the order units arrived on the machine. Scans instead of
 * sorting: this runs for every (unit, machine) pair.
 */
function firstNeighbour(
  neighbours: Iterable<string>,
  self: string,
  skip: readonly string[],
  check: (other: string) => Rejection | undefined,
): Rejection | undefined {
  let best: string | undefined;
  let found: Rejection | undefined;
  for (const other of neighbours) {
    if (other === self || (best !== undefined && other > best) || skip.includes(other)) continue;
    const r = check(other);
    if (r !== undefined) {
      best = other;
      found = r;
    }
  }
  return found;
}

/** Run the chain: MachineID, MachineMetadata, MachineOf, Replaces, Conflicts. */
const MACHINE_FILTERS = [machineIdFilter, metadataFilter, machineOfFilter];

export function checkMachine(ctx: FilterContext): Verdict {
  for (const f of MACHINE_FILTERS) {
    const r = f(ctx);
    if (r !== undefined) return { ok: false, rejection: r };
  }
  const evicts = evictable(ctx);
  const r = replacesFilter(ctx, evicts) ?? conflictsFilter(ctx, evicts);
  return r === undefined ? { ok: true, evicts } : { ok: false, rejection: r };
}

export const formatRejection = (r: Rejection): string => `${r.filter}: ${r.reason}`;
