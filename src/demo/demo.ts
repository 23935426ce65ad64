/**
 * The sandbox demo: HAProxy in front of the demo app (containers) on the sandbox
 * hosts, kept in line by the presence syncer, so rolling restarts and
 * deploys can be watched (and measured) under load.
 *
 *   demoUp(await sandboxUp(...), { repoRoot })   // HAProxy + syncer + deploy, waits until every instance serves
 *   demoStatus(stateDir)                         // { lbUrl, haproxyPid, syncerPid, service, instances }
 *   demoDown(stateDir)                           // before sandboxDown
 *
 * Everything lives in STATEDIR/demo/ (see paths.ts). HAProxy binds the
 * sandbox bridge address only, like etcd: nothing on the machine's own
 * addresses or loopback.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failedError, FleetxError, usageError } from '../errors/errors.js';
import { connect } from '../registry/client.js';
import { keyspace } from '../registry/keys.js';
import type { SandboxStatus } from '../sandbox/sandbox.js';
import { sleep } from '../sandbox/proc.js';
import { SYSTEM_PATH } from '../sandbox/run.js';
import type { ServiceRecord } from '../service/types.js';
import { haproxyConfig, slotNames } from './haproxy-config.js';
import { describeInstance, inService, readInstances, type DemoInstance } from './instances.js';
import { demoPaths } from './paths.js';
import { haproxyPids, livePid, startHaproxy, startSyncer, stopByPids, syncerPids } from './processes.js';
import { writeDemoService } from './service-file.js';
import { ensureDemoImages } from '../images/demo-images.js';
import { ensureSidecarImages } from '../images/sidecar-images.js';
import { warmHosts } from '../images/warm.js';
import { sandboxApiKey, writeSidecarUnits } from './sidecars.js';
import { sandboxConnection, sandboxPaths } from '../sandbox/state.js';

export const DEMO_SERVICE = 'app';
/** Spare HAProxy slots beyond max(instances, hosts), for instances added later. */
const SPARE_SLOTS = 3;

export interface DemoUpOptions {
  /** checkout whose bin/fleetx.mjs, demo/web.mjs (the app in the image) and services/app.yaml are used */
  repoRoot: string;
  /** instances of app (default: services/app.yaml's) */
  instances?: number;
  /** frontend port on the bridge address (default 8080) */
  port?: number;
  /** how long to wait for every instance to serve (default 120 s) */
  timeoutMs?: number;
  /** progress lines for a terminal */
  progress?: (line: string) => void;
}

export interface DemoStatus {
  stateDir: string;
  exists: boolean;
  service: string;
  /** http://BRIDGE:PORT/ — the load balancer */
  lbUrl?: string;
  haproxyPid?: number;
  syncerPid?: number;
  /** the service file deployed (services/app.yaml filled in for this sandbox) */
  serviceFile?: string;
  socket?: string;
  logs?: { haproxy: string; presence: string };
  instances: DemoInstance[];
  /** HAProxy and the syncer run, and every instance is in service */
  healthy: boolean;
}

interface DemoState {
  version: 1;
  /** Every etcd member's client URL, comma-separated (as --endpoint takes them). */
  endpoint: string;
  bindAddress: string;
  port: number;
  lbUrl: string;
  instances: number;
  slots: number;
  repoRoot: string;
}

/**
 * Brings the demo up on a running sandbox (idempotent: what runs is kept,
 * what is missing is started; a stored service with the same instance count
 * is not deployed again, so a version deployed meanwhile stays).
 * @throws FleetxError 'usage' (no healthy sandbox), 'failed' (HAProxy, deploy,
 * or instances not serving in time: the message says which and why)
 */
