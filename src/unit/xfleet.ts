/**
 * fleet's scheduling options, read from the [X-Fleet] section of a unit and
 * validated the way fleet did. List options are space-separated (double
 * quotes group, as fleet's parseMultivalueLine) and repeatable; an empty
 * assignment resets an option, as systemd does for lists.
 */
import { invalidError } from '../errors/errors.js';
import { parseUnitName } from './name.js';
import { expandSpecifiers } from './specifiers.js';
import type { UnitFile, UnitName, XFleetOptions } from './types.js';

export const XFLEET_SECTION = 'X-Fleet';

type Key = 'Conflicts' | 'MachineOf' | 'MachineID' | 'MachineMetadata' | 'Global' | 'Replaces';

/** Option names fleet accepted, with the pre-0.8 deprecated spellings. */
export const XFLEET_KEYS: Readonly<Record<string, Key>> = {
  Conflicts: 'Conflicts',
  MachineOf: 'MachineOf',
  MachineID: 'MachineID',
  MachineMetadata: 'MachineMetadata',
  Global: 'Global',
  Replaces: 'Replaces',
  'X-Conflicts': 'Conflicts',
  'X-ConditionMachineOf': 'MachineOf',
  'X-ConditionMachineID': 'MachineID',
  'X-ConditionMachineMetadata': 'MachineMetadata',
};

const TRUE = new Set(['true', 'yes', '1', 'on']);
const FALSE = new Set(['false', 'no', '0', 'off']);

/** Pairs fleet refused, checked in this order; messages name both options. */
const EXCLUSIVE: ReadonlyArray<readonly [Key, Key]> = [
  ['MachineID', 'Conflicts'],
  ['MachineID', 'MachineOf'],
  ['MachineID', 'Global'],
  ['MachineID', 'Replaces'],
  // fleet: "options other than MachineMetadata are invalid alongside Global=true"
  ['Global', 'Conflicts'],
  ['Global', 'MachineOf'],
  ['Global', 'Replaces'],
  ['Conflicts', 'Replaces'],
];

/** Split a value on blanks; double quotes group and are removed. `where` prefixes errors. */
export function splitMultivalue(value: string, where?: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuotes = false;
  let started = false;
  for (const c of value) {
    if (c === '"') {
      inQuotes = !inQuotes;
      started = true;
    } else if ((c === ' ' || c === '\t') && !inQuotes) {
      if (started) out.push(cur);
      cur = '';
      started = false;
    } else {
      cur += c;
      started = true;
    }
  }
  if (inQuotes) throw invalidError(`${where === undefined ? '' : where + ': '}unterminated double quote in ${JSON.stringify(value)}`);
  if (started) out.push(cur);
  return out;
}

/**
 * Read and validate the [X-Fleet] options of unit `name`. Throws FleetxError
 * 'invalid' for: an invalid unit name, an unknown key (listing the known
 * ones), an unknown specifier, a bad Global boolean, conflicting MachineID
 * values, a malformed MachineMetadata entry, a MachineOf/Replaces entry that
 * is not a valid unit name or names the unit itself, and combinations fleet
 * refused ("MachineID cannot be combined with Conflicts in [X-Fleet]").
 */
