/**
 * renderTemplate: Handlebars source + values -> unit text, safely.
 *
 *   1. parse; read the template's declared defaults; merge the values over them
 *   2. refuse bad value names and secret-looking values (validate.ts)
 *   3. refuse any path the template reads that has no value (references.ts)
 *   4. render with every value replaced by a token (tokens.ts)
 *   5. write each value escaped for where its token landed (substitute.ts)
 *   6. re-parse the unit, and check its (section, key) lines are exactly those
 *      the same template gives with harmless values; check [X-Fleet]
 *
 * Design notes and the rules per context are in README.md.
 */
import Handlebars from 'handlebars';
import { FleetxError, invalidError } from '../errors/errors.js';
import { parseUnit } from '../unit/parse.js';
import { isValidUnitName } from '../unit/name.js';
import { parseXFleet } from '../unit/xfleet.js';
import type { UnitFile } from '../unit/types.js';
import { checkShapes, mergeValues, templateDefaults } from './defaults.js';
import { HELPER_NAMES, HelperProblem, registerHelpers } from './helpers.js';
import { findMissing } from './references.js';
import { substitute } from './substitute.js';
import { containsSentinel, TokenTable } from './tokens.js';
import { validateValues } from './validate.js';

export interface RenderOptions {
  /** Used in messages; when it is a unit name (`app@.service`, optionally + `.hbs`) [X-Fleet] is checked against it. */
  templateName: string;
}

export interface Rendered {
  text: string;
  unit: UnitFile;
}

const BUILTIN_HELPERS = ['if', 'unless', 'each', 'with', 'lookup', 'blockHelperMissing', 'helperMissing'];
const KNOWN_HELPERS = new Set<string>([...BUILTIN_HELPERS, ...HELPER_NAMES]);

/** Throws FleetxError 'invalid' for template syntax errors, missing or unusable values, and units that fail to parse. */
export function renderTemplate(source: string, values: Record<string, unknown>, opts: RenderOptions): Rendered {
  const name = opts.templateName;
  const fail = (msg: string, hint?: string): never => {
    throw invalidError(`template ${name}: ${msg}`, hint);
  };
  if (containsSentinel(source)) fail('contains private-use characters U+E000/U+E001, which fleetx reserves');

  let ast: hbs.AST.Program;
  try {
    ast = Handlebars.parse(source);
  } catch (e) {
    return fail(`line ${(e as Handlebars.Exception).lineNumber ?? '?'}: ${firstLine(e)}`);
  }
  const defaults = templateDefaults(ast, name);
  const merged = mergeValues(defaults, values);
  checkShapes(defaults, merged, name);
  validateValues(merged, name);

  const missing = findMissing(ast, merged, KNOWN_HELPERS);
  if (missing.length > 0) {
    const lines = new Map<string, number[]>();
    for (const m of missing) lines.set(m.path, [...(lines.get(m.path) ?? []), m.line]);
    const list = [...lines].map(([p, ls]) => `"${p}" (line${ls.length > 1 ? 's' : ''} ${ls.join(', ')})`);
    fail(`value${lines.size > 1 ? 's' : ''} not set: ${list.join(', ')}`, 'give values with --set key=value or -f values.yaml');
  }

  const table = new TokenTable();
  const hb = Handlebars.create();
  hb.unregisterHelper('log'); // would write to the console
  registerHelpers(hb, table);
  let tokenized: string;
  try {
    const template = hb.compile(ast, { noEscape: true, strict: true, knownHelpersOnly: false });
    tokenized = template(table.wrap(merged), { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false });
  } catch (e) {
    if (e instanceof FleetxError) throw e;
    if (e instanceof HelperProblem) return fail(`${e.line ? `line ${e.line}: ` : ''}${e.message}`);
    const line = (e as Handlebars.Exception).lineNumber;
    return fail(`${line ? `line ${line}: ` : ''}${firstLine(e)}`, 'give values with --set key=value or -f values.yaml');
  }

  const sub = substitute(tokenized, table);
  if (sub.problems.length > 0) fail(`${sub.problems.length === 1 ? '' : '\n  '}${sub.problems.join('\n  ')}`);

  const unit = parseUnit(sub.text, `${name} (rendered)`);
  const baseline = parseUnit(sub.benign, `${name} (rendered with placeholder values)`);
  const got = unit.options.map((o) => `[${o.section}] ${o.name}`);
  const want = baseline.options.map((o) => `[${o.section}] ${o.name}`);
  if (got.join('\n') !== want.join('\n')) {
    fail(`the values changed the unit's structure: expected directives ${want.join(', ')}; got ${got.join(', ')}`);
  }

  const unitName = name.replace(/^.*\//, '').replace(/\.hbs$/, '');
  if (isValidUnitName(unitName)) parseXFleet(unit, unitName);
  return { text: sub.text, unit };
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0]!;
}
