/**
 * Bulk commands benchmark: `start`, `stop`, `unload`, `load` and
 * `destroy` of 1,000 units in one command each, every one timed as a whole
 * process (Node start-up included), against a real etcd started here on
 * free loopback ports and removed at the end.
 *
 *   npm run bench:bulk [-- --units 1000 --runs 5]
 *
 * Each run takes a fresh key prefix and goes through the five commands in
 * that order, on instances `bulk@1..N.service` of a template file next to
 * the CLI (so `start` submits them too). No agents run: this is the CLI's
 * share (reading the state once, writing batched transactions); what the
 * hosts then do is bench:converge's business. Also printed: etcd requests
 * per command (etcd's own /metrics, unary gRPC calls started).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEtcd } from '../test/helpers/etcd.js';
import { BIN } from '../test/helpers/cli.js';
import { summarize, timedProcess, type ProcessRun } from './timing.js';

const { values } = parseArgs({ options: { units: { type: 'string', default: '1000' }, runs: { type: 'string', default: '5' } } });
const UNITS = Number(values.units);
const RUNS = Number(values.runs);
const COMMANDS = [['start', '--no-block'], ['stop', '--no-block'], ['unload', '--no-block'], ['load', '--no-block'], ['destroy']] as const;
const TEMPLATE = ['[Unit]', 'Description=bulk bench %i', '[Service]', 'ExecStart=/bin/sleep infinity', ''].join('\n');

/** Unary gRPC requests etcd has started so far. */
async function unaryRequests(endpoint: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^grpc_server_started_total\{[^}]*grpc_type="unary"[^}]*\} (\S+)$/gm)) n += Number(m[1]);
  return n;
}

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const scratch = await mkdtemp(join(tmpdir(), 'fleetx-bench-bulk-'));
  try {
    await writeFile(join(scratch, 'bulk@.service'), TEMPLATE);
    const names = Array.from({ length: UNITS }, (_, i) => `bulk@${i + 1}.service`);
    const endpoint = etcd.endpoints[0]!;
    const runs = new Map<string, ProcessRun[]>(COMMANDS.map(([c]) => [c, []]));
    const requests = new Map<string, number>();
    for (let r = 0; r < RUNS; r++) {
      const env = { PATH: process.env.PATH, FLEETX_ENDPOINT: endpoint, FLEETX_ETCD_KEY_PREFIX: `/bulk${r}` };
      for (const [cmd, ...flags] of COMMANDS) {
        const before = await unaryRequests(endpoint);
        runs.get(cmd)!.push(await timedProcess([process.execPath, BIN, cmd, ...flags, ...names], env, scratch, scratch));
        requests.set(cmd, (await unaryRequests(endpoint)) - before);
      }
    }
    console.log(`${RUNS} runs of each command on ${UNITS} units (whole processes); load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`);
    console.log('command    wall min / median / max ms   cpu median ms   etcd requests');
    for (const [cmd] of COMMANDS) {
      const wall = summarize(runs.get(cmd)!.map((x) => x.wallMs));
      const cpu = summarize(runs.get(cmd)!.map((x) => x.cpuMs));
      console.log(`${cmd.padEnd(9)} ${`${wall.min.toFixed(0)} / ${wall.median.toFixed(0)} / ${wall.max.toFixed(0)}`.padStart(24)}   ${cpu.median.toFixed(0).padStart(13)}   ${String(requests.get(cmd)).padStart(13)}`);
    }
    const worst = Math.max(...COMMANDS.map(([c]) => summarize(runs.get(c)!.map((x) => x.wallMs)).median));
    console.log(`bulk commands of ${UNITS} units: slowest median ${worst.toFixed(0)} ms (target ≤ 1500)`);
  } finally {
    await etcd.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
