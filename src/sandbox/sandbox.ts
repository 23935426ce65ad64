/**
 * A local fleetx cluster on this machine: N hosts booting real systemd
 * (host.ts) on a bridge (network.ts), etcd on the bridge address (etcd.ts),
 * each host provisioned into a fleetx host by cloud-init from its seed (seed.ts). Everything it makes is named
 * in stateDir/state.json first, so `down` can remove it even after a crash,
 * and `up` repairs what is missing instead of starting over.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { conflictError, usageError } from '../errors/errors.js';
import { checkUnitRuns } from './agent-check.js';
import { withLock } from './lock.js';
import { etcdHealthy, etcdMembers, etcdPids, isOurEtcd, MAX_ETCD_MEMBERS, startEtcdMembers, stopEtcd } from './etcd.js';
import { ensureEtcdAuth, newEtcdAuth } from './etcd-auth.js';
import { bootHost, destroyHostDir, haltHostDir, openHost, recordedMachineId, type Host } from './host.js';
import { mountsUnder, unmountAll } from './mounts.js';
import { createBridge, deleteBridge, linkExists } from './network.js';
import { ensureKeyPair, knownHostsText } from './sshd.js';
import { packRelease, type Release } from './release.js';
import { CLOUD_INIT_UNITS, checkProvisioned, sandboxUserData, seedFiles } from './seed.js';
import { ensureRegistry, REGISTRY_PORT, registryAnswers, registryPids, stopRegistry } from './registry.js';
import { envFileText, envValues, ETCD_ENTRIES, OWN_ENTRIES, readState, sandboxPaths, writeState, type SandboxHostEntry, type SandboxState } from './state.js';

export interface SandboxOptions {
  hosts: number;
  stateDir: string;
  /**
   * Repository root: the checkout (built) whose `npm pack` the hosts install at
   * first boot, and whose cloud-config/ renders their user-data. Hosts also
   * see it read-only at its own path (the demo's plain-process service runs
   * its demo/web.mjs from there).
   */
  repoRoot: string;
  /** Bridge name, at most 15 characters (default fleetx0). */
  bridge?: string;
  /** First three octets of the sandbox /24 (default 10.213.0): bridge .1, hosts .11, .12, ... */
  subnet?: string;
  /** etcd client port on the bridge address (default 2379; peer port is +1; member i uses +2(i-1) and one above). */
  etcdPort?: number;
  /** etcd members (default 1; `--etcd-members 3` for a real cluster), each its own process and data dir. */
  etcdMembers?: number;
  /** Host names are PREFIX-1..PREFIX-N (default "sandbox"). */
  hostPrefix?: string;
  /** Provision each host by cloud-init into a fleetx host (default true); false: bare hosts. */
  agent?: boolean;
  /**
   * cloud-config values merged over the sandbox's own (seed.ts) in the
   * user-data of hosts this `up` boots, as `-f` does for `cloud-config render`.
   */
  values?: Record<string, unknown>;
}

export interface SandboxHostStatus {
  name: string;
  machineId: string;
  address: string;
  running: boolean;
  /** `systemctl is-system-running` inside the host, when it runs. */
  systemState?: string;
}

export interface SandboxEtcdMemberStatus {
  name: string;
  clientUrl: string;
  peerUrl: string;
  /** Set while the member runs and answers /health. */
  pid?: number;
  running: boolean;
  dataDir: string;
  logFile: string;
}

export interface SandboxStatus {
  stateDir: string;
  /** Whether a sandbox (its state file) exists at stateDir. */
  exists: boolean;
  /** Bridge up, etcd healthy, every host running with systemd running/degraded. */
  healthy: boolean;
  bridge?: { name: string; address: string; present: boolean };
  /** pid/running/logFile are member 1's (the only one by default); `members` lists each. */
  etcd?: {
    endpoints: string[];
    pid?: number;
    running: boolean;
    logFile: string;
    members: SandboxEtcdMemberStatus[];
    /** etcd runs with authentication: who the operator is and where their password is (never the password) */
    auth?: { operator: string; agent: string; passwordFile: string };
  };
  /** The image registry every host pulls from: plain HTTP on the bridge, declared insecure for that address in each host. */
  registry?: { address: string; url: string; pid?: number; running: boolean; logFile: string };
  hosts: SandboxHostStatus[];
  /** `. ENVFILE` sets FLEETX_ENDPOINT and the SSH settings for fleetx on this machine. */
  envFile?: string;
  /** The same settings as values (for running fleetx from code). */
  env?: Record<string, string>;
}

