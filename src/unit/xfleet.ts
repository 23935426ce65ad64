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

/** One thing wrong with a unit's [X-Fleet] section. */
interface Problem {
  message: string;
  hint?: string;
}

/**
 * Read and validate the [X-Fleet] options of unit `name`. Throws FleetxError
 * 'invalid' for: an invalid unit name, an unknown key (listing the known
 * ones), an unknown specifier, a bad Global boolean, conflicting MachineID
 * values, a malformed MachineMetadata entry, a Conflicts glob that is not a
 * valid pattern (fleet's path.Match refused it and never matched), a
 * MachineOf/Replaces entry that is not a valid unit name or names the unit
 * itself, a MachineOf left empty, and combinations fleet refused ("MachineID
 * cannot be combined with Conflicts in [X-Fleet]"). Every problem of the
 * section is reported at once, one per line.
 */
export function parseXFleet(u: UnitFile, name: string): XFleetOptions {
  const unit = parseUnitName(name);
  const lists: Record<Exclude<Key, 'MachineID' | 'Global'>, string[]> = { Conflicts: [], MachineOf: [], MachineMetadata: [], Replaces: [] };
  const set = new Set<Key>();
  const problems: Problem[] = [];
  const bad = (message: string, hint?: string) => problems.push(hint === undefined ? { message } : { message, hint });
  let machineId: string | undefined;
  let global = false;
  let emptyMachineOf: string | undefined;

  for (const o of u.options) {
    if (o.section !== XFLEET_SECTION) continue;
    const key = Object.hasOwn(XFLEET_KEYS, o.name) ? XFLEET_KEYS[o.name]! : undefined;
    if (key === undefined) {
      bad(`${name}: unknown option ${o.name} in [X-Fleet]`, `known options: ${Object.keys(XFLEET_KEYS).join(', ')}`);
      continue;
    }
    const where = `${name}: ${o.name}=${o.value}`;
    let tokens: string[];
    try {
      tokens = splitMultivalue(o.value, where).map((t) => expand(t, unit, where));
    } catch (e) {
      bad((e as Error).message, (e as { hint?: string }).hint);
      continue;
    }
    if (key === 'MachineID') {
      // Kept exactly as written; whether a unique prefix of a machine id may
      // match (fleetctl resolved prefixes) is the scheduler's decision.
      if (tokens.length > 1) {
        bad(`${where}: MachineID takes one machine id`);
        continue;
      }
      const id = tokens[0];
      if (id !== undefined && machineId !== undefined && id !== machineId) {
        bad(`${name}: MachineID is set twice with different values (${machineId}, ${id})`);
      }
      machineId = id;
    } else if (key === 'Global') {
      const v = (tokens[0] ?? '').toLowerCase();
      if (tokens.length > 1 || (v !== '' && !TRUE.has(v) && !FALSE.has(v))) {
        bad(`${where}: Global must be a boolean`, 'use true/yes/1/on or false/no/0/off');
        continue;
      }
      global = TRUE.has(v);
    } else if (tokens.length === 0) {
      lists[key] = []; // `Conflicts=` resets, as systemd does for lists
      if (key === 'MachineOf') emptyMachineOf = o.name;
    } else {
      if (key === 'MachineOf') emptyMachineOf = undefined;
      if (key === 'Conflicts') for (const g of tokens) checkGlob(g, where, bad);
      lists[key].push(...tokens);
    }
  }
  // A reset followed by nothing: most often a template value that rendered
  // empty. Running with no MachineOf at all is rarely what was meant.
  if (emptyMachineOf !== undefined) {
    bad(`${name}: ${emptyMachineOf}= is empty`, 'name the unit this one must run beside (e.g. MachineOf=db.service), or leave the option out');
  }
  if (machineId !== undefined) set.add('MachineID');
  if (global) set.add('Global');
  for (const k of ['Conflicts', 'MachineOf', 'Replaces'] as const) if (lists[k].length > 0) set.add(k);

  for (const [a, b] of EXCLUSIVE) {
    if (set.has(a) && set.has(b)) bad(`${name}: ${a} cannot be combined with ${b} in [X-Fleet]`);
  }

  const machineOf = unique(lists.MachineOf);
  for (const peer of machineOf) checkPeer(unit, 'MachineOf', peer, bad);
  const replaces = unique(lists.Replaces);
  for (const r of replaces) checkPeer(unit, 'Replaces', r, bad);
  const machineMetadata = parseMetadata(name, lists.MachineMetadata, bad);

  if (problems.length === 1) throw invalidError(problems[0]!.message, problems[0]!.hint);
  if (problems.length > 1) {
    const hints = unique(problems.flatMap((p) => (p.hint === undefined ? [] : [p.hint])));
    throw invalidError(`${name}: ${problems.length} problems in [X-Fleet]:\n  ${problems.map((p) => p.message).join('\n  ')}`, hints.length > 0 ? hints.join('; ') : undefined);
  }

  const opts: XFleetOptions = { conflicts: unique(lists.Conflicts), machineOf, machineMetadata, global, replaces };
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

type Report = (message: string, hint?: string) => void;

/**
 * Go's path.Match syntax, which fleet used: a `[` opens a class that must be
 * closed, holds at least one character (a `]` right after `[` or `[^` is
 * literal), ranges run low to high, and `\` escapes the next character.
 * fleet returned ErrBadPattern for anything else and the glob matched nothing.
 */
export function globProblem(glob: string): string | undefined {
  const chars = [...glob];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '\\') {
      if (++i >= chars.length) return 'it ends in a lone "\\"';
    } else if (c === '[') {
      let j = i + 1;
      if (chars[j] === '^') j++;
      let n = 0;
      for (;;) {
        if (j >= chars.length) return `the "[" at position ${i + 1} is never closed`;
        if (chars[j] === ']' && n > 0) break;
        const lo = chars[j] === '\\' ? chars[++j] : chars[j];
        if (lo === undefined) return 'it ends in a lone "\\"';
        j++;
        if (chars[j] === '-' && chars[j + 1] !== undefined && chars[j + 1] !== ']') {
          const hi = chars[j + 1] === '\\' ? chars[j + 2] : chars[j + 1];
          if (hi === undefined) return 'it ends in a lone "\\"';
          if (hi < lo) return `the range "${lo}-${hi}" runs backwards`;
          j += chars[j + 1] === '\\' ? 3 : 2;
        }
        n++;
      }
      i = j;
    }
  }
  return undefined;
}

