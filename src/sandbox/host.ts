/**
 * A test host: a real systemd booted by systemd-nspawn over an overlay of the
 * machine's root, so Node and the repository are visible inside while every
 * write stays in the host's upper layer. See src/sandbox/README.md.
 *
 * The machine itself never boots systemd (its boot-time cleanup would empty
 * the shared /tmp); inside nspawn /tmp is a private tmpfs.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { FleetxError, conflictError, failedError, invalidError } from '../errors/errors.js';
import { cgroupKey, cgroupPids, createHostCgroups, removeHostCgroups } from './cgroups.js';
import { writeLayer, type HostFile } from './layer.js';
import { enabledUnits, unitsToMask } from './masks.js';
import { mountOverlay, mountsUnder, unmountAll } from './mounts.js';
import { findProcs, isAlive, listProcs, signal, sleep, waitGone } from './proc.js';
import { linkExists } from './network.js';
import { run, runOk, SYSTEM_PATH, type RunResult } from './run.js';
import { prepareSshd, SSH_UNIT_FILE, SSH_UNITS } from './sshd.js';

export interface HostSpec {
  /** Also the nspawn machine name and the hostname, [a-z0-9-]. */
  name: string;
  /** Where upper/work/merged and the logs live; created, and removed by stop(). */
  stateDir: string;
  /** Join this bridge with this address (the host's own CIDR); private network when absent. */
  bridge?: { name: string; address: string };
  /** 32 hex digits; generated when absent. */
  machineId?: string;
  /** Absolute path inside the host -> content (a `#!` first line makes it executable) or content and mode, written before boot. */
  files?: Record<string, HostFile>;
  /** Extra units to mask, on top of what the machine enabled (see masks.ts). */
  mask?: string[];
  /** Units not to mask although the machine enabled them. */
  keep?: string[];
  /** Units to start at boot (linked into multi-user.target.wants). */
  enable?: string[];
  /**
   * Machine paths to bind read-only at the same place inside the host: the
   * overlay shows only the root filesystem, not what is mounted below it.
   */
  bindReadOnly?: string[];
  /**
   * Run OpenSSH's sshd with a host key of its own (made once, kept across
   * reboots) and these public keys in root's authorized_keys. Without it
   * the ssh units stay masked. Needs openssh-server on the machine.
   */
  sshd?: { authorizedKeys: string[] };
  /** Keep an existing upper layer (a "reboot" after poweroff) instead of starting fresh. */
  reuseState?: boolean;
  /** Wait for systemd to finish booting before returning (default true). */
  waitForSystemd?: boolean;
  bootTimeoutMs?: number;
}

export interface ExecOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Added to a clean environment (PATH, LANG=C.UTF-8); the caller's environment is not passed in. */
  env?: Record<string, string>;
  input?: string;
}

export interface Host {
  readonly name: string;
  readonly machineId: string;
  /** The host's IPv4 address on the bridge, without prefix length. */
  readonly address?: string;
  /** pid (on the machine) of the host's systemd, for nsenter. */
  readonly leaderPid: number;
  readonly stateDir: string;
  /** The host's SSH public host key line ("ssh-ed25519 AAAA... root@name") when it runs sshd. */
  readonly sshHostKey?: string;
  /**
   * Runs argv inside the host (all its namespaces). A non-zero exit is a result.
   * @throws FleetxError 'unavailable' on timeout, 'failed' when nsenter cannot run.
   */
  exec(argv: string[], opts?: ExecOptions): Promise<RunResult>;
  /** @throws FleetxError 'unavailable' when systemd is not running/degraded in time, 'failed' when the host died. */
  waitForSystemd(timeoutMs?: number): Promise<void>;
  /** Hard stop: SIGKILL the host's processes. Mounts and state stay until stop(). */
  poweroff(): Promise<void>;
  /** Clean shutdown, then unmount and remove stateDir. Idempotent. */
  stop(): Promise<void>;
}

