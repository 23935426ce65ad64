/**
 * One booted nspawn host running `fleetx agent` as a systemd service, on a
 * test bridge, against a sandbox etcd on the machine that listens only on
 * the bridge address. For tests of the agent on real systemd.
 *
 *   const h = await startAgentHost({ tag: 'pause', name: 'fxt-pause', agentArgs: ['--ttl', '3'] });
 *   ... h.host, h.etcd (a client), h.etcdSpec, h.journal() ...
 *   expect(await h.stop()).toEqual([]);   // what was left behind
 *
 * `useAgentHost` does the same for a whole test file (up in beforeAll, the
 * agent registered; down in afterAll, asserting nothing was left) with the
 * agent run with --no-engine: the test plays the engine, writing schedule
 * keys and bodies straight into etcd (`submit`).
 *
 *   const agent = useAgentHost({ tag: 'agent', name: 'fxt-agent', ipSuffix: 11, ttl: 3 });
 *   await agent.submit('web.service', body, 'launched');
 *   await agent.waitFor('web active', async () => (await agent.show('web.service')).ActiveState === 'active');
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, expect } from 'vitest';
import { connect } from '../../src/registry/client.js';
import { keyspace } from '../../src/registry/keys.js';
import type { ScheduleRecord, TargetState } from '../../src/registry/records.js';
import { etcdPids, startEtcd, stopEtcd, type EtcdSpec } from '../../src/sandbox/etcd.js';
import { bootHost, type Host } from '../../src/sandbox/host.js';
import { createBridge, deleteBridge } from '../../src/sandbox/network.js';
import { unitHash } from '../../src/unit/hash.js';
import { parseUnit } from '../../src/unit/parse.js';
import { REPO } from './cli.js';
import { leftovers, testNet, testStateDir } from './hosts.js';
import { waitForWith, type Check } from './wait.js';

export interface AgentHost {
  host: Host;
  etcd: Etcd3;
  etcdSpec: EtcdSpec;
  /** the host's address on the bridge */
  ip: string;
  /** the agent's last journal lines (of the first agent service unless named) */
  journal(lines?: number, unit?: string): Promise<string>;
  /** Stops host, etcd and bridge (resuming a frozen etcd first); returns what was left behind. */
  stop(): Promise<string[]>;
}

export interface AgentHostOptions {
  /** names the state dir */
  tag: string;
  /** the host's name (nspawn machine name) */
  name: string;
  /** arguments after `agent --ip IP` of the one agent service, fleetx-agent */
  agentArgs?: string[];
  /** instead: agent services to install, unit name (without .service) -> arguments; the first is started */
  agents?: Record<string, string[]>;
  /** the host's address is <subnet>.<ipSuffix> (default 11) */
  ipSuffix?: number;
}

export async function startAgentHost(o: AgentHostOptions): Promise<AgentHost> {
  const net = testNet();
  const base = testStateDir(o.tag);
  const ip = `${net.prefix}.${o.ipSuffix ?? 11}`;
  const etcdUrl = `http://${net.prefix}.1:2379`;
  const etcdSpec = { dataDir: `${base}/etcd`, logFile: `${base}/etcd.log`, clientUrl: etcdUrl, peerUrl: `http://${net.prefix}.1:2380` };
  const agents = o.agents ?? { 'fleetx-agent': o.agentArgs ?? [] };
  const first = Object.keys(agents)[0]!;
  const agentUnit = (args: string[]) =>
    [
      '[Unit]',
      'Description=fleetx agent (test)',
      '[Service]',
      `ExecStart=/usr/bin/node ${REPO}bin/fleetx.mjs --endpoint ${etcdUrl} agent --ip ${ip} ${args.join(' ')}`,
      'Restart=always',
      'RestartSec=1',
      '',
    ].join('\n');
  await createBridge(net.bridge, `${net.prefix}.1/24`);
  await startEtcd(etcdSpec);
  const etcd = connect({ endpoints: [etcdUrl], requestTimeoutMs: 3000, prefix: '/fleetx' });
  let host: Host | undefined;
  const stop = async () => {
    for (const pid of etcdPids(etcdSpec.dataDir)) process.kill(pid, 'SIGCONT');
    etcd.close();
    await host?.stop().catch(() => undefined);
    await stopEtcd(etcdSpec.dataDir);
    await deleteBridge(net.bridge).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
    return leftovers(base, net.bridge, [{ name: o.name, dir: `${base}/host` }]);
  };
  try {
    const files = Object.fromEntries(Object.entries(agents).map(([unit, args]) => [`/etc/systemd/system/${unit}.service`, agentUnit(args)]));
    // the checkout, bound as the sandbox binds it: a checkout under /tmp is not in the host's lower layer (its /tmp is its own)
    const checkout = REPO.replace(/\/$/, '');
    host = await bootHost({ name: o.name, stateDir: `${base}/host`, bridge: { name: net.bridge, address: `${ip}/24` }, files, bindReadOnly: [checkout] });
    const started = await host.exec(['systemctl', 'start', first]);
    if (started.code !== 0) throw new Error(`${first} did not start: ${started.stderr}`);
  } catch (e) {
    await stop();
    throw e;
  }
  const h = host;
  return {
    host: h,
    etcd,
    etcdSpec,
    ip,
    journal: async (lines = 80, unit = first) => (await h.exec(['journalctl', '-u', unit, '-n', String(lines), '--no-pager', '-o', 'cat'])).stdout,
    stop,
  };
}

