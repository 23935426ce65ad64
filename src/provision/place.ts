/**
 * Values enter user-data only as whole YAML scalars. The template is rendered
 * with every value replaced by a token (template/tokens.ts), the result is
 * parsed as YAML, and only then is each token scalar given its value, in the
 * parsed document: the yaml library writes it with the quoting it needs.
 * So a value can change the text of one scalar and nothing else.
 *
 * Rules checked on the tokenized document (each refusal names the value):
 * - a token is a whole scalar: not part of a longer string, not in a block
 *   scalar with other text, never a mapping key;
 * - no token where cloud-init reads a command: a string item of runcmd or
 *   bootcmd (run by a shell), or the first word of a list item (the program);
 * - no token in a file's path, owner or permissions (write_files);
 * - a secret (`secrets.*`, `secretFiles.*`) only as the content of a
 *   write_files entry with permissions 0600 or 0400.
 */
import { isMap, isPair, isScalar, isSeq, parseDocument, visit, type Document, type Node, type Scalar } from 'yaml';
import { containsSentinel, TokenTable, type TokenEntry } from '../template/tokens.js';

const COMMAND_KEYS = new Set(['runcmd', 'bootcmd']);
const SECRET_PATH = /^(?:secrets|secretFiles)\./;
const PRIVATE_MODES = new Set(['0600', '0400']);

export interface Placed {
  doc: Document.Parsed;
  problems: string[];
}

/** Parses the tokenized text and gives every token scalar its value. Problems are collected, not thrown. */
export function placeValues(tokenized: string, table: TokenTable): Placed {
  const doc = parseDocument(tokenized, { uniqueKeys: true, prettyErrors: false });
  const problems: string[] = [...doc.errors, ...doc.warnings].map((e) => `the template does not give valid YAML: ${e.message}`);
  if (problems.length > 0) return { doc, problems };

  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && hasToken(pair.key)) problems.push(`a value (${pathsIn(pair.key, table)}) is used as a YAML key`);
    },
    Scalar(key, node, path) {
      if (key === 'key' || !hasToken(node)) return;
      const entry = table.entryOf(node.value);
      if (!entry) {
        problems.push(`values ${pathsIn(node, table)} must each be a whole YAML scalar ({{x}} alone after the key or dash), not part of a text`);
        return;
      }
      const refusal = refuse(locate(key, path), entry, doc);
      if (refusal) problems.push(refusal);
      node.value = entry.raw;
      // In a block mapping or list the yaml library chooses the quoting (a
      // block literal for a unit file or a PEM). Inside a flow list ([a, b])
      // it can write a plain multi-line scalar that does not read back
      // (yaml 2.9: ":\n>"), and in a block it writes " \n" as a literal that
      // reads back as "\n" (both found by the property test): double quotes
      // there, and for any multi-line text that is not plain lines.
      const inFlow = path.some((p) => (isSeq(p) || isMap(p)) && p.flow === true);
      node.type = inFlow || (entry.raw.includes('\n') && !blockSafe(entry.raw)) ? 'QUOTE_DOUBLE' : undefined;
    },
  });
  return { doc, problems };
}

/** Multi-line text the yaml library writes as a block literal that reads back the same: printable ASCII lines, none with trailing blanks, not starting with a blank. */
function blockSafe(text: string): boolean {
  return /^[\x21-\x7e][\x20-\x7e\n]*$/.test(text) && !/ \n| $/.test(text);
}

function hasToken(node: Scalar): boolean {
  return typeof node.value === 'string' && containsSentinel(node.value);
}

function pathsIn(node: Scalar, table: TokenTable): string {
  const ids = [...String(node.value).matchAll(/\uE000[pa](\d+)\uE001/g)].map((m) => table.entries[Number(m[1])]?.path ?? '?');
  return ids.join(', ') || '(unknown)';
}

/** Where a scalar sits: its keys and sequence indexes from the root, e.g. ['runcmd', 3, 0]. */
export type Step = string | number;

function locate(key: number | 'key' | 'value' | null, path: readonly unknown[]): Step[] {
  const steps: Step[] = [];
  path.forEach((here, i) => {
    if (isPair(here)) steps.push(isScalar(here.key) ? String(here.key.value) : '?');
    else if (isSeq(here)) steps.push(i + 1 < path.length ? here.items.indexOf(path[i + 1] as Node) : (key as number));
  });
  return steps;
}

function refuse(where: Step[], entry: TokenEntry, doc: Document.Parsed): string | undefined {
  const [top, index, field] = where;
  const name = entry.path;
  if (typeof top === 'string' && COMMAND_KEYS.has(top)) {
    if (field === undefined) return `value ${name} is a whole ${top} item, which cloud-init runs with a shell; write [program, {{${name}}}]`;
    if (field === 0) return `value ${name} is the program of a ${top} command`;
  }
  if (top === 'write_files' && typeof field === 'string' && field !== 'content') {
    return `value ${name} is a write_files ${field}; paths, owners and permissions are written in the template`;
  }
  if (SECRET_PATH.test(name)) {
    const mode = top === 'write_files' && field === 'content' ? doc.getIn(['write_files', index, 'permissions']) : undefined;
    if (!PRIVATE_MODES.has(String(mode))) return `secret ${name} may only be the content of a write_files entry with permissions '0600' or '0400'`;
  }
  return undefined;
}
