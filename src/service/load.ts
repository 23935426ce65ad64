/**
 * Reading a service file: YAML -> schema -> ServiceSpec, with every problem
 * reported as "FILE:LINE: field message" (all of them at once).
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { invalidError, notFoundError } from '../errors/errors.js';
import { yamlData } from '../template/values.js';
import { serviceFileSchema, toSpec } from './schema.js';
import type { ServiceSpec } from './types.js';

/** Throws 'not-found' when the file cannot be read, 'invalid' listing every problem. */
export function loadServiceFile(path: string, shown = path): ServiceSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw notFoundError(`cannot read service file ${shown}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseServiceText(text, shown);
}

/** Pure: the text of a service file, named `shown` in messages. */
export function parseServiceText(text: string, shown: string): ServiceSpec {
  const lines = new LineCounter();
  // Numbers stay numbers here (instances, ports); template values keep YAML types too.
  const doc = parseDocument(text, { uniqueKeys: true, lineCounter: lines, prettyErrors: false });
  const yamlErr = doc.errors[0];
  if (yamlErr) {
    const line = lines.linePos(yamlErr.pos[0]).line;
    throw invalidError(`${shown}:${line}: invalid YAML: ${yamlErr.message.split('\n')[0]}`);
  }
  const data: unknown = yamlData(doc, shown) ?? {};
  const res = serviceFileSchema.safeParse(data);
  if (res.success) return { ...toSpec(res.data), values: valuesAsWritten(text, res.data.values) };
  const problems = res.error.issues.map((i) => {
    const path = i.path.map(String);
    const field = path.join('.') || '(top level)';
    const line = lineOf(doc, lines, i.code === 'unrecognized_keys' ? [...path, String(i.keys[0])] : path);
    const msg = i.code === 'unrecognized_keys' ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')}` : `${field} ${i.message}`;
    const where = i.code === 'unrecognized_keys' && path.length > 0 ? ` (in ${field})` : '';
    return `${shown}${line ? `:${line}` : ''}: ${msg}${where}`;
  });
  if (problems.length === 1) throw invalidError(problems[0]!, 'see docs/ROLLOUT.md for the service file format');
  throw invalidError(`${problems.length} problems in ${shown}:\n  ${problems.join('\n  ')}`, 'see docs/ROLLOUT.md for the service file format');
}

/** Line of the deepest node that exists on the path (a missing field points at its parent). */
function lineOf(doc: Document, lines: LineCounter, path: string[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Template values keep YAML numbers as written (`tag: 1.10` is "1.10"), as `fleetx render -f` does. */
function valuesAsWritten(text: string, parsed: Record<string, unknown>): Record<string, unknown> {
  const doc = parseDocument(text, { customTags: (tags) => tags.filter((t) => typeof t === 'string' || !/:(int|float)$/.test(t.tag)) });
  const values = (yamlData(doc, 'values') as { values?: unknown } | null)?.values;
  return values !== null && typeof values === 'object' && !Array.isArray(values) ? (values as Record<string, unknown>) : parsed;
}
