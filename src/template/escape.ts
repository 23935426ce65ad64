/**
 * How a value is written at each place of a unit file. systemd expands
 * specifiers (`%n`, `%i`, ...) in almost every value, expands `$VAR` and
 * `${VAR}` only in Exec* command lines, splits Exec* and Environment= values
 * into words with double-quote / backslash rules, and joins a line ending in
 * a backslash with the next one. A value may therefore never carry a line
 * break or a trailing backslash, `%` is always doubled, and `$` is doubled
 * in command lines. fleet expands its own specifiers in [X-Fleet], where
 * `%%` is not understood, so `%` is refused there.
 */
export type ValueContext = 'exec' | 'environment' | 'xfleet' | 'other';

export interface Position {
  /** The token begins a word (after whitespace or at the value's start). */
  wordStart: boolean;
  /** Everything before the token in the command's first word is Exec prefixes (`-`, `@`...) or nothing. */
  prefixPosition: boolean;
  /** The token sits inside quotes written by the template. */
  inQuotes: boolean;
}

/** Keys whose value is a command line (services and sockets). */
const EXEC_KEYS = new Set(['ExecStart', 'ExecStartPre', 'ExecStartPost', 'ExecCondition', 'ExecReload', 'ExecStop', 'ExecStopPre', 'ExecStopPost']);

export function contextOf(section: string, key: string): ValueContext {
  if (section === 'X-Fleet') return 'xfleet';
  if (EXEC_KEYS.has(key)) return 'exec';
  if (key === 'Environment') return 'environment';
  return 'other';
}

/** A value that cannot be written where the template put it. */
export class ValueProblem extends Error {}

// C0, DEL and C1 control characters; any of them can end or corrupt a line.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const SPACE_RE = /[ \t]/; // systemd's word separators besides \n \r (refused as controls)
/** Exec prefixes systemd reads from the first word: `-/bin/x` ignores failure, `!` drops privileges... */
const EXEC_PREFIX_RE = /^[-@:+!|]/;

function describe(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ? `control character U+${cp.toString(16).padStart(4, '0').toUpperCase()}` : JSON.stringify(ch);
}

function checkCommon(raw: string, quoted = false): void {
  if (LONE_SURROGATE_RE.test(raw)) throw new ValueProblem('contains an unpaired UTF-16 surrogate (not valid UTF-8)');
  const c = CONTROL_RE.exec(raw);
  if (c) throw new ValueProblem(`contains ${describe(c[0])}; a unit value must stay on one line`);
  // Inside quotes the backslash is escaped, so only a bare one continues the line.
  // Trailing blanks do not help: systemd strips them, and a backslash then
  // ends the line (fleetx's parser refuses the ambiguous "\\ " ending too).
  if (!quoted && /\\[ \t]*$/.test(raw)) throw new ValueProblem('ends with a backslash, which would continue the line');
}

const escapePercent = (s: string) => s.replaceAll('%', '%%');
const escapeDollar = (s: string) => s.replaceAll('$', '$$$$'); // `$$$$` is "$$" in a replacement string

/** A plain `{{x}}` value at `pos` in a value of context `ctx`. */
export function writePlain(raw: string, ctx: ValueContext, pos: Position): string {
  checkCommon(raw);
  if (ctx === 'other') return escapePercent(raw);
  const forbidden = ctx === 'exec' ? /[ \t"'\\;]/ : /[ \t"'\\]/;
  const f = forbidden.exec(raw);
  if (f) {
    throw new ValueProblem(
      `contains ${SPACE_RE.test(f[0]) ? 'whitespace' : describe(f[0])}, which would change how the line splits into words` +
        (ctx === 'xfleet' ? '' : '; use {{arg x}} (or {{kv k v}}) to pass it as one quoted word'),
    );
  }
  if (ctx === 'xfleet') {
    if (raw.includes('%')) throw new ValueProblem('contains "%", which fleet would expand as a specifier in [X-Fleet]');
    return raw;
  }
  if (ctx === 'exec') {
    // systemd unquotes the first word before reading prefixes, so quotes do not help here.
    if (pos.prefixPosition && EXEC_PREFIX_RE.test(raw)) {
      throw new ValueProblem(`starts with "${raw[0]}", which systemd would read as an Exec prefix`);
    }
    if (pos.wordStart && !pos.inQuotes && raw.startsWith('-')) {
      throw new ValueProblem('starts with "-" at the start of a word, so the command would read it as an option; use {{arg x}} in the template if an option is meant');
    }
  }
  const out = escapePercent(raw);
  return ctx === 'exec' ? escapeDollar(out) : out;
}

/** A value from `{{arg x}}`, `{{args xs}}` or `{{kv k v}}`: exactly one quoted word. */
export function writeArg(raw: string, ctx: ValueContext, pos: Position): string {
  if (ctx !== 'exec' && ctx !== 'environment') {
    throw new ValueProblem('is a quoted argument ({{arg}}/{{args}}/{{kv}}), which only Exec*= and Environment= lines understand');
  }
  if (pos.inQuotes) throw new ValueProblem('is a quoted argument placed inside quotes written by the template');
  checkCommon(raw, true);
  if (ctx === 'exec' && pos.prefixPosition && EXEC_PREFIX_RE.test(raw)) {
    throw new ValueProblem(`starts with "${raw[0]}", which systemd would read as an Exec prefix even when quoted`);
  }
  let body = escapePercent(raw.replaceAll('\\', '\\\\').replaceAll('"', '\\"'));
  if (ctx === 'exec') body = escapeDollar(body);
  return `"${body}"`;
}