const DEFAULTS = { bridge: 'fleetx0', subnet: '10.213.0', etcdPort: 2379, hostPrefix: 'sandbox' };
const MAX_HOSTS = 200;

function planState(o: SandboxOptions, prev: SandboxState | undefined): SandboxState {
  const subnet = o.subnet ?? (prev ? prev.bridge.cidr.replace(/\.\d+\/24$/, '') : DEFAULTS.subnet);
  const bridge = o.bridge ?? prev?.bridge.name ?? DEFAULTS.bridge;
  const port = o.etcdPort ?? (prev ? Number(new URL(prev.etcd.endpoints[0]!).port) : DEFAULTS.etcdPort);
  const cidr = `${subnet}.1/24`;
  const endpoint = `http://${subnet}.1:${port}`;
  if (prev && (prev.bridge.name !== bridge || prev.bridge.cidr !== cidr || prev.etcd.endpoints[0] !== endpoint)) {
    throw conflictError(
      `the sandbox at ${o.stateDir} uses bridge ${prev.bridge.name} ${prev.bridge.cidr} and etcd ${prev.etcd.endpoints[0]}, not ${bridge} ${cidr} ${endpoint}`,
      'run `fleetx sandbox down` first to change its network',
    );
  }
  // A cluster's membership is fixed at its creation (etcd would need member add/remove).
  const count = o.etcdMembers ?? prev?.etcd.members.length ?? 1;
  if (prev && prev.etcd.members.length !== count) {
    throw conflictError(
      `the sandbox at ${o.stateDir} runs ${prev.etcd.members.length} etcd member(s), not ${count}`,
      'run `fleetx sandbox down` first to change the etcd cluster',
    );
  }
  const prefix = o.hostPrefix ?? DEFAULTS.hostPrefix;
  const hosts: SandboxHostEntry[] = [];
  for (let i = 1; i <= o.hosts; i++) {
    const name = `${prefix}-${i}`;
    const dir = join(sandboxPaths(o.stateDir).hosts, name);
    const old = prev?.hosts.find((h) => h.name === name);
    // A repaired host keeps its identity.
    const machineId = old?.machineId ?? recordedMachineId(dir) ?? '';
    // cloud-init provisions once per instance-id: kept while the host's disk is, new for a new host.
    const instanceId = (old?.instanceId && existsSync(dir) ? old.instanceId : undefined) ?? `iid-${name}-${randomBytes(6).toString('hex')}`;
    hosts.push({ name, machineId, address: `${subnet}.${10 + i}`, dir, instanceId });
  }
  const paths = sandboxPaths(o.stateDir);
  const members = etcdMembers({ count, address: `${subnet}.1`, port, dir: (entry) => join(o.stateDir, entry) }).map((m, k) => ({
    name: m.name!,
    pid: prev?.etcd.members[k]?.pid,
    clientUrl: m.clientUrl,
    peerUrl: m.peerUrl,
    dataDir: m.dataDir,
    logFile: m.logFile,
  }));
  return {
    version: 1,
    stateDir: o.stateDir,
    repoRoot: o.repoRoot,
    bridge: { name: bridge, cidr },
    etcd: { endpoints: members.map((m) => m.clientUrl), members, auth: prev?.etcd.auth ?? newEtcdAuth() },
    registry: { address: `${subnet}.1:${REGISTRY_PORT}`, dir: paths.registry, logFile: paths.registryLog },
    hosts,
  };
}

/** @throws FleetxError 'usage' unless root: mounts, bridges and nspawn need it. */
function requireRoot(): void {
  if (process.getuid?.() !== 0) throw usageError('the sandbox needs root (mounts, a bridge, systemd-nspawn)', 'run it with sudo');
}