export async function demoUp(sandbox: SandboxStatus, o: DemoUpOptions): Promise<DemoStatus> {
  const say = o.progress ?? (() => undefined);
  if (!sandbox.exists || !sandbox.healthy || !sandbox.bridge || !sandbox.etcd || !sandbox.registry) {
    throw usageError(`the sandbox at ${sandbox.stateDir} is not up and healthy`, 'run fleetx sandbox up first');
  }
  const paths = demoPaths(sandbox.stateDir);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  // Every member, comma-separated: the syncer and the CLI fail over between them.
  const endpoint = sandbox.etcd.endpoints.join(',');
  const bindAddress = sandbox.bridge.address.replace(/\/\d+$/, '');
  const port = o.port ?? 8080;

  const registry = sandbox.registry.address;
  // The app's images (v1, v2, unhealthy), built from this machine's node and pushed to the sandbox registry.
  const images = await ensureDemoImages({ dir: sandboxPaths(sandbox.stateDir).images, registry, script: join(o.repoRoot, 'demo', 'web.mjs'), progress: say });
  say(`pulling the base image ${images.base} on ${sandbox.hosts.length} host(s)`);
  await warmHosts(sandbox.hosts.map((h) => join(sandboxPaths(sandbox.stateDir).hosts, h.name)), images.base);
  const spec = writeDemoService(paths.serviceFile, { repoRoot: o.repoRoot, registry, socket: paths.socket, ...(o.instances !== undefined ? { instances: o.instances } : {}) });
  if (spec.presence.driver !== 'haproxy' || !spec.presence.backend) throw usageError(`${paths.serviceFile}: the demo needs presence.driver haproxy with a backend`);
  const slots = Math.max(spec.instances, sandbox.hosts.length) + SPARE_SLOTS;
  const state: DemoState = { version: 1, endpoint, bindAddress, port, lbUrl: `http://${bindAddress}:${port}/`, instances: spec.instances, slots, repoRoot: o.repoRoot };

  // HAProxy: (re)started when its config changed (a restart parks every slot; the syncer puts them back).
  const config = haproxyConfig({ bindAddress, port, socket: paths.socket, backend: spec.presence.backend, slots: slotNames(spec.template, slots), checkPath: spec.health.path ?? '/' });
  const running = haproxyPids(paths.haproxyConfig);
  const same = existsSync(paths.haproxyConfig) && readFileSync(paths.haproxyConfig, 'utf8') === config;
  if (running.length === 0 || !same) {
    if (running.length > 0) await stopByPids(running);
    writeFileSync(paths.haproxyConfig, config);
    const pid = await startHaproxy({ configFile: paths.haproxyConfig, socket: paths.socket, logFile: paths.haproxyLog, pidFile: paths.haproxyPid });
    say(`HAProxy (pid ${pid}) on ${state.lbUrl}, ${slots} slots`);
  }
  writeFileSync(paths.state, `${JSON.stringify(state, null, 2)}\n`);

  if (syncerPids(endpoint, spec.name).length === 0) {
    const pid = startSyncer({ repoRoot: o.repoRoot, endpoint, env: etcdEnv(sandbox), service: spec.name, logFile: paths.syncerLog, pidFile: paths.syncerPid });
    say(`presence syncer (pid ${pid}) for ${spec.name}`);
  }

  // The sidecars on every host (global units; stand-in images under the vendors' names): not waited for here.
  await ensureSidecarImages({ dir: sandboxPaths(sandbox.stateDir).images, registry, repoRoot: o.repoRoot, base: images.base, progress: say });
  // dd-agent needs its API key as a fleetx secret; the stand-in sends nothing, so the sandbox's key is a random placeholder
  const keyFile = join(paths.dir, 'dd-api-key');
  if (!existsSync(keyFile)) {
    writeFileSync(keyFile, sandboxApiKey(), { mode: 0o600 });
    await runFleetx(o.repoRoot, endpoint, etcdEnv(sandbox), ['secret', 'set', 'dd-api-key', '--from-file', keyFile]);
  }
  await runFleetx(o.repoRoot, endpoint, etcdEnv(sandbox), ['start', '--no-block', ...writeSidecarUnits({ repoRoot: o.repoRoot, registry, dir: paths.dir })]);
  say('td-agent and dd-agent started as global units (stand-in images; docs/SIDECARS.md)');

  const client = connect(sandboxConnection(sandbox.stateDir));
  const keys = keyspace('/fleetx');
  try {
    const storedText = await client.get(keys.service(spec.name)).string();
    const stored = storedText ? (JSON.parse(storedText) as ServiceRecord) : undefined;
    if (!stored || stored.instances !== spec.instances) {
      say(`deploying ${paths.serviceFile} (${spec.instances} instances)`);
      await runFleetx(o.repoRoot, endpoint, etcdEnv(sandbox), ['deploy', '-f', paths.serviceFile, '--detach']);
    }
    const units = Array.from({ length: spec.instances }, (_, i) => spec.template.replace('@', `@${i + 1}`));
    const until = Date.now() + (o.timeoutMs ?? 120_000);
    for (;;) {
      const rollout = await client.get(keys.rollout(spec.name)).string();
      const instances = await readInstances({ client, keys, service: spec.name, units, socket: paths.socket, backend: spec.presence.backend });
      if (!rollout && instances.every(inService) && (await lbAnswers(state.lbUrl))) break;
      if (Date.now() >= until) {
        const why = instances.filter((i) => !inService(i)).map(describeInstance);
        throw failedError(
          `the demo is not serving after ${Math.round((o.timeoutMs ?? 120_000) / 1000)} s${rollout ? `; a rollout of ${spec.name} is still running` : ''}${why.length ? `:\n  ${why.join('\n  ')}` : ''}`,
          `see ${paths.syncerLog}, ${paths.haproxyLog} and fleetx journal ${units[0]}`,
        );
      }
      await sleep(250);
    }
  } finally {
    client.close();
  }
  say(`${spec.instances} instance(s) of ${spec.name} in service behind ${state.lbUrl}`);
  return demoStatus(sandbox.stateDir);
}

