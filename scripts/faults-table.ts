/**
 * Renders the fault matrix's figures (test/faults/results/*.json, written
 * by each cell of `npm run test:faults`) as the Markdown table of
 * docs/RELIABILITY.md.
 *
 *   npm run faults:table [-- DIR]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CellFigures as Figures } from '../test/faults/harness/cell.js';


const dir = process.argv[2] ?? join(import.meta.dirname, '..', 'test', 'faults', 'results');
let files: string[];
try {
  files = readdirSync(dir).filter((f) => f.endsWith('.json'));
} catch {
  console.error(`no results in ${dir}: run npm run test:faults first`);
  process.exit(4);
}
const rows = files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Figures).sort((a, b) => a.at.localeCompare(b.at));
const secs = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(1)} s`);
const cell = (s: string) => s.replace(/\|/g, '\\|');

console.log('| cell | requests | failed (with a backend serving) | invariant violations | recovered in | rollout ended | reproduce |');
console.log('| --- | ---: | ---: | ---: | ---: | --- | --- |');
for (const r of rows) {
  console.log(`| ${cell(r.cell)}${r.note ? ` (${cell(r.note)})` : ''} | ${r.requests} | ${r.failedRequests} (${r.failedWithBackend}) | ${r.violations.length} | ${secs(r.recoverMs)} | ${r.rollout} | \`${cell(r.command)}\` |`);
}
