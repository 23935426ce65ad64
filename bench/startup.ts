/**
 * Start-up benchmark: `fleetx --version` and `fleetx list-units` with 100
 * units, each timed as a whole process (Node's start-up, module loading,
 * the etcd round trips and exit), many runs, against `node -e 0` as the
 * yardstick, in turn (A B C A B C ...) so a drifting machine affects all
 * alike.
 *
 *   npm run bench:startup [-- --runs 20 --units 100]
 *
 * A real etcd (started here on free loopback ports, removed at the end)
 * holds what a 3-machine cluster running the units would hold: the units,
 * their body, the engine's schedule entries and the agents' machine and
 * state records, written directly as those processes would have.
 * Wall time is measured around each child from spawn to exit; CPU (user +
 * system) and peak RSS come from `/usr/bin/time`, which wraps each run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../test/helpers/etcd.js';
import { BIN } from '../test/helpers/cli.js';
import { keyspace } from '../src/registry/keys.js';
import type { MachineRecord, ScheduleRecord, UnitRecord, UnitStateRecord } from '../src/registry/records.js';
import { summarize, timedProcess as timed, type ProcessRun as Run, type Summary } from './timing.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, units: { type: 'string', default: '100' } } });
const RUNS = Number(values.runs);
const UNITS = Number(values.units);
const MACHINES = ['a1'.padEnd(32, '1'), 'b2'.padEnd(32, '2'), 'c3'.padEnd(32, '3')];

/** What 3 agents and an engine would have written for UNITS running instances of one template. */
async function seed(client: Etcd3, prefix: string): Promise<void> {
  const keys = keyspace(prefix);
  const hash = 'f'.repeat(40);
  const body = ['[Unit]', 'Description=startup bench %i', '[Service]', 'ExecStart=/bin/sleep infinity', ''].join('\n');
  const now = new Date().toISOString();
  const puts: Array<[string, unknown]> = [];
  MACHINES.forEach((id, i) => {
    const m: MachineRecord = { id, ip: `10.0.0.${i + 1}`, metadata: {}, version: '0.1.0', startedAt: now };
    puts.push([keys.machine(id), m]);
  });
  puts.push([keys.unit('bench@.service'), { name: 'bench@.service', hash, targetState: 'inactive', updatedAt: now } satisfies UnitRecord]);
  for (let i = 1; i <= UNITS; i++) {
    const name = `bench@${i}.service`;
    const machine = MACHINES[i % MACHINES.length]!;
    puts.push([keys.unit(name), { name, hash, targetState: 'launched', template: 'bench@.service', updatedAt: now } satisfies UnitRecord]);
    puts.push([keys.schedule(machine, name), { name, hash, targetState: 'launched' } satisfies ScheduleRecord]);
    const state: UnitStateRecord = { name, machine, hash, loadState: 'loaded', activeState: 'active', subState: 'running', mainPid: 1000 + i, updatedAt: now };
    puts.push([keys.state(machine, name), state]);
  }
  await client.put(keys.body(hash)).value(body);
  for (let i = 0; i < puts.length; i += 100) {
    const success = puts.slice(i, i + 100).map(([k, v]) => ({ request_put: { key: Buffer.from(k), value: Buffer.from(JSON.stringify(v)) } }));
    await client.kv.txn({ compare: [], success, failure: [] });
  }
}

const line = (name: string, s: Summary, unit = 'ms') => `${s.min.toFixed(0)} / ${s.median.toFixed(0)} / ${s.max.toFixed(0)} ${unit}`.padStart(22) + `  ${name}`;

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const scratch = await mkdtemp(join(tmpdir(), 'fleetx-bench-startup-'));
  const client = new Etcd3({ hosts: etcd.endpoints });
  try {
    const prefix = '/bench';
    await seed(client, prefix);
    const env = { PATH: process.env.PATH, FLEETX_ENDPOINT: etcd.endpoints.join(','), FLEETX_ETCD_KEY_PREFIX: prefix };
    const commands: Array<[string, string[]]> = [
      ['node -e 0', [process.execPath, '-e', '0']],
      ['fleetx --version', [process.execPath, BIN, '--version']],
      [`fleetx list-units (${UNITS} units)`, [process.execPath, BIN, 'list-units']],
    ];
    const runs = new Map<string, Run[]>(commands.map(([n]) => [n, []]));
    for (const [, argv] of commands) await timed(argv, env, scratch); // warm-up, not counted
    for (let r = 0; r < RUNS; r++) for (const [n, argv] of commands) runs.get(n)!.push(await timed(argv, env, scratch));

    console.log(`${RUNS} runs each, in turn; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`);
    console.log(`${'wall min / median / max'.padStart(22)}  command`);
    for (const [n] of commands) console.log(line(n, summarize(runs.get(n)!.map((x) => x.wallMs))));
    console.log(`${'cpu min / median / max'.padStart(22)}  (user + system, /usr/bin/time)`);
    for (const [n] of commands) console.log(line(n, summarize(runs.get(n)!.map((x) => x.cpuMs))));
    console.log(`${'peak RSS median'.padStart(22)}`);
    for (const [n] of commands) console.log(`${summarize(runs.get(n)!.map((x) => x.rssMb)).median.toFixed(1)} MB`.padStart(22) + `  ${n}`);
    const median = (n: string) => summarize(runs.get(n)!.map((x) => x.wallMs)).median.toFixed(0);
    console.log(`fleetx --version median ${median(commands[1]![0])} ms (target ≤ 150), list-units with ${UNITS} units median ${median(commands[2]![0])} ms (target ≤ 300)`);
  } finally {
    client.close();
    await etcd.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