/** What runs and serves. Never throws for a missing or broken demo (exists: false / healthy: false). */
export async function demoStatus(stateDir: string): Promise<DemoStatus> {
  const paths = demoPaths(stateDir);
  const state = readDemoState(paths.state);
  if (!state) return { stateDir, exists: false, service: DEMO_SERVICE, instances: [], healthy: false };
  const haproxyPid = livePid(paths.haproxyPid, haproxyPids(paths.haproxyConfig));
  const syncerPid = livePid(paths.syncerPid, syncerPids(state.endpoint, DEMO_SERVICE));
  let instances: DemoInstance[] = [];
  let client: ReturnType<typeof connect> | undefined;
  try {
    client = connect(sandboxConnection(stateDir, 2_000));
    const units = Array.from({ length: state.instances }, (_, i) => `${DEMO_SERVICE}@${i + 1}.service`);
    instances = await readInstances({ client, keys: keyspace('/fleetx'), service: DEMO_SERVICE, units, socket: paths.socket, backend: DEMO_SERVICE });
  } catch {
    // etcd down (or the sandbox gone): the instances are unknown; the rest of the status still says something
  } finally {
    client?.close();
  }
  return {
    stateDir,
    exists: true,
    service: DEMO_SERVICE,
    lbUrl: state.lbUrl,
    ...(haproxyPid !== undefined ? { haproxyPid } : {}),
    ...(syncerPid !== undefined ? { syncerPid } : {}),
    serviceFile: paths.serviceFile,
    socket: paths.socket,
    logs: { haproxy: paths.haproxyLog, presence: paths.syncerLog },
    instances,
    healthy: haproxyPid !== undefined && syncerPid !== undefined && instances.length > 0 && instances.every(inService),
  };
}

/**
 * Stops the syncer (its statuses are revoked) and HAProxy, and removes
 * STATEDIR/demo. Safe twice and with no demo. Returns what it removed.
 */
export async function demoDown(stateDir: string): Promise<{ removed: string[] }> {
  const paths = demoPaths(stateDir);
  const removed: string[] = [];
  const state = readDemoState(paths.state);
  const syncers = state ? syncerPids(state.endpoint, DEMO_SERVICE) : [];
  if (syncers.length > 0) {
    await stopByPids(syncers);
    removed.push('presence syncer');
  }
  const lbs = haproxyPids(paths.haproxyConfig);
  if (lbs.length > 0) {
    await stopByPids(lbs);
    removed.push('haproxy');
  }
  if (existsSync(paths.dir)) {
    rmSync(paths.dir, { recursive: true, force: true });
    removed.push(`demo dir ${paths.dir}`);
  }
  return { removed };
}

function readDemoState(file: string): DemoState | undefined {
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as DemoState;
    return s.version === 1 && typeof s.endpoint === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}

async function lbAnswers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** The real CLI, as a user would run it. @throws FleetxError 'failed' with its output */
/** The operator's etcd user and password file, as the sandbox's env file gives them. */
function etcdEnv(sandbox: SandboxStatus): Record<string, string> {
  const env = sandbox.env ?? {};
  return Object.fromEntries(['FLEETX_ETCD_USERNAME', 'FLEETX_ETCD_PASSWORD_FILE'].flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
}

function runFleetx(repoRoot: string, endpoint: string, etcd: Record<string, string>, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(repoRoot, 'bin', 'fleetx.mjs'), ...argv, `--endpoint=${endpoint}`],
      { cwd: repoRoot, env: { PATH: SYSTEM_PATH, FLEETX_USER: 'sandbox-demo', ...etcd }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const code = typeof err.code === 'number' ? ` (exit ${err.code})` : '';
        reject(new FleetxError('failed', `fleetx ${argv.join(' ')} failed${code}: ${(stderr || stdout || err.message).trim()}`));
      },
    );
  });
}
