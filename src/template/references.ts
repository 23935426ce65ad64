/**
 * Handlebars' strict mode throws on a missing `{{x}}`, but not on values
 * only used as helper parameters (`{{#if x}}`, `{{#each ports}}`,
 * `{{arg image}}`), where a typo would silently drop part of a unit. So
 * before rendering, every path the template reads in the root context is
 * checked against the values; a template declares optional values by giving
 * them a default (defaults.ts). Inside `#each` / `#with` the context changes,
 * and strict mode still catches missing `{{x}}` there at render time.
 */
// Types only: the global `hbs.AST` namespace comes with handlebars' declarations.
import type {} from 'handlebars';

type Node = hbs.AST.Node;
type Path = hbs.AST.PathExpression;

export interface MissingValue {
  path: string;
  line: number;
  column: number;
}

const SCOPE_CHANGING = new Set(['each', 'with']);

function has(values: unknown, parts: string[]): boolean {
  let cur: unknown = values;
  for (const p of parts) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, p)) return false;
    cur = (cur as Record<string, unknown>)[p];
    if (cur === undefined) return false;
  }
  return true;
}

export function findMissing(ast: hbs.AST.Program, values: Record<string, unknown>, helpers: Set<string>): MissingValue[] {
  const missing: MissingValue[] = [];

  const checkPath = (p: Path, rootScope: boolean) => {
    if (p.depth > 0) return;
    let parts = p.parts;
    if (p.data) {
      if (parts[0] !== 'root') return; // @index, @key, @first...
      parts = parts.slice(1);
    } else if (!rootScope) return;
    if (parts.length === 0) return; // `this`
    if (!has(values, parts)) missing.push({ path: p.original, line: p.loc.start.line, column: p.loc.start.column });
  };

  const expr = (n: Node | undefined, rootScope: boolean) => {
    if (!n) return;
    if (n.type === 'PathExpression') checkPath(n as Path, rootScope);
    else if (n.type === 'SubExpression') call(n as hbs.AST.SubExpression, rootScope, true);
  };

  // A call's own path is a helper name when it has params or names a helper.
  const call = (n: { path: Node; params: Node[]; hash?: hbs.AST.Hash }, rootScope: boolean, isHelper = false) => {
    const hasArgs = n.params.length > 0 || (n.hash?.pairs.length ?? 0) > 0;
    const name = n.path.type === 'PathExpression' ? (n.path as Path).original : '';
    if (!isHelper && !hasArgs && !helpers.has(name)) expr(n.path, rootScope);
    for (const p of n.params) expr(p, rootScope);
    for (const pair of n.hash?.pairs ?? []) expr(pair.value, rootScope);
  };

  const program = (prog: hbs.AST.Program | undefined, rootScope: boolean) => {
    for (const s of prog?.body ?? []) {
      if (s.type === 'MustacheStatement') call(s as hbs.AST.MustacheStatement, rootScope);
      else if (s.type === 'BlockStatement') {
        const b = s as hbs.AST.BlockStatement;
        call(b, rootScope);
        // `{{#if x}}` keeps the context; `{{#each}}`, `{{#with}}` and `{{#x}}` change it.
        program(b.program, rootScope && b.params.length > 0 && !SCOPE_CHANGING.has(b.path.original));
        program(b.inverse, rootScope);
      }
    }
  };

  program(ast, true);
  return missing;
}