interface HostRecord {
  name: string;
  machineId: string;
  address?: string;
  nspawnPid: number;
  leaderPid: number;
  /** nspawn's lock on the image dir; left behind when nspawn is killed. */
  lockFile?: string;
  /** The machine's end of the host's veth (bridge mode). */
  veth?: string;
  sshHostKey?: string;
}

const NSPAWN_RUN = '/run/systemd/nspawn';

const NAME = /^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/;
const MACHINE_ID = /^[0-9a-f]{32}$/;

export const hostPaths = (stateDir: string) => ({
  upper: join(stateDir, 'upper'),
  work: join(stateDir, 'work'),
  merged: join(stateDir, 'merged'),
  log: join(stateDir, 'nspawn.log'),
  record: join(stateDir, 'host.json'),
  /** nspawn's lock next to the image dir; stays when nspawn is killed. */
  imageLock: join(stateDir, '.#merged.lck'),
});

/** The nspawn processes serving this state dir (found by their -D argument). */
function nspawnsOf(stateDir: string): number[] {
  return findProcs(hostPaths(stateDir).merged, 'systemd-nspawn').map((p) => p.pid);
}

/** PID 1 of the container nspawn started: its child whose innermost pid is 1. */
function leaderOf(nspawnPid: number): number | undefined {
  for (const p of listProcs()) {
    if (p.ppid !== nspawnPid) continue;
    try {
      const status = readFileSync(`/proc/${p.pid}/status`, 'utf8');
      const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      const comm = readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim();
      if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1' && comm === 'systemd') return p.pid;
    } catch {
      // Exited meanwhile.
    }
  }
  return undefined;
}

/** The last lines of the host's log (nspawn's own output and the host's console), from byte `from` on. */
function logTail(stateDir: string, lines = 15, from = 0): string {
  try {
    const text = readFileSync(hostPaths(stateDir).log).subarray(from).toString('utf8');
    // Colours of systemd's boot status would garble an error message.
    const tail = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split('\n').filter((l) => l.trim() !== '').slice(-lines);
    return tail.length > 0 ? tail.join('\n') : '(no output)';
  } catch {
    return '(no nspawn log)';
  }
}

/**
 * Stops whatever runs on `stateDir` and unmounts its overlay, keeping the
 * upper layer (a later bootHost with reuseState "reboots" it): clean shutdown
 * first (SIGTERM makes nspawn ask systemd to halt), SIGKILL after graceMs.
 * Works without a Host object, after a crash too.
 * @throws FleetxError 'failed' when the overlay cannot be unmounted.
 */
export async function haltHostDir(stateDir: string, graceMs = 15_000): Promise<void> {
  const rec = readRecord(stateDir);
  const nspawns = nspawnsOf(stateDir);
  const leaders = nspawns.map(leaderOf).filter((p): p is number => p !== undefined);
  // Without a running systemd there is no orderly shutdown to wait for (and
  // nspawn still setting up ignores SIGTERM). systemd still booting may miss
  // the halt signal nspawn forwards: repeat it every second.
  const until = Date.now() + (leaders.length > 0 ? graceMs : 1_000);
  let gone = nspawns.length === 0;
  while (!gone && Date.now() < until) {
    for (const pid of nspawns) signal(pid, 'SIGTERM');
    gone = await waitGone(nspawns, Math.min(1_000, Math.max(0, until - Date.now())));
  }
  if (!gone) {
    for (const pid of [...leaders, ...nspawns]) signal(pid, 'SIGKILL');
    await waitGone([...leaders, ...nspawns], 5_000);
  }
  if (rec) await emptyCgroup(stateDir, cgroupKey(rec.name, stateDir));
  await unmountAll(hostPaths(stateDir).merged);
  if (rec) await removeNspawnLeftovers(rec);
}

