/**
 * The helpers templates may use. All of them see values through the token
 * table, so they work on the original text, and those that print return new
 * tokens: escaping still happens afterwards, for the place they print to.
 *
 *   {{arg x}}          x as one quoted word of a command line / Environment=
 *   {{args xs}}        each element of the list as one quoted word
 *   {{kv k v}}         "k=v" as one quoted word (docker -e, Environment=)
 *   {{oneOf x "a" "b"}} x, which must be one of the listed literals
 *   {{#if (eq x "a")}} comparison on the original value
 */
import type Handlebars from 'handlebars';
import type { TokenTable } from './tokens.js';

/** A helper was called with a value it cannot use; `line` is the template line. */
export class HelperProblem extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
  }
}

export const HELPER_NAMES = ['arg', 'args', 'kv', 'oneOf', 'eq'] as const;
// Environment names as systemd and docker accept them in practice (also used for --metadata k=v).
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

type Options = Handlebars.HelperOptions & { loc?: { start: { line: number } }; name?: string };

export function registerHelpers(hb: typeof Handlebars, table: TokenTable): void {
  const fail = (options: Options, msg: string): never => {
    throw new HelperProblem(`{{${options.name ?? 'helper'}}}: ${msg}`, options.loc?.start.line);
  };
  const pathOf = (v: unknown) => table.entryOf(v)?.path ?? '(literal)';
  const scalar = (v: unknown, options: Options, what: string): string => {
    const raw = table.unwrap(v);
    if (typeof raw === 'string') return raw;
    if (typeof raw === 'number' && Number.isFinite(raw)) return String(raw);
    return fail(options, `${what} must be a string or number, got ${raw === undefined ? 'nothing (value not set)' : Array.isArray(raw) ? 'a list' : typeof raw}`);
  };
  const argToken = (v: unknown, options: Options) => table.add('arg', scalar(v, options, 'the argument'), pathOf(v));

  hb.registerHelper('arg', (v: unknown, options: Options) => argToken(v, options));

  hb.registerHelper('args', (list: unknown, options: Options) => {
    if (list === undefined || list === null || list === '') return '';
    if (!Array.isArray(list)) return fail(options, `expects a list, got ${typeof table.unwrap(list)} (${pathOf(list)})`);
    return list.map((v) => argToken(v, options)).join(' ');
  });

  hb.registerHelper('kv', (k: unknown, v: unknown, options: Options) => {
    const key = scalar(k, options, 'the name');
    if (!ENV_NAME_RE.test(key)) fail(options, `${JSON.stringify(key)} is not a valid name for k=v (letters, digits, _ . -)`);
    return table.add('arg', `${key}=${scalar(v, options, 'the value')}`, table.entryOf(v)?.path ?? key);
  });

  hb.registerHelper('oneOf', (v: unknown, ...rest: unknown[]) => {
    const options = rest.pop() as Options;
    const raw = table.unwrap(v);
    // The result equals a literal written in the template, so it is printed as is.
    const hit = rest.find((c) => c === raw);
    if (hit === undefined) fail(options, `${pathOf(v)} is ${JSON.stringify(raw)}; allowed: ${rest.map((c) => JSON.stringify(c)).join(', ')}`);
    return hit;
  });

  hb.registerHelper('eq', (a: unknown, b: unknown) => table.unwrap(a) === table.unwrap(b));
}
