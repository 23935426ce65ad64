/**
 * Lean agent benchmark: the `fleetx agent` of a real sandbox host, idle
 * with no units and then with 333 units running: its resident memory, its
 * CPU while nothing changes, and the etcd traffic of the idle cluster.
 *
 *   npm run bench:agent [-- --units 333 --hosts 1 --idle 10]
 *   npm run bench:agent -- --node-options='--max-semi-space-size=1'   (an experiment: NODE_OPTIONS for the agents)
 *   npm run bench:agent -- --node-flags='--lite-mode --no-expose-wasm'   (the unit's FLEETX_NODE_FLAGS: the lean setting)
 *
 * A sandbox on its own state dir, bridge and subnet (removed at the end).
 * Memory: VmRSS (and the peak, VmHWM) of the agent's main process, read
 * from /proc inside the host. CPU: utime + stime of that process over the
 * idle window. etcd: unary requests and stream messages received over the
 * same window, from etcd's /metrics (keepalives and watches are streams).
 * Last, `destroy` of 100 of the running units, timed until no host
 * reports them (polled every 50 ms).
 */
import { parseArgs } from 'node:util';
import { SandboxFixture, sleep } from '../test/helpers/sandbox.js';
import { downAndCheck, runBench } from './sandbox-run.js';
import { agentSample, destroyToStopped, TICKS_PER_S } from './sandbox-probes.js';

const { values } = parseArgs({
  options: {
    units: { type: 'string', default: '333' },
    hosts: { type: 'string', default: '1' },
    idle: { type: 'string', default: '10' },
    'node-options': { type: 'string' },
    'node-flags': { type: 'string' },
  },
});
const PER_HOST = Number(values.units);
const HOSTS = Number(values.hosts);
const IDLE_MS = Number(values.idle) * 1000;
const TEMPLATE = ['[Unit]', 'Description=agent bench %i', '[Service]', 'ExecStart=/bin/sleep infinity', ''].join('\n');

/** etcd's unary requests (by method) and stream messages received so far. */
async function etcdTraffic(endpoint: string): Promise<{ unary: Map<string, number>; streamMsgs: number }> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const unary = new Map<string, number>();
  let streamMsgs = 0;
  for (const m of text.matchAll(/^grpc_server_started_total\{([^}]*)\} (\S+)$/gm)) {
    const method = /grpc_method="(\w+)"/.exec(m[1]!)?.[1] ?? '?';
    if (m[1]!.includes('grpc_type="unary"')) unary.set(method, (unary.get(method) ?? 0) + Number(m[2]));
  }
  for (const m of text.matchAll(/^grpc_server_msg_received_total\{([^}]*)\} (\S+)$/gm)) {
    if (m[1]!.includes('stream')) streamMsgs += Number(m[2]);
  }
  return { unary, streamMsgs };
}

/** What the idle window shows: per host agent memory and CPU, and etcd's traffic. */
async function idleWindow(sb: SandboxFixture, label: string): Promise<void> {
  const hosts = sb.runningHosts();
  const before = await Promise.all(hosts.map(agentSample));
  const e0 = await etcdTraffic(sb.endpoint);
  const t0 = Date.now();
  await sleep(IDLE_MS);
  const after = await Promise.all(hosts.map(agentSample));
  const e1 = await etcdTraffic(sb.endpoint);
  const s = (Date.now() - t0) / 1000;
  hosts.forEach((h, i) => {
    const cpuMs = ((after[i]!.cpuTicks - before[i]!.cpuTicks) * 1000) / TICKS_PER_S;
    console.log(
      `${label}: agent on ${h.name}: RSS ${after[i]!.rssMb.toFixed(1)} MB (peak ${after[i]!.hwmMb.toFixed(1)} MB), idle CPU ${cpuMs.toFixed(0)} ms in ${s.toFixed(1)} s (${((cpuMs / 10 / s)).toFixed(2)} %)`,
    );
  });
  const unary = [...e1.unary].map(([k, v]) => [k, v - (e0.unary.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
  const total = unary.reduce((n, [, v]) => n + v, 0);
  console.log(
    `${label}: idle etcd traffic in ${s.toFixed(1)} s: ${total} unary requests${total ? ` (${unary.map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}, ${e1.streamMsgs - e0.streamMsgs} stream messages received`,
  );
}

async function main(): Promise<number> {
  const sb = new SandboxFixture({ tag: 'benchag', hosts: HOSTS });
  const stop = () => void sb.down().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  try {
    await sb.up();
    const env = [
      ...(values['node-options'] ? [`NODE_OPTIONS=${JSON.stringify(values['node-options'])}`] : []),
      ...(values['node-flags'] ? [`FLEETX_NODE_FLAGS=${values['node-flags']}`] : []),
    ];
    if (env.length) {
      // The agent unit reads /etc/fleetx/secrets/fleetx-agent.env (EnvironmentFile=-), which holds
      // the etcd credentials: append (a later line wins), never overwrite.
      const lines = env.map((l) => `${l}\n`).join('');
      for (const h of sb.runningHosts()) {
        const r = await h.exec(['sh', '-c', 'mkdir -p /etc/fleetx/secrets && printf %s "$1" >> /etc/fleetx/secrets/fleetx-agent.env && systemctl restart fleetx-agent.service', 'sh', lines]);
        if (r.code !== 0) throw new Error(`cannot set ${env.join(' ')} on ${h.name}: ${r.stderr}`);
      }
      await sb.waitForMachines(sb.runningHosts().map((h) => h.machineId));
      console.log(`agents restarted with ${env.join(' ')}`);
    }
    await sleep(3_000); // first passes, elections, presence
    await idleWindow(sb, 'no units');

    sb.writeUnit('bench@.service', TEMPLATE);
    const names = Array.from({ length: PER_HOST * HOSTS }, (_, i) => `bench@${i + 1}.service`);
    await sb.cliOk(['start', '--no-block', ...names]);
    const t0 = Date.now();
    for (;;) {
      const states = Object.values(await sb.etcd().getAll().prefix(sb.keys.states()).strings());
      const active = states.filter((v) => (JSON.parse(v) as { activeState: string }).activeState === 'active').length;
      if (active >= names.length) break;
      if (Date.now() - t0 > 600_000) throw new Error(`only ${active} of ${names.length} units active after 600 s\n${await sb.journals()}`);
      await sleep(1_000);
    }
    console.log(`${names.length} units active on ${HOSTS} host(s) after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await sleep(5_000); // trailing state writes
    await idleWindow(sb, `${PER_HOST} units per host`);
    await destroyToStopped(sb, names.slice(0, Math.min(100, names.length)));
    return 0;
  } finally {
    process.removeListener('SIGINT', stop);
    await downAndCheck(sb);
  }
}

runBench(main);