function validate(o: SandboxOptions): void {
  requireRoot();
  if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > MAX_HOSTS) throw usageError(`--hosts must be 1..${MAX_HOSTS}, got ${o.hosts}`);
  if (!isAbsolute(o.stateDir) || o.stateDir.split('/').filter(Boolean).length < 2) {
    throw usageError(`the sandbox state dir must be an absolute path below a top-level directory: ${o.stateDir}`);
  }
  if (!existsSync(join(o.repoRoot, 'package.json'))) throw usageError(`not a fleetx checkout (no package.json): ${o.repoRoot}`);
  const n = o.etcdMembers;
  if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > MAX_ETCD_MEMBERS)) throw usageError(`--etcd-members must be 1..${MAX_ETCD_MEMBERS}, got ${n}`, 'use 3 for a cluster that survives the loss of one member');
  if (o.subnet !== undefined && !/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(o.subnet)) throw usageError(`subnet must be three octets like 10.213.0, got ${o.subnet}`);
}

/** Keeps healthy members; (re)starts the others together (a member alone has no quorum). */
async function ensureEtcd(state: SandboxState): Promise<void> {
  const all = state.etcd.members;
  const ok = await Promise.all(all.map(async (m) => isOurEtcd(m.pid, m.dataDir) && (await etcdHealthy(m.clientUrl))));
  const sick = all.filter((_, i) => !ok[i]);
  if (sick.length === 0) return;
  await Promise.all(sick.map((m) => stopEtcd(m.dataDir))); // hung or orphaned ones
  const initialCluster = all.map((m) => `${m.name}=${m.peerUrl}`);
  const pids = await startEtcdMembers(sick.map((m) => ({ ...m, initialCluster })));
  sick.forEach((m, i) => (m.pid = pids[i]));
}

