/**
 * `fleetx agent`: the per-host daemon (run by systemd). Builds identity,
 * systemd and etcd connections, starts the Agent (and the Engine, which
 * elects one scheduler among all agents), logs JSON lines to stderr for
 * journald, and runs until SIGTERM/SIGINT.
 *
 * On SIGTERM units are LEFT RUNNING by default (see src/agent/README.md);
 * --purge-on-exit stops and removes them and revokes the lease, as fleet did.
 */
import { readFile } from 'node:fs/promises';
import type { Etcd3 } from 'etcd3';
import { pino, type Logger } from 'pino';
import { Agent } from '../../agent/agent.js';
import { describeTask } from '../../agent/plan.js';
import { resolveIdentity } from '../../agent/identity.js';
import { usageError } from '../../errors/errors.js';
import { RolloutController } from '../../controller/controller.js';
import { Engine } from '../../engine/engine.js';
import { connect } from '../../registry/client.js';
import { checkConnectionFiles } from '../../registry/connection.js';
import { keyspace } from '../../registry/keys.js';
import { connectSystemd } from '../../systemd/systemd.js';
import { connectionFrom } from '../context.js';
import type { Io } from '../io.js';
import { waitForStop } from '../daemon.js';
import type { GlobalFlags } from '../program/flags.js';

export interface AgentCommandOptions extends Partial<Omit<GlobalFlags, 'output'>> {
  machineId?: string;
  machineIdFile?: string;
  ip?: string;
  /** `k=v,k2=v2`, repeatable */
  metadata?: string[];
  /** YAML config file (ip, metadata) */
  config?: string;
  /** lease TTL, seconds (default 10) */
  ttl?: number;
  /** where unit files go (default /run/systemd/system) */
  unitDir?: string;
  /** on SIGTERM/SIGINT, stop and remove this host's units and revoke the lease */
  purgeOnExit?: boolean;
  /** run the leader-elected engine in this process too (default true) */
  engine?: boolean;
  /** safety-net resync interval, seconds (default 60) */
  resync?: number;
  /** log level (default info) */
  logLevel?: string;
  /** ends the agent when aborted; default: SIGTERM/SIGINT of this process */
  signal?: AbortSignal;
}

/**
 * Runs until the signal. Throws FleetxError 'usage' for bad flags,
 * 'unavailable' when systemd's bus cannot be reached at start.
 * etcd being down is not an error: the agent waits for it.
 */
export async function agentCommand(opts: AgentCommandOptions, io: Io): Promise<void> {
  const ttl = opts.ttl ?? 10;
  if (!Number.isInteger(ttl) || ttl < 2) throw usageError(`--ttl must be an integer number of seconds >= 2, got ${ttl}`);
  const resync = opts.resync ?? 60;
  if (!(resync > 0)) throw usageError(`--resync must be a positive number of seconds, got ${resync}`);

  const log = pino({ level: opts.logLevel ?? 'info', base: { svc: 'fleetx-agent' } }, { write: (line: string) => io.stderr(line) });
  const connection = await connectionFrom({ ...opts, output: 'text' }, io);
  await checkConnectionFiles(connection);
  const identity = await resolveIdentity({
    machineId: opts.machineId,
    machineIdFile: opts.machineIdFile,
    ip: opts.ip,
    metadata: opts.metadata,
    configFile: opts.config,
  });
  const keys = keyspace(connection.prefix);
  const version = await packageVersion();

  const systemd = await connectSystemd({ unitDir: opts.unitDir });
  let client: Etcd3 | undefined;
  try {
    client = connect(connection);
    const agent = new Agent({ client, systemd, keys, identity, version, ttlSec: ttl, resyncMs: resync * 1000 });
    wireLogs(agent, log);
    const engine = opts.engine === false ? undefined : new Engine({ client, machineId: identity.id, keys, leaseTtlSeconds: ttl });
    if (engine) {
      engine.on('state', (state) => log.info({ state }, 'engine state'));
      engine.on('warning', (err) => log.warn({ err }, 'engine warning'));
      engine.on('pass', (p) => p.ops.length > 0 && log.info({ ops: p.ops.length, revision: p.revision }, 'engine pass'));
    }
    // rollouts are carried forward by the engine leader, with the same client and keys
    const rollouts = engine && new RolloutController({ client, keys, engine, connection });
    rollouts?.on('warning', (err) => log.warn({ err }, 'rollout controller warning'));
    rollouts?.on('step', (s) => log.info({ service: s.service, rollout: s.id, state: s.state, actions: s.actions.map((a) => a.reason) }, 'rollout step'));

    log.info({ machine: identity.id, ip: identity.ip, metadata: identity.metadata, endpoints: connection.endpoints, prefix: connection.prefix }, 'agent starting');
    agent.start();
    engine?.start();
    rollouts?.start();
    await waitForStop(opts.signal, log);
    log.info({ purge: Boolean(opts.purgeOnExit) }, 'agent stopping');
    await rollouts?.stop();
    await engine?.stop();
    await agent.stop({ purge: opts.purgeOnExit });
    log.info('agent stopped');
  } finally {
    client?.close();
    await systemd.close().catch(() => undefined);
    log.flush?.();
  }
}

function wireLogs(agent: Agent, log: Logger): void {
  agent.on('state', (state) => log.info({ state }, 'agent state'));
  agent.on('registered', (lease) => log.info({ lease }, 'machine registered'));
  agent.on('leaseLost', (err) => log.warn({ err }, 'lease lost; re-registering'));
  agent.on('etcd', (live) => (live ? log.info('schedule watch connected') : log.warn('schedule watch disconnected; leaving units as they are')));
  agent.on('task', (t) => log.info({ task: t.type, unit: 'unit' in t ? t.unit : undefined, reason: t.reason }, describeTask(t)));
  agent.on('problem', (msg, err) => log.warn({ err }, msg));
  agent.on('pass', (p) => {
    if (p.outcome?.failed) {
      const { task, error } = p.outcome.failed;
      log.error({ err: error, task: describeTask(task) }, 'pass stopped at a failed task; will retry');
    } else if (p.tasks.length > 0) {
      log.info({ tasks: p.tasks.length }, 'pass done');
    }
  });
}

async function packageVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