/**
 * Kills whatever is left in the host's cgroup, until it stays empty, then
 * removes it. "Stays": a host whose booter was killed mid-spawn may still
 * have its wrapper sh about to join the cgroup and exec nspawn; once the
 * cgroup is gone that join fails and nothing starts.
 */
async function emptyCgroup(stateDir: string, key: string): Promise<void> {
  let quiet = 0;
  for (let round = 0; round < 20 && quiet < 2; round++) {
    const rest = [...new Set([...cgroupPids(key), ...nspawnsOf(stateDir)])];
    if (rest.length === 0) {
      quiet++;
      await sleep(100);
      continue;
    }
    quiet = 0;
    for (const pid of rest) signal(pid, 'SIGKILL');
    await waitGone(rest, 5_000);
  }
  await removeHostCgroups(key);
}

/** haltHostDir, then remove stateDir. Idempotent. */
export async function destroyHostDir(stateDir: string, graceMs = 15_000): Promise<void> {
  await haltHostDir(stateDir, graceMs);
  // Only remove the directory once nothing is mounted in it: through a live
  // overlay a recursive delete would reach into the merged view.
  if (mountsUnder(hostPaths(stateDir).merged).length > 0) return;
  removeHostFiles(stateDir);
  try {
    rmdirSync(stateDir);
  } catch {
    // Absent, or holds files that are not ours.
  }
}

/**
 * Deletes a host's own entries only: a state dir given by mistake (say
 * /var/tmp) loses nothing else.
 */
function removeHostFiles(stateDir: string): void {
  for (const p of Object.values(hostPaths(stateDir))) rmSync(p, { recursive: true, force: true });
}

function readRecord(stateDir: string): HostRecord | undefined {
  try {
    return JSON.parse(readFileSync(hostPaths(stateDir).record, 'utf8')) as HostRecord;
  } catch {
    return undefined;
  }
}

/**
 * A killed nspawn leaves its image lock and its propagation dir under /run,
 * sometimes its veth; remove them once no nspawn uses this machine name.
 */
async function removeNspawnLeftovers(rec: HostRecord): Promise<void> {
  if (findProcs(rec.name, 'systemd-nspawn').length > 0) return;
  // Killed mid-setup, nspawn can leave the container's network namespace
  // pinned with no process in it, and with it the veth: delete our end.
  const veth = rec.veth ?? (rec.name.length <= 12 ? `vb-${rec.name}` : undefined);
  if (veth && (await linkExists(veth))) await run('ip', ['link', 'del', veth]);
  if (rec.lockFile?.startsWith(`${NSPAWN_RUN}/locks/`)) rmSync(rec.lockFile, { force: true });
  try {
    rmdirSync(join(NSPAWN_RUN, 'propagate', rec.name));
  } catch {
    // Absent (the usual case) or not empty: not ours to force.
  }
}

/**
 * A host of this name killed a moment ago (poweroff, then boot again) may
 * still hold its veth: the kernel frees it with the network namespace, a
 * little after the processes are gone, and nspawn cannot create a veth of
 * the same name until then (it exits at once). Wait a bounded while, then
 * delete it ourselves when no nspawn uses the name.
 */
async function vethReleased(name: string): Promise<void> {
  if (name.length > 12) return; // nspawn names no veth after a longer host name
  const veth = `vb-${name}`;
  for (let i = 0; i < 50 && (await linkExists(veth)); i++) await new Promise((r) => setTimeout(r, 100));
  if ((await linkExists(veth)) && findProcs(name, 'systemd-nspawn').length === 0) await run('ip', ['link', 'del', veth]);
}

/** A booted host, as its record (host.json) describes it. */
class NspawnHost implements Host {
  constructor(
    readonly stateDir: string,
    private readonly rec: HostRecord,
  ) {}

