/**
 * Second half of rendering: Handlebars has produced the unit text with
 * tokens where values go (tokens.ts). This walks the text the way systemd
 * reads it (sections, `Key=value` lines, backslash continuations, words and
 * quotes inside command lines), decides the context of each token and writes
 * the value escaped for it (escape.ts). It also writes a "benign" copy where
 * every value is a harmless word, so the caller can check that the real
 * values produced exactly the same directives.
 */
import { contextOf, writeArg, writePlain, ValueProblem } from './escape.js';
import type { ValueContext } from './escape.js';
import { TOKEN_OPEN } from './tokens.js';
import type { TokenTable } from './tokens.js';

export interface Substituted {
  text: string;
  benign: string;
  /** One line per value that could not be written where it was placed. */
  problems: string[];
}

const TOKEN_AT = /\uE000([pa])(\d+)\uE001/y;

interface LineState {
  section: string;
  key: string;
  ctx: ValueContext;
  quote: string; // '' or the open quote character
  escaped: boolean;
  inWord: boolean;
  wordIndex: number;
  word: string; // the current word so far, with values shown as x
}

function preview(raw: string): string {
  return JSON.stringify(raw.length > 60 ? `${raw.slice(0, 57)}...` : raw);
}

/** Whitespace ends a word; a lone unquoted `;` starts a new command (its first word is the executable again). */
function endWord(st: LineState): void {
  if (st.inWord) st.wordIndex = st.word === ';' ? 0 : st.wordIndex + 1;
  st.inWord = false;
  st.word = '';
}

export function substitute(tokenized: string, table: TokenTable): Substituted {
  const problems: string[] = [];
  const text: string[] = [];
  const benign: string[] = [];
  let section = '';
  let value: LineState | undefined; // set while inside a (possibly continued) value

  const where = (lineNo: number) => (value ? `${value.key}= in [${value.section}]` : 'the unit') + ` (rendered line ${lineNo})`;

  // Replace tokens that may not appear at all in this part of a line.
  const refuseTokens = (seg: string, lineNo: number, place: string): string => {
    if (!seg.includes(TOKEN_OPEN)) return seg;
    return seg.replace(/\uE000([pa])(\d+)\uE001/g, (_m, _k, idx: string) => {
      const e = table.entries[Number(idx)]!;
      problems.push(`value ${e.path} ${preview(e.raw)} is used ${place} (rendered line ${lineNo}); values may only appear after "Key="`);
      return 'x';
    });
  };

  const writeValue = (seg: string, st: LineState, lineNo: number): [string, string] => {
    let out = '';
    let ben = '';
    for (let i = 0; i < seg.length; ) {
      TOKEN_AT.lastIndex = i;
      const m = seg[i] === TOKEN_OPEN ? TOKEN_AT.exec(seg) : null;
      if (m) {
        const e = table.entries[Number(m[2])]!;
        const pos = {
          wordStart: !st.inWord,
          // Only Exec prefix characters (or quotes, which systemd removes first) so far in the
          // command's first word: systemd would read a value's leading - @ : + ! | as more prefixes.
          prefixPosition: st.wordIndex === 0 && /^[-@:+!|"']*$/.test(st.word),
          inQuotes: st.quote !== '',
        };
        try {
          out += e.kind === 'plain' ? writePlain(e.raw, st.ctx, pos) : writeArg(e.raw, st.ctx, pos);
        } catch (err) {
          if (!(err instanceof ValueProblem)) throw err;
          problems.push(`value ${e.path} ${preview(e.raw)} in ${where(lineNo)} ${err.message}`);
        }
        ben += e.kind === 'plain' ? 'x' : '"x"';
        st.inWord = true;
        st.word += 'x';
        st.escaped = false;
        i += m[0].length;
        continue;
      }
      const c = seg[i]!;
      if (st.escaped) st.escaped = false;
      else if (c === '\\') st.escaped = true;
      else if (st.quote) {
        if (c === st.quote) st.quote = '';
      } else if (c === '"' || c === "'") st.quote = c;
      else if (c === ' ' || c === '\t') {
        endWord(st);
        out += c;
        ben += c;
        i++;
        continue;
      }
      st.inWord = true;
      st.word += c;
      out += c;
      ben += c;
      i++;
    }
    return [out, ben];
  };

  tokenized.split('\n').forEach((line, idx) => {
    const lineNo = idx + 1;
    let out: string;
    let ben: string;
    const trimmed = line.trimStart();
    const comment = trimmed.startsWith('#') || trimmed.startsWith(';');
    if (comment) {
      // As in systemd, a comment line is skipped even inside a continuation.
      out = ben = refuseTokens(line, lineNo, 'in a comment');
      text.push(out);
      benign.push(ben);
      return;
    }
    if (value) {
      // Continuation of the previous line: systemd joins it with a space.
      endWord(value);
      [out, ben] = writeValue(line, value, lineNo);
    } else if (trimmed === '') {
      out = ben = line;
    } else if (trimmed.startsWith('[')) {
      out = ben = refuseTokens(line, lineNo, 'in a section header');
      const end = trimmed.indexOf(']');
      section = end > 0 ? trimmed.slice(1, end) : trimmed.slice(1);
    } else {
      const eq = line.indexOf('=');
      if (eq < 0) {
        out = ben = refuseTokens(line, lineNo, 'on a line without "="');
      } else {
        const keyPart = refuseTokens(line.slice(0, eq + 1), lineNo, 'in a key');
        const key = keyPart.slice(0, -1).trim();
        value = { section, key, ctx: contextOf(section, key), quote: '', escaped: false, inWord: false, wordIndex: 0, word: '' };
        const [o, b] = writeValue(line.slice(eq + 1), value, lineNo);
        out = keyPart + o;
        ben = keyPart + b;
      }
    }
    text.push(out);
    benign.push(ben);
    // A line continues when it ends in an odd number of backslashes.
    const trailing = /\\*$/.exec(out.trimEnd())![0].length;
    if (trailing % 2 === 0) value = undefined;
  });
  return { text: text.join('\n'), benign: benign.join('\n'), problems };
}
