/**
 * Values never enter a template's output as raw text. Before rendering,
 * every non-empty string (and non-zero number) in the values is replaced by
 * an opaque token made of private-use characters; helpers such as `arg`
 * produce tokens too. After Handlebars has run, the substitution step
 * (substitute.ts) looks at where each token landed in the unit (section, key,
 * word position) and only then writes the value, escaped for that place.
 * This is what makes `{{x}}` and `{{{x}}}` equally safe: both print a token.
 */
import { invalidError } from '../errors/errors.js';

export const TOKEN_OPEN = '\uE000';
export const TOKEN_CLOSE = '\uE001';
/** Matches one token: kind `p` = plain value, `a` = quoted argument. */
export const TOKEN_RE = /\uE000([pa])(\d+)\uE001/g;
const SINGLE_TOKEN_RE = /^\uE000([pa])(\d+)\uE001$/;

export type TokenKind = 'plain' | 'arg';

export interface TokenEntry {
  kind: TokenKind;
  raw: string;
  /** Where the value came from, for messages: `ports[1]`, `env.FOO`. */
  path: string;
}

/** Per-render table of tokens. Not shared between renders. */
export class TokenTable {
  readonly entries: TokenEntry[] = [];

  add(kind: TokenKind, raw: string, path: string): string {
    this.entries.push({ kind, raw, path });
    return `${TOKEN_OPEN}${kind === 'plain' ? 'p' : 'a'}${this.entries.length - 1}${TOKEN_CLOSE}`;
  }

  /** The entry a string stands for when it is exactly one token. */
  entryOf(s: unknown): TokenEntry | undefined {
    if (typeof s !== 'string') return undefined;
    const m = SINGLE_TOKEN_RE.exec(s);
    return m ? this.entries[Number(m[2])] : undefined;
  }

  /** The original value behind a (possibly) tokenized value, for helpers. */
  unwrap(v: unknown): unknown {
    const e = this.entryOf(v);
    return e ? e.raw : v;
  }

  /**
   * A deep copy of values with leaves tokenized. Falsy leaves ("" and 0) stay
   * as they are so `{{#if}}` keeps its meaning; they print safely anyway.
   */
  wrap(value: unknown, path = ''): unknown {
    if (typeof value === 'string') return value === '' ? value : this.add('plain', value, path);
    if (typeof value === 'number') return value === 0 ? value : this.add('plain', String(value), path);
    if (value === null || value === undefined || typeof value === 'boolean') return value;
    if (Array.isArray(value)) return value.map((v, i) => this.wrap(v, `${path}[${i}]`));
    if (typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.wrap(v, path ? `${path}.${k}` : k);
      return out;
    }
    throw invalidError(`value ${path || '(root)'} has unsupported type ${typeof value}`);
  }
}

export function containsSentinel(s: string): boolean {
  return s.includes(TOKEN_OPEN) || s.includes(TOKEN_CLOSE);
}