  get name(): string {
    return this.rec.name;
  }
  get machineId(): string {
    return this.rec.machineId;
  }
  get address(): string | undefined {
    return this.rec.address;
  }
  get leaderPid(): number {
    return this.rec.leaderPid;
  }
  get sshHostKey(): string | undefined {
    return this.rec.sshHostKey;
  }
  private get nspawnPid(): number {
    return this.rec.nspawnPid;
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    if (argv.length === 0) throw invalidError('exec needs a command');
    return run('nsenter', ['-t', String(this.leaderPid), '-a', '--', ...argv], {
      timeoutMs: opts.timeoutMs,
      input: opts.input,
      env: { PATH: SYSTEM_PATH, LANG: 'C.UTF-8', ...opts.env },
    });
  }

  async waitForSystemd(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      if (!isAlive(this.leaderPid)) {
        throw failedError(`host ${this.name} is not running (its systemd exited)`, logTail(this.stateDir));
      }
      try {
        const r = await this.exec(['systemctl', 'is-system-running'], { timeoutMs: 5_000 });
        last = (r.stdout.trim() || r.stderr.trim()).split('\n')[0] ?? '';
        if (last === 'running' || last === 'degraded') return;
      } catch (e) {
        if (!(e instanceof FleetxError)) throw e;
        last = e.message;
      }
      if (Date.now() >= until) {
        throw new FleetxError('unavailable', `host ${this.name}: systemd not up within ${timeoutMs} ms (last state: ${last})`, {
          hint: logTail(this.stateDir),
        });
      }
      await sleep(150);
    }
  }

  async poweroff(): Promise<void> {
    const pids = [this.leaderPid, ...nspawnsOf(this.stateDir)];
    // SIGKILL of a PID namespace's init kills every process in it.
    for (const pid of pids) signal(pid, 'SIGKILL');
    await waitGone(pids, 5_000);
  }

  stop(): Promise<void> {
    return destroyHostDir(this.stateDir);
  }
}

/** Reattaches to a host booted earlier (e.g. by another process), or undefined when it is not running. */
export function openHost(stateDir: string): Host | undefined {
  const rec = readRecord(stateDir);
  if (!rec) return undefined;
  const nspawns = nspawnsOf(stateDir);
  if (!nspawns.includes(rec.nspawnPid) || leaderOf(rec.nspawnPid) !== rec.leaderPid) return undefined;
  return new NspawnHost(stateDir, rec);
}

/** The machine id a host dir was given, if it has one (kept when a host is repaired). */
export function recordedMachineId(stateDir: string): string | undefined {
  return readRecord(stateDir)?.machineId;
}

function nspawnArgs(spec: HostSpec, merged: string): string[] {
  const args = ['-D', merged, '--boot', '-M', spec.name, '--register=no', '--keep-unit', '--console=read-only'];
  args.push(spec.bridge ? `--network-bridge=${spec.bridge.name}` : '--private-network');
  for (const path of spec.bindReadOnly ?? []) {
    if (!isAbsolute(path) || path.includes(':')) throw invalidError(`cannot bind ${JSON.stringify(path)} into a host`, 'absolute paths without ":"');
    args.push(`--bind-ro=${path}`);
  }
  return args;
}

/** The machine's end of host0: the link whose index host0 names as its peer. */
async function vethOf(host: Host): Promise<string | undefined> {
  const peer = Number((await host.exec(['cat', '/sys/class/net/host0/iflink'])).stdout.trim());
  const links = JSON.parse((await runOk('ip', ['-j', 'link', 'show'])).stdout) as Array<{ ifindex: number; ifname: string }>;
  return links.find((l) => l.ifindex === peer)?.ifname;
}

/**
 * The net unit may have failed and be waiting for its retry (see netUnit):
 * make sure host0 has its address before handing the host out.
 * @throws FleetxError 'failed' when `ip` inside the host fails.
 */