export function parseXFleet(u: UnitFile, name: string): XFleetOptions {
  const unit = parseUnitName(name);
  const lists: Record<Exclude<Key, 'MachineID' | 'Global'>, string[]> = { Conflicts: [], MachineOf: [], MachineMetadata: [], Replaces: [] };
  const set = new Set<Key>();
  let machineId: string | undefined;
  let global = false;

  for (const o of u.options) {
    if (o.section !== XFLEET_SECTION) continue;
    const key = Object.hasOwn(XFLEET_KEYS, o.name) ? XFLEET_KEYS[o.name]! : undefined;
    if (key === undefined) {
      throw invalidError(`${name}: unknown option ${o.name} in [X-Fleet]`, `known options: ${Object.keys(XFLEET_KEYS).join(', ')}`);
    }
    const where = `${name}: ${o.name}=${o.value}`;
    const tokens = splitMultivalue(o.value, where).map((t) => expand(t, unit, where));
    if (key === 'MachineID') {
      // Kept exactly as written; whether a unique prefix of a machine id may
      // match (fleetctl resolved prefixes) is the scheduler's decision.
      if (tokens.length > 1) throw invalidError(`${where}: MachineID takes one machine id`);
      const id = tokens[0];
      if (id !== undefined && machineId !== undefined && id !== machineId) {
        throw invalidError(`${name}: MachineID is set twice with different values (${machineId}, ${id})`);
      }
      machineId = id;
    } else if (key === 'Global') {
      const v = (tokens[0] ?? '').toLowerCase();
      if (tokens.length > 1 || (v !== '' && !TRUE.has(v) && !FALSE.has(v))) {
        throw invalidError(`${where}: Global must be a boolean`, 'use true/yes/1/on or false/no/0/off');
      }
      global = TRUE.has(v);
    } else if (tokens.length === 0) {
      lists[key] = []; // `Conflicts=` resets, as systemd does for lists
    } else {
      lists[key].push(...tokens);
    }
  }
  if (machineId !== undefined) set.add('MachineID');
  if (global) set.add('Global');
  for (const k of ['Conflicts', 'MachineOf', 'Replaces'] as const) if (lists[k].length > 0) set.add(k);

  for (const [a, b] of EXCLUSIVE) {
    if (set.has(a) && set.has(b)) throw invalidError(`${name}: ${a} cannot be combined with ${b} in [X-Fleet]`);
  }

  const machineOf = unique(lists.MachineOf);
  for (const peer of machineOf) checkPeer(unit, 'MachineOf', peer);
  const replaces = unique(lists.Replaces);
  for (const r of replaces) checkPeer(unit, 'Replaces', r);

  const opts: XFleetOptions = {
    conflicts: unique(lists.Conflicts),
    machineOf,
    machineMetadata: parseMetadata(name, lists.MachineMetadata),
    global,
    replaces,
  };
  if (machineId !== undefined) opts.machineId = machineId;
  return opts;
}

function expand(token: string, unit: UnitName, where: string): string {
  try {
    return expandSpecifiers(token, unit);
  } catch (e) {
    throw invalidError(`${where}: ${(e as Error).message}`, 'X-Fleet values support %n %N %p %P %i %I %%');
  }
}

function checkPeer(unit: UnitName, option: 'MachineOf' | 'Replaces', peer: string): void {
  let p;
  try {
    p = parseUnitName(peer);
  } catch (e) {
    const after = unit.isTemplate ? ' (after expanding specifiers for the template, where %i is empty)' : '';
    throw invalidError(`${unit.full}: ${option}=${peer} is not a valid unit name${after}: ${(e as Error).message}`);
  }
  if (p.full === unit.full) throw invalidError(`${unit.full}: ${option} names the unit itself`);
  if (p.isTemplate && !unit.isTemplate) {
    throw invalidError(`${unit.full}: ${option}=${peer} names a template, which never runs`, 'name an instance such as db@1.service, or use %i in a template');
  }
}

function parseMetadata(name: string, entries: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const e of entries) {
    const eq = e.indexOf('=');
    const key = eq < 0 ? '' : e.slice(0, eq);
    const value = eq < 0 ? '' : e.slice(eq + 1);
    if (key === '' || value === '') {
      throw invalidError(`${name}: malformed MachineMetadata entry ${JSON.stringify(e)}`, 'entries are key=value, e.g. MachineMetadata=region=us-east "disk=ssd"');
    }
    const list = (out[key] ??= []);
    if (!list.includes(value)) list.push(value);
  }
  return { ...out };
}

const unique = (xs: string[]): string[] => [...new Set(xs)];