export interface UseAgentHostOptions {
  tag: string;
  /** the start of the host's name, at most 10 characters: two random hex digits follow, so concurrent runs do not meet */
  name: string;
  ipSuffix: number;
  /** the agent's machine lease TTL, seconds */
  ttl: number;
  /** agent services: unit name (without .service) -> extra arguments; the first is started (default: fleetx-agent) */
  agents?: Record<string, string[]>;
}

export interface AgentHostFixture {
  /** the host's name (and hostname) */
  readonly name: string;
  readonly host: Host;
  /** the test's etcd client (prefix /fleetx) */
  readonly etcd: Etcd3;
  readonly keys: ReturnType<typeof keyspace>;
  readonly ip: string;
  /** etcd's data dir and URLs: stop it with stopEtcd(spec.dataDir), start it again with startEtcd(spec) */
  readonly etcdSpec: EtcdSpec;
  /** Writes the body and this machine's schedule key for `name`, as the engine would; returns the hash. */
  submit(name: string, body: string, targetState: TargetState): Promise<string>;
  /** systemctl show of a few properties */
  show(unit: string): Promise<Record<string, string>>;
  /** the tail of an agent service's journal */
  journal(agent?: string): Promise<string>;
  /** waitFor, with the agent's journal when it times out */
  waitFor<T>(what: string, check: Check<T>, timeoutMs?: number): Promise<T>;
}

export function useAgentHost(o: UseAgentHostOptions): AgentHostFixture {
  const name = `${o.name}${randomBytes(1).toString('hex')}`;
  const keys = keyspace('/fleetx');
  // --no-engine: the test plays the engine (an engine would unschedule units it has no record of)
  const args = (extra: string[]) => ['--ttl', String(o.ttl), '--no-engine', ...extra];
  const agents = Object.fromEntries(Object.entries(o.agents ?? { 'fleetx-agent': [] }).map(([unit, extra]) => [unit, args(extra)]));
  let h: AgentHost | undefined;
  const started = (): AgentHost => {
    if (!h) throw new Error('agent host: not booted');
    return h;
  };

  const fx: AgentHostFixture = {
    name,
    keys,
    get host() {
      return started().host;
    },
    get etcd() {
      return started().etcd;
    },
    get ip() {
      return started().ip;
    },
    get etcdSpec() {
      return started().etcdSpec;
    },
    async submit(unit, body, targetState) {
      const hash = unitHash(parseUnit(body, unit));
      await fx.etcd.put(keys.body(hash)).value(body);
      const rec: ScheduleRecord = { name: unit, hash, targetState };
      await fx.etcd.put(keys.schedule(fx.host.machineId, unit)).value(JSON.stringify(rec));
      return hash;
    },
    async show(unit) {
      const r = await fx.host.exec(['systemctl', 'show', '-p', 'ActiveState,SubState,MainPID,LoadState,UnitFileState,FragmentPath,Result', unit]);
      return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    },
    journal: (agent) => started().journal(60, agent),
    waitFor: (what, check, timeoutMs) => waitForWith({ explain: async () => `--- agent journal ---\n${await fx.journal()}` })(what, check, timeoutMs),
  };

  beforeAll(async () => {
    h = await startAgentHost({ tag: o.tag, name, agents, ipSuffix: o.ipSuffix });
    await fx.waitFor('machine registered', async () => fx.etcd.get(keys.machine(fx.host.machineId)).string(), 30_000);
  }, 120_000);

  afterAll(async () => {
    expect(await h?.stop()).toEqual([]);
  });

  return fx;
}