async function ensureAddress(host: Host, cidr: string): Promise<void> {
  const shown = await host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'host0']);
  if (shown.stdout.includes(` ${cidr} `)) return;
  for (const argv of [['ip', 'link', 'set', 'host0', 'up'], ['ip', 'addr', 'replace', cidr, 'dev', 'host0']]) {
    const r = await host.exec(argv);
    if (r.code !== 0) throw failedError(`host ${host.name}: ${argv.join(' ')} failed: ${r.stderr.trim()}`);
  }
}

/**
 * sshd failing to start leaves systemd merely "degraded": check it, so a
 * host handed out with sshd asked for can be reached.
 * @throws FleetxError 'failed' with sshd's journal in the hint.
 */
async function ensureSshd(host: Host): Promise<void> {
  const r = await host.exec(['systemctl', 'is-active', 'ssh.service']);
  if (r.stdout.trim() === 'active') return;
  const log = await host.exec(['journalctl', '--no-pager', '-n', '15', '-u', 'ssh.service']);
  throw failedError(`host ${host.name}: sshd is ${r.stdout.trim() || 'not running'}`, log.stdout.trim());
}

/** How the process this one spawned ended, as its exit event tells (the booter is nspawn's parent during boot). */
interface Booter {
  pid: number;
  /** Byte offset of this boot's first line in the host's log. */
  logFrom: number;
  /** "exit code N" / "killed by SIGX" / "cannot run: …" once it ended, else undefined. */
  ended(): string | undefined;
}

/**
 * Waits for the host's systemd to appear under nspawn. Whether nspawn ended
 * comes from its exit event, not from /proc: a process in the middle of
 * execve (our sh becoming nspawn) briefly shows an empty command line, which
 * looks exactly like a zombie.
 */
async function waitForLeader(booter: Booter, spec: HostSpec, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const leader = leaderOf(booter.pid);
    if (leader !== undefined) return leader;
    const ended = booter.ended();
    if (ended !== undefined) {
      // What nspawn said is the diagnosis: it goes into the message itself, which is all a test report shows.
      const output = logTail(spec.stateDir, 12, booter.logFrom);
      const kept = spec.reuseState ? `full log: ${hostPaths(spec.stateDir).log}` : undefined; // else removed with the half-made host
      throw failedError(`systemd-nspawn for host ${spec.name} exited during boot (${ended}); its output ends:\n${output}`, kept);
    }
    if (Date.now() >= until) throw failedError(`host ${spec.name}: no systemd after ${timeoutMs} ms`, logTail(spec.stateDir, 15, booter.logFrom));
    await sleep(50);
  }
}

/**
 * Boots a host. Returns once its systemd is running (or degraded) unless
 * spec.waitForSystemd is false.
 * @throws FleetxError 'invalid' for a bad name/machine id/file path,
 *         'conflict' when a host already runs on spec.stateDir,
 *         'failed' when nspawn or the mount fails,
 *         'unavailable' when systemd does not come up in time.
 *         On any failure the half-made host is stopped and, unless reuseState, removed
 *         (the error's hint holds the tail of its log).
 */
