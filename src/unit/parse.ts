/**
 * A faithful reader of systemd unit syntax (systemd's conf-parser):
 * `[Section]` headers, `Key=Value` assignments, `#`/`;` comment lines,
 * trailing-backslash continuation. The result is normalized: options grouped
 * by section in order of first appearance (repeated headers merge), repeated
 * keys kept in order, comments and blank lines dropped.
 */
import { invalidError } from '../errors/errors.js';
import { endsInContinuation, isComment, KEY_RE, LONE_SURROGATE, SECTION_RE, stripWs } from './syntax.js';
import type { UnitFile, UnitOption } from './types.js';

/**
 * Parse unit file text. `source` (a file or unit name) prefixes error
 * messages. Throws FleetxError 'invalid' naming source and line for: an
 * option before any section, a line without `=`, a malformed section header,
 * an empty or invalid key, a NUL byte, a lone carriage return, a lone
 * UTF-16 surrogate (no UTF-8 form).
 */
/**
 * The largest unit file fleetx stores, in bytes of UTF-8. Real units are a
 * few KiB; etcd refuses a request over 1.5 MiB, and a body travels in one
 * transaction with the records that name it. Checked first, so a huge file
 * is refused at once instead of after parsing it.
 */
export const UNIT_SIZE_MAX = 256 * 1024;

export function parseUnit(text: string, source = 'unit file'): UnitFile {
  const bytes = text.length > UNIT_SIZE_MAX / 4 ? Buffer.byteLength(text, 'utf8') : text.length;
  if (bytes > UNIT_SIZE_MAX) {
    throw invalidError(`${source}: the unit file is ${bytes} bytes, more than the ${UNIT_SIZE_MAX} (256 KiB) fleetx stores`, 'keep data out of unit files: put it in an image, a volume, or an EnvironmentFile= on the host');
  }
  const sections = new Map<string, UnitOption[]>();
  let current: UnitOption[] | undefined;
  let currentName = '';

  function fail(line: number, why: string, hint?: string): never {
    throw invalidError(`${source}:${line}: ${why}`, hint);
  }

  const nul = text.indexOf('\0');
  if (nul >= 0) fail(lineAt(text, nul), 'contains a NUL byte');

  if (text.startsWith('\uFEFF')) text = text.slice(1); // systemd skips a UTF-8 BOM
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const last = lines.length - 1;
  if (last >= 0 && lines[last]!.endsWith('\r')) lines[last] = lines[last]!.slice(0, -1); // CRLF file cut before its final LF

  const handle = (logical: string, lineNo: number): void => {
    const l = stripWs(logical);
    if (l === '') return;
    if (l.startsWith('[')) {
      if (!l.endsWith(']') || l.length < 2) fail(lineNo, `malformed section header ${JSON.stringify(l)}`, 'a section header is a whole line like [Service]');
      const name = l.slice(1, -1);
      if (!SECTION_RE.test(name)) fail(lineNo, `invalid section name ${JSON.stringify(name)}`, 'a section name is non-empty, without brackets, control characters or surrounding blanks');
      currentName = name;
      current = sections.get(name);
      if (current === undefined) sections.set(name, (current = []));
      return;
    }
    const eq = l.indexOf('=');
    if (eq < 0) fail(lineNo, `line has no "=": ${JSON.stringify(clip(l))}`, 'each line is [Section], Key=Value, a # or ; comment, or blank');
    const name = stripWs(l.slice(0, eq));
    const value = stripWs(l.slice(eq + 1));
    if (name === '') fail(lineNo, 'empty option name before "="');
    if (!KEY_RE.test(name)) fail(lineNo, `invalid option name ${JSON.stringify(clip(name))}`, 'option names use letters, digits and "_.-"');
    if (current === undefined) fail(lineNo, `option ${name} appears before any [Section] header`);
    if (endsInContinuation(value)) {
      // Only reachable when blanks follow the backslash: systemd then keeps
      // the backslash, but the value could never be written back unchanged.
      fail(lineNo, `value of ${name} ends in a backslash followed by blanks`, 'remove the trailing blanks to continue the line, or double the backslash');
    }
    current.push({ section: currentName, name, value });
  };

  let pending: string | undefined; // a logical line being continued
  let pendingLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.includes('\r')) fail(i + 1, 'contains a carriage return inside a line');
    if (LONE_SURROGATE.test(raw)) fail(i + 1, 'is not valid Unicode text (lone surrogate)');
    // As in systemd, comment lines are skipped even inside a continuation.
    if (isComment(raw)) continue;
    const joined = pending === undefined ? raw : pending + raw;
    const startLine = pending === undefined ? i + 1 : pendingLine;
    if (endsInContinuation(joined)) {
      // systemd replaces the backslash with a space and appends the next line as is.
      pending = joined.slice(0, -1) + ' ';
      pendingLine = startLine;
      continue;
    }
    pending = undefined;
    handle(joined, startLine);
  }
  // A file ending inside a continuation is accepted, as systemd does.
  if (pending !== undefined) handle(pending, pendingLine);

  return { options: [...sections.values()].flat() };
}

function lineAt(text: string, index: number): number {
  let n = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

const clip = (s: string): string => (s.length > 60 ? s.slice(0, 57) + '...' : s);
