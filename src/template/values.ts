/**
 * Template values from the command line: YAML files (`-f`, merged in order,
 * later files win, maps merge deeply) then `--set key=value` assignments
 * (`env.FOO=bar`, `ports[0]=8080:80`). A --set value is always a string;
 * so is a YAML number, kept exactly as written. Booleans and null stay typed.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { invalidError, usageError } from '../errors/errors.js';
import { mergeValues } from './defaults.js';

export interface LoadValuesOptions {
  files: string[];
  sets: string[];
  cwd: string;
}

type Obj = Record<string, unknown>;
type Segment = string | number;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Throws 'usage' for unreadable files and bad --set syntax, 'invalid' for bad YAML or a non-mapping top level. */
export function loadValues(opts: LoadValuesOptions): Record<string, unknown> {
  let values: Obj = {};
  for (const f of opts.files) values = mergeValues(values, readValuesFile(resolve(opts.cwd, f), f));
  for (const s of opts.sets) applySet(values, s);
  return values;
}

function readValuesFile(path: string, shown: string): Obj {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw usageError(`cannot read values file ${shown}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  // Numbers stay as written (`tag: 1.10` is "1.10", not 1.1): unit text is text.
  const doc = parseDocument(text, { uniqueKeys: true, customTags: (tags) => tags.filter((t) => typeof t === 'string' || !/:(int|float)$/.test(t.tag)) });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    throw invalidError(`${shown}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${err.message.split('\n')[0]}`);
  }
  const data = yamlData(doc, shown);
  if (data === null || data === undefined) return {};
  if (!isObj(data)) throw invalidError(`${shown}: the top level must be a mapping of names to values, not ${Array.isArray(data) ? 'a list' : typeof data}`);
  return data;
}

/**
 * A parsed YAML document's data. yaml refuses a document whose aliases
 * expand too far (an alias bomb: 9 aliases of 9 aliases... is gigabytes) with
 * a ReferenceError: that is bad input, not a crash.
 */
export function yamlData(doc: { toJS(): unknown }, shown: string): unknown {
  try {
    return doc.toJS();
  } catch (e) {
    if (e instanceof ReferenceError || e instanceof RangeError) {
      throw invalidError(`${shown}: invalid YAML: ${e.message}`, 'aliases (*name) may be used at most 100 times in one file');
    }
    throw e;
  }
}

/** `a.b[0].c` -> ['a', 'b', 0, 'c']. */
export function parseSetPath(key: string): Segment[] | undefined {
  const re = /^([A-Za-z_][A-Za-z0-9_-]*)|^\.([A-Za-z_][A-Za-z0-9_-]*)|^\[(\d+)\]/;
  const out: Segment[] = [];
  let rest = key;
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m || (out.length === 0) !== (m[1] !== undefined)) return undefined;
    const seg = m[1] ?? m[2] ?? Number(m[3]);
    if (typeof seg === 'string' && FORBIDDEN_KEYS.has(seg)) return undefined;
    out.push(seg);
    rest = rest.slice(m[0].length);
  }
  return out.length > 0 ? out : undefined;
}

function applySet(values: Obj, assignment: string): void {
  const eq = assignment.indexOf('=');
  const path = eq > 0 ? parseSetPath(assignment.slice(0, eq)) : undefined;
  if (!path) {
    throw usageError(`--set ${JSON.stringify(assignment)}: expected key=value, with key like name, env.FOO or ports[0]`);
  }
  const key = assignment.slice(0, eq);
  const value = assignment.slice(eq + 1);
  let cur: unknown = values;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    const next = path[i + 1];
    const fresh = () => (typeof next === 'number' ? [] : {});
    if (typeof seg === 'number') {
      if (!Array.isArray(cur)) throw usageError(`--set ${key}: ${describe(path, i)} is not a list`);
      if (seg > cur.length) throw usageError(`--set ${key}: index ${seg} is past the end of a list of ${cur.length} (use [${cur.length}] to append)`);
      if (last) cur[seg] = value;
      else if (cur[seg] === undefined) cur[seg] = fresh();
      cur = cur[seg];
    } else {
      if (!isObj(cur)) throw usageError(`--set ${key}: ${describe(path, i)} is not a mapping`);
      if (last) cur[seg] = value;
      else if (cur[seg] === undefined || cur[seg] === null) cur[seg] = fresh();
      cur = cur[seg];
    }
  }
}

function describe(path: Segment[], upto: number): string {
  if (upto === 0) return 'the top level';
  return path.slice(0, upto).reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}
