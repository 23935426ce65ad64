/**
 * The lexical rules shared by the parser and the serializer, kept in one
 * place so that whatever one accepts the other can write back unchanged.
 */

/** systemd strips " \t\n\r" around keys and values; lines have no \n or \r left. */
export const stripWs = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, '');

/** Key names: what systemd and fleet units use (ExecStart, X-Fleet keys, Environment). */
export const KEY_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Section names: no brackets, no control characters, no surrounding blanks. */
export const SECTION_RE = /^[^\s[\]\x00-\x1f\x7f](?:[^[\]\x00-\x1f\x7f]*[^\s[\]\x00-\x1f\x7f])?$/;

export const isComment = (line: string): boolean => /^[ \t]*[#;]/.test(line);

/**
 * systemd scans each line toggling an "escaped" flag on every backslash; the
 * line continues when it ends escaped, i.e. in an odd run of backslashes.
 */
export function endsInContinuation(s: string): boolean {
  let n = 0;
  for (let i = s.length - 1; i >= 0 && s[i] === '\\'; i--) n++;
  return n % 2 === 1;
}

/** A lone UTF-16 surrogate: text that has no UTF-8 form (systemd refuses invalid UTF-8). */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a value cannot be written as `Key=value` on one line, or undefined if it can. */
export function unwritableValue(value: string): string | undefined {
  if (value.includes('\0')) return 'it contains a NUL byte';
  if (LONE_SURROGATE.test(value)) return 'it is not valid Unicode text (lone surrogate)';
  if (/[\r\n]/.test(value)) return 'it contains a line break';
  if (stripWs(value) !== value) return 'it has leading or trailing whitespace, which systemd strips';
  if (endsInContinuation(value)) return 'it ends in a backslash, which systemd reads as a line continuation';
  return undefined;
}