function checkGlob(glob: string, where: string, bad: Report): void {
  const why = globProblem(glob);
  if (why !== undefined) bad(`${where}: ${JSON.stringify(glob)} is not a valid glob: ${why}`, 'Conflicts takes globs as fleet did: *, ? and [...] classes, e.g. Conflicts=web@*.service');
}

function checkPeer(unit: UnitName, option: 'MachineOf' | 'Replaces', peer: string, bad: Report): void {
  let p;
  try {
    p = parseUnitName(peer);
  } catch (e) {
    const after = unit.isTemplate ? ' (after expanding specifiers for the template, where %i is empty)' : '';
    bad(`${unit.full}: ${option}=${peer} is not a valid unit name${after}: ${(e as Error).message}`);
    return;
  }
  if (p.full === unit.full) bad(`${unit.full}: ${option} names the unit itself`);
  else if (p.isTemplate && !unit.isTemplate) {
    bad(`${unit.full}: ${option}=${peer} names a template, which never runs`, 'name an instance such as db@1.service, or use %i in a template');
  }
}

function parseMetadata(name: string, entries: string[], bad: Report): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const e of entries) {
    const eq = e.indexOf('=');
    const key = eq < 0 ? '' : e.slice(0, eq);
    const value = eq < 0 ? '' : e.slice(eq + 1);
    if (key === '' || value === '') {
      bad(`${name}: malformed MachineMetadata entry ${JSON.stringify(e)}`, 'entries are key=value, e.g. MachineMetadata=region=us-east "disk=ssd"');
      continue;
    }
    const list = (out[key] ??= []);
    if (!list.includes(value)) list.push(value);
  }
  return { ...out };
}

const unique = (xs: string[]): string[] => [...new Set(xs)];