/** Users, roles and auth on (idempotent), and the operator's password file next to the env file. */
async function ensureAuth(state: SandboxState): Promise<void> {
  const auth = state.etcd.auth!;
  await ensureEtcdAuth(state.etcd.endpoints, auth);
  const file = sandboxPaths(state.stateDir).operatorPassword;
  writeFileSync(file, `${auth.operator.password}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

export const AGENT_UNIT = 'fleetx-agent.service';

interface Provisioning {
  /** The release, packed at the first call. */
  release: () => Promise<Release>;
  values?: Record<string, unknown>;
}

/** Keeps a healthy host; otherwise "reboots" it on its existing upper layer. */
async function ensureHost(state: SandboxState, entry: SandboxHostEntry, provision: Provisioning | undefined, clientKey: string, reboot: boolean): Promise<Host> {
  const running = openHost(entry.dir);
  // A host booted before the sandbox ran sshd (or before etcd had auth) is rebooted with it.
  if (running?.sshHostKey && !reboot) {
    try {
      await running.waitForSystemd(5_000);
      return running;
    } catch {
      // Fall through: repair.
    }
  }
  await haltHostDir(entry.dir);
  // The seed is rewritten at every boot, with the host's own instance-id:
  // cloud-init provisions a host once, not again when `up` reboots it.
  const files = provision
    ? seedFiles({
        name: entry.name,
        instanceId: entry.instanceId!,
        userData: sandboxUserData(
          { endpoints: state.etcd.endpoints, registry: state.registry!.address, release: await provision.release(), credentials: state.etcd.auth?.agent, values: provision.values },
          state.repoRoot,
        ),
      })
    : {};
  return bootHost({
    sshd: { authorizedKeys: [clientKey] },
    name: entry.name,
    stateDir: entry.dir,
    bridge: { name: state.bridge.name, address: `${entry.address}/24` },
    machineId: entry.machineId || undefined,
    files,
    enable: provision ? CLOUD_INIT_UNITS : [],
    keep: provision ? CLOUD_INIT_UNITS : [],
    reuseState: true,
    // systemd is "running" once cloud-final is done: that includes the
    // release install and the agent's registration (registerTimeout).
    bootTimeoutMs: provision ? 180_000 : undefined,
    // The release dir for the file:// URL, and the checkout (see repoRoot)
    // at their own paths: the overlay of / does not show other filesystems,
    // and a host's /tmp is a tmpfs of its own.
    bindReadOnly: [...(provision ? [sandboxPaths(state.stateDir).release] : []), state.repoRoot],
  });
}

/**
 * Brings the sandbox to `hosts` running hosts, a bridge and a healthy etcd.
 * Idempotent: a healthy sandbox is only reported, a half-made one repaired,
 * hosts beyond the count removed.
 * @throws FleetxError 'usage' for bad options, 'conflict' when the existing
 *         sandbox uses another network or the subnet overlaps a real one,
 *         'failed'/'unavailable' when etcd or a host does not come up.
 */
export async function sandboxUp(o: SandboxOptions): Promise<SandboxStatus> {
  validate(o);
  mkdirSync(sandboxPaths(o.stateDir).hosts, { recursive: true });
  await withLock(sandboxPaths(o.stateDir).lock, () => up(o));
  return sandboxStatus(o.stateDir);
}

async function up(o: SandboxOptions): Promise<void> {
  const prev = readState(o.stateDir);
  const state = planState(o, prev);
  // Name everything before creating it: `down` after a crash relies on it.
  writeState({ ...state, hosts: mergeHosts(prev?.hosts ?? [], state.hosts) });
  await createBridge(state.bridge.name, state.bridge.cidr);
  await ensureEtcd(state);
  await ensureAuth(state);
  await ensureRegistry(state.registry!);
  writeState({ ...state, hosts: mergeHosts(prev?.hosts ?? [], state.hosts) });

  const wanted = new Set(state.hosts.map((h) => h.dir));
  for (const d of hostDirs(o.stateDir)) if (!wanted.has(d)) await destroyHostDir(d);
  const paths = sandboxPaths(o.stateDir);
  const clientKey = await ensureKeyPair(paths.sshKey, `fleetx-sandbox@${o.stateDir}`);
  const agent = o.agent ?? true;
  // hosts of a sandbox made before etcd had auth lack the agent's credentials
  // (and made before cloud-init, have no instance-id: they get one and are provisioned)
  const reboot = prev !== undefined && prev.etcd.auth === undefined;
  // At most one pack per `up`, made when a host boots, shared by all (hosts provisioned before keep theirs).
  let pack: Promise<Release> | undefined;
  const provision = agent ? { release: () => (pack ??= packRelease(state.repoRoot, paths.release)), values: o.values } : undefined;
  const booted = await Promise.all(state.hosts.map((h) => ensureHost(state, h, provision, clientKey, reboot)));
  if (agent) {
    // A step that failed (bad endpoint, bad release) is named with the host and cloud-init's reason,
    // then an agent that cannot start with its journal: now, not when a deploy times out.
    await Promise.all(booted.map((h) => checkProvisioned(h)));
    await Promise.all(booted.map((h) => checkUnitRuns(h, AGENT_UNIT)));
  }
  state.hosts.forEach((h, i) => (h.machineId = booted[i]!.machineId));
  writeState(state);
  const keys = state.hosts.map((h, i) => ({ address: h.address, hostKey: booted[i]!.sshHostKey! }));
  writeFileSync(paths.knownHosts, knownHostsText(keys), { mode: 0o644 });
  writeFileSync(paths.env, envFileText(state.etcd.endpoints, o.stateDir, state.etcd.auth?.operator.username), { mode: 0o600 });
  chmodSync(paths.env, 0o600);
}

/** Old entries first so that hosts about to be removed are still named. */
function mergeHosts(old: SandboxHostEntry[], now: SandboxHostEntry[]): SandboxHostEntry[] {
  const names = new Set(now.map((h) => h.name));
  return [...old.filter((h) => !names.has(h.name)), ...now];
}

function hostDirs(stateDir: string): string[] {
  const dir = sandboxPaths(stateDir).hosts;
  try {
    return readdirSync(dir).map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/** What is there, checked live (processes, bridge, etcd /health, systemd in each host). Never throws for a missing sandbox. */
export async function sandboxStatus(stateDir: string): Promise<SandboxStatus> {
  const state = readState(stateDir);
  if (!state) return { stateDir, exists: false, healthy: false, hosts: [] };
  const present = await linkExists(state.bridge.name);
  const e = state.etcd;
  const members = await Promise.all(
    e.members.map(async (m): Promise<SandboxEtcdMemberStatus> => {
      const running = isOurEtcd(m.pid, m.dataDir) && (await etcdHealthy(m.clientUrl));
      return { name: m.name, clientUrl: m.clientUrl, peerUrl: m.peerUrl, pid: running ? m.pid : undefined, running, dataDir: m.dataDir, logFile: m.logFile };
    }),
  );
  const etcdUp = members.every((m) => m.running);
  const hosts = await Promise.all(
    state.hosts.map(async (h): Promise<SandboxHostStatus> => {
      const host = openHost(h.dir);
      if (!host) return { name: h.name, machineId: h.machineId, address: h.address, running: false };
      const r = await host.exec(['systemctl', 'is-system-running'], { timeoutMs: 5_000 }).catch(() => undefined);
      const systemState = r?.stdout.trim() || 'unknown';
      return { name: h.name, machineId: host.machineId, address: h.address, running: true, systemState };
    }),
  );
  const r = state.registry;
  const registryPid = r ? registryPids(r.dir)[0] : undefined;
  const registryUp = r !== undefined && registryPid !== undefined && (await registryAnswers(r.address));
  const healthy = present && etcdUp && registryUp && hosts.every((h) => h.running && /^(running|degraded)$/.test(h.systemState ?? ''));
  return {
    stateDir,
    exists: true,
    healthy,
    bridge: { name: state.bridge.name, address: state.bridge.cidr, present },
    etcd: {
      endpoints: e.endpoints,
      pid: members[0]!.pid,
      running: etcdUp,
      logFile: members[0]!.logFile,
      members,
      ...(e.auth ? { auth: { operator: e.auth.operator.username, agent: e.auth.agent.username, passwordFile: sandboxPaths(stateDir).operatorPassword } } : {}),
    },
    ...(r ? { registry: { address: r.address, url: `http://${r.address}/`, pid: registryUp ? registryPid : undefined, running: registryUp, logFile: r.logFile } } : {}),
    hosts,
    envFile: sandboxPaths(stateDir).env,
    env: envValues(e.endpoints, stateDir, e.auth?.operator.username),
  };
}

