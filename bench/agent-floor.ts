/**
 * What the agent's memory floor is made of: the resident memory of a fresh
 * Node process after it has loaded each set of libraries, and after loading
 * the agent itself (dist/daemon/host.js and its metrics, nothing started),
 * then two GCs; once with the agent unit's NODE_OPTIONS alone
 * (--max-semi-space-size=1) and once with its FLEETX_NODE_FLAGS too
 * (--lite-mode: no JIT, feedback allocated lazily).
 *
 *   npm run build && npx tsx bench/agent-floor.ts [--runs 5]
 *
 * Each figure is the median of --runs processes. The 64 MB target of issue 10
 * is measured against these: what the libraries take before any connection,
 * unit or line of fleetx's own code.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Number(values.runs);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const cases: Array<[string, string[]]> = [
  ['bare Node', []],
  ['etcd3', ['etcd3']],
  ['dbus-next', ['dbus-next']],
  ['pino', ['pino']],
  ['zod', ['zod']],
  ['etcd3 + dbus-next + pino', ['etcd3', 'dbus-next', 'pino']],
  ['  + zod', ['etcd3', 'dbus-next', 'pino', 'zod']],
  ['  + yaml, p-queue, cockatiel, handlebars', ['etcd3', 'dbus-next', 'pino', 'zod', 'yaml', 'p-queue', 'cockatiel', 'handlebars']],
  ['the agent (dist/daemon/host.js + metrics)', ['./dist/daemon/host.js', './dist/metrics/host.js']],
];

/** Node flags of the agent unit: NODE_OPTIONS, then NODE_OPTIONS + FLEETX_NODE_FLAGS (units/fleetx-agent.service.hbs). */
const FLAG_SETS = [['--max-semi-space-size=1'], ['--max-semi-space-size=1', '--lite-mode', '--no-expose-wasm']];

function measure(mods: string[], flags: string[]): { rss: number; heap: number } {
  const script = [
    ...mods.map((m) => `await import(${JSON.stringify(m)});`),
    'globalThis.gc(); globalThis.gc();',
    'const m = process.memoryUsage();',
    'console.log(JSON.stringify({ rss: m.rss, heap: m.heapUsed }));',
  ].join('\n');
  const out = execFileSync(process.execPath, ['--expose-gc', ...flags, '--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH },
  });
  return JSON.parse(out.toString()) as { rss: number; heap: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const mb = (b: number) => (b / 1024 / 1024).toFixed(1);

console.log(`${RUNS} processes each, median; node ${process.version}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('                                             --max-semi-space-size=1   + --lite-mode');
console.log('what is loaded                               RSS MB   heap MB        RSS MB   heap MB');
for (const [label, mods] of cases) {
  const cols = FLAG_SETS.map((flags) => {
    const runs = Array.from({ length: RUNS }, () => measure(mods, flags));
    return `${mb(median(runs.map((r) => r.rss))).padStart(6)}   ${mb(median(runs.map((r) => r.heap))).padStart(7)}`;
  });
  console.log(`${label.padEnd(44)} ${cols.join('        ')}`);
}