export async function bootHost(spec: HostSpec): Promise<Host> {
  if (!NAME.test(spec.name)) throw invalidError(`bad host name ${JSON.stringify(spec.name)}`, 'use [a-z0-9-], at most 64 characters');
  if (!isAbsolute(spec.stateDir)) throw invalidError(`host state dir must be absolute: ${JSON.stringify(spec.stateDir)}`);
  const machineId = spec.machineId ?? randomBytes(16).toString('hex');
  if (!MACHINE_ID.test(machineId)) throw invalidError(`bad machine id ${JSON.stringify(machineId)}`, '32 lowercase hex digits');
  if (nspawnsOf(spec.stateDir).length > 0) throw conflictError(`a host already runs on ${spec.stateDir}`, 'stop it first');
  if (spec.bridge) await vethReleased(spec.name);
  const timeoutMs = spec.bootTimeoutMs ?? 30_000;
  const paths = hostPaths(spec.stateDir);
  await unmountAll(paths.merged);
  if (!spec.reuseState) removeHostFiles(spec.stateDir);
  for (const d of [paths.upper, paths.work, paths.merged]) mkdirSync(d, { recursive: true });

  const address = spec.bridge?.address.split('/')[0];
  const keep = [...(spec.keep ?? []), ...(spec.sshd ? SSH_UNITS : [])];
  writeLayer(paths.upper, {
    name: spec.name,
    machineId,
    address: spec.bridge?.address,
    files: spec.files ?? {},
    masks: unitsToMask(enabledUnits('/'), spec.mask, keep),
    enable: spec.enable ?? [],
    links: spec.sshd ? { '/etc/systemd/system/multi-user.target.wants/ssh.service': SSH_UNIT_FILE } : {},
  });
  const sshHostKey = spec.sshd ? await prepareSshd(paths.upper, spec.name, spec.sshd.authorizedKeys) : undefined;

  // Recorded before anything runs, so that cleanup after a crash at any
  // point knows the host's name (its cgroup) and machine id.
  const rec: HostRecord = { name: spec.name, machineId, address, nspawnPid: 0, leaderPid: 0, sshHostKey };
  writeFileSync(paths.record, `${JSON.stringify(rec, null, 2)}\n`);
  let booter: Booter | undefined;
  try {
    await mountOverlay(paths.upper, paths.work, paths.merged);
    const st = statSync(paths.merged);
    const lockFile = `${NSPAWN_RUN}/locks/inode-${st.dev}:${st.ino}`;
    const log = openSync(paths.log, 'a');
    try {
      const logFrom = fstatSync(log).size; // the log is kept across reboots
      // Detached with its output in a file: the host outlives the process
      // that booted it (the sandbox CLI) and its console stays out of test output.
      // A tiny sh joins the host's own cgroups, then execs nspawn (same pid);
      // values only ever travel as "$@", never inside the script.
      const cgroups = createHostCgroups(cgroupKey(spec.name, spec.stateDir));
      const joinThenExec = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; n=$((n-1)); done; exec "$@"';
      const argv = ['-c', joinThenExec, 'sh', String(cgroups.length), ...cgroups, 'systemd-nspawn', ...nspawnArgs(spec, paths.merged)];
      const child = spawn('/bin/sh', argv, {
        detached: true,
        stdio: ['ignore', log, log],
        env: { PATH: SYSTEM_PATH, LANG: 'C.UTF-8' },
      });
      let ended: string | undefined;
      child.on('error', (e) => (ended ??= `cannot run: ${e.message}`));
      child.on('exit', (code, sig) => (ended ??= sig ? `killed by ${sig}` : `exit code ${code}`));
      child.unref();
      if (child.pid !== undefined) booter = { pid: child.pid, logFrom, ended: () => ended };
    } finally {
      closeSync(log);
    }
    if (booter === undefined) throw failedError('cannot start systemd-nspawn', 'is systemd-container installed?');
    Object.assign(rec, { nspawnPid: booter.pid, lockFile });
    writeFileSync(paths.record, `${JSON.stringify(rec, null, 2)}\n`);
    rec.leaderPid = await waitForLeader(booter, spec, timeoutMs);
    writeFileSync(paths.record, `${JSON.stringify(rec, null, 2)}\n`);
    const host = new NspawnHost(spec.stateDir, rec);
    if (spec.bridge) {
      rec.veth = await vethOf(host);
      writeFileSync(paths.record, `${JSON.stringify(rec, null, 2)}\n`);
    }
    if (spec.waitForSystemd ?? true) {
      await host.waitForSystemd(timeoutMs);
      if (spec.bridge) await ensureAddress(host, spec.bridge.address);
      if (spec.sshd) await ensureSshd(host);
    }
    return host;
  } catch (e) {
    // The caller gets no Host to stop: never leave a half-booted one behind.
    await (spec.reuseState ? haltHostDir : destroyHostDir)(spec.stateDir, 5_000).catch(() => undefined);
    throw e;
  }
}