export interface SandboxDownResult {
  stateDir: string;
  /** What was found and removed, e.g. "host sandbox-1", "etcd", "bridge fleetx0". */
  removed: string[];
}

/**
 * Removes everything the sandbox made: hosts (processes, mounts, layers),
 * etcd, the bridge, its files. Safe twice and after a crash: it works from
 * what it finds (host dirs, etcd by data dir) as well as from state.json.
 * Only the sandbox's own entries in stateDir are deleted, then the dir if empty.
 * @throws FleetxError 'failed' when an overlay cannot be unmounted.
 */
export async function sandboxDown(stateDir: string): Promise<SandboxDownResult> {
  if (!isAbsolute(stateDir)) throw usageError(`the sandbox state dir must be an absolute path: ${stateDir}`);
  if (!existsSync(stateDir)) return { stateDir, removed: [] };
  requireRoot();
  const result = await withLock(sandboxPaths(stateDir).lock, () => down(stateDir));
  try {
    rmdirSync(stateDir);
  } catch {
    // Holds files that are not ours (or is still mounted on): leave it.
  }
  return result;
}

async function down(stateDir: string): Promise<SandboxDownResult> {
  const state = readState(stateDir);
  const paths = sandboxPaths(stateDir);
  const removed: string[] = [];
  const dirs = new Set([...hostDirs(stateDir), ...(state?.hosts.map((h) => h.dir) ?? [])]);
  await Promise.all(
    [...dirs].map(async (d) => {
      await destroyHostDir(d);
      removed.push(`host ${d.slice(d.lastIndexOf('/') + 1)}`);
    }),
  );
  // Every member's data dir that may exist, named in the state or not (a crash before it was written).
  const etcdDirs = new Set([...(state?.etcd.members.map((m) => m.dataDir) ?? []), ...ETCD_ENTRIES.filter((e) => !e.endsWith('.log')).map((e) => join(stateDir, e))]);
  const etcdRan = [...etcdDirs].some((d) => etcdPids(d).length > 0);
  await Promise.all([...etcdDirs].map((d) => stopEtcd(d)));
  if (etcdRan) removed.push('etcd');
  if (registryPids(paths.registry).length > 0) removed.push('registry');
  await stopRegistry(paths.registry);
  if (state && (await linkExists(state.bridge.name))) {
    await deleteBridge(state.bridge.name);
    removed.push(`bridge ${state.bridge.name}`);
  }
  await unmountAll(paths.hosts);
  if (mountsUnder(paths.hosts).length === 0) {
    // Only the sandbox's own entries: stateDir may be a directory the user shares.
    for (const entry of OWN_ENTRIES) if (entry !== 'lock') rmSync(join(stateDir, entry), { recursive: true, force: true });
  }
  return { stateDir, removed: removed.sort() };
}
