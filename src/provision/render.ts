/**
 * renderUserData: a cloud-config template (Handlebars) + values -> user-data
 * text, strictly:
 *
 *   1. refuse template paths that have no value (template/references.ts)
 *   2. render with every value replaced by a token (template/tokens.ts);
 *      partials come only from the cloud-config folder
 *   3. parse the result as YAML and give each token scalar its value there
 *      (place.ts: whole scalars only, no command, path or key from a value,
 *      secrets only in 0600 files)
 *   4. write the document with the yaml library, re-parse the text and check
 *      it is the same data, with the `#cloud-config` header first
 */
import Handlebars from 'handlebars';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { FleetxError, invalidError } from '../errors/errors.js';
import { findMissing } from '../template/references.js';
import { containsSentinel, TokenTable } from '../template/tokens.js';
import { placeValues } from './place.js';

export const HEADER = '#cloud-config';
const HELPERS = new Set(['if', 'unless', 'each', 'with', 'eq', 'blockHelperMissing', 'helperMissing']);

export interface UserDataTemplate {
  name: string;
  source: string;
  /** Partials by name, e.g. `fleetx-host-files`; nothing else can be included. */
  partials: Record<string, string>;
}

export interface RenderedUserData {
  text: string;
  /** The data cloud-init will read. */
  config: Record<string, unknown>;
}

/** Throws FleetxError 'invalid' for template errors, missing values and values that would change the document's structure. */
export function renderUserData(t: UserDataTemplate, values: Record<string, unknown>): RenderedUserData {
  const fail = (msg: string): never => {
    throw invalidError(`cloud-config template ${t.name}: ${msg}`);
  };
  for (const [name, src] of [[t.name, t.source], ...Object.entries(t.partials)] as const) {
    if (containsSentinel(src)) fail(`${name} contains private-use characters U+E000/U+E001, which fleetx reserves`);
  }
  const table = new TokenTable();
  const hb = handlebarsFor(table);
  const missing: string[] = [];
  for (const [name, src] of [[t.name, t.source], ...Object.entries(t.partials)] as const) {
    let ast: hbs.AST.Program;
    try {
      ast = Handlebars.parse(src);
    } catch (e) {
      return fail(`${name}: ${firstLine(e)}`);
    }
    for (const m of findMissing(ast, values, HELPERS)) missing.push(`"${m.path}" (${name} line ${m.line})`);
    if (name !== t.name) hb.registerPartial(name, src);
  }
  if (missing.length > 0) fail(`not set: ${missing.join(', ')}`);

  let tokenized: string;
  try {
    tokenized = hb.compile(t.source, { noEscape: true, strict: true })(tokenize(values, table), {
      allowProtoPropertiesByDefault: false,
      allowProtoMethodsByDefault: false,
    });
  } catch (e) {
    if (e instanceof FleetxError) throw e;
    return fail(firstLine(e));
  }
  if (!tokenized.startsWith(`${HEADER}\n`)) fail(`must start with a "${HEADER}" line`);

  // The header is a comment to YAML; it is written back by hand, first.
  const { doc, problems } = placeValues(tokenized.slice(HEADER.length + 1), table);
  if (problems.length > 0) fail(problems.length === 1 ? problems[0]! : `\n  ${problems.join('\n  ')}`);
  const config = doc.toJS() as unknown;
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return fail('must be a YAML mapping');

  const text = `${HEADER}\n${doc.toString({ lineWidth: 0 })}`;
  let again: unknown;
  try {
    again = parseYaml(text) as unknown;
  } catch (e) {
    return fail(`internal: the written user-data does not read back (${firstLine(e)})`);
  }
  if (!isDeepStrictEqual(again, config)) fail('internal: the written user-data does not read back as the same data');
  return { text, config: config as Record<string, unknown> };
}

/**
 * A Handlebars instance whose conditionals look through tokens: every
 * string, the empty one too, is a token here (unlike in unit templates, an
 * empty value must still become a scalar: `""`, not nothing).
 */
function handlebarsFor(table: TokenTable): typeof Handlebars {
  const hb = Handlebars.create();
  hb.unregisterHelper('log');
  hb.registerHelper('lookup', () => {
    throw new Error('{{lookup}} is not allowed in cloud-config templates (it reads paths no check can see)');
  });
  const truthy = (v: unknown) => {
    const raw = table.unwrap(v);
    return Array.isArray(raw) ? raw.length > 0 : Boolean(raw);
  };
  hb.registerHelper('if', function (this: unknown, v: unknown, o: Handlebars.HelperOptions) {
    return truthy(v) ? o.fn(this) : o.inverse(this);
  });
  hb.registerHelper('unless', function (this: unknown, v: unknown, o: Handlebars.HelperOptions) {
    return truthy(v) ? o.inverse(this) : o.fn(this);
  });
  hb.registerHelper('eq', (a: unknown, b: unknown) => table.unwrap(a) === table.unwrap(b));
  return hb;
}

/** Every string and number becomes a token; booleans stay (they print as YAML booleans, nothing else). */
function tokenize(value: unknown, table: TokenTable, path = ''): unknown {
  if (typeof value === 'string' || typeof value === 'number') return table.add('plain', String(value), path);
  if (Array.isArray(value)) return value.map((v, i) => tokenize(v, table, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, tokenize(v, table, path ? `${path}.${k}` : k)]));
  }
  return value;
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0]!;
}
