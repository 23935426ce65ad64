/**
 * The demo's two daemons on the machine, HAProxy and the presence syncer,
 * started detached (own process group, output in a log file, unref'ed) so
 * they outlive the CLI that started them, like the sandbox's etcd. They are
 * recognised by command line (the config path, the sandbox's etcd URL),
 * never by a recorded pid alone, so a stale pid file never signals a stranger.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failedError } from '../errors/errors.js';
import { parseSocket, runtimeCommand } from '../presence/drivers/haproxy-api.js';
import { findProcs, isAlive, signal, sleep, waitGone } from '../sandbox/proc.js';
import { SYSTEM_PATH } from '../sandbox/run.js';

export const HAPROXY = '/usr/sbin/haproxy';

/** Live HAProxy processes running this config. */
export function haproxyPids(configFile: string): number[] {
  return findProcs(configFile, 'haproxy').map((p) => p.pid);
}

/** One runtime API command over the admin socket. @throws FleetxError 'unavailable' */
export function haproxyCommand(socket: string, command: string, timeoutMs = 3_000): Promise<string> {
  return runtimeCommand(parseSocket(socket), command, timeoutMs);
}

/** Checks the config (`haproxy -c`). @throws FleetxError 'failed' with HAProxy's complaint */
export function checkHaproxyConfig(configFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(HAPROXY, ['-c', '-q', '-f', configFile], { env: { PATH: SYSTEM_PATH } }, (err, stdout, stderr) => {
      if (err) reject(failedError(`HAProxy rejects ${configFile}: ${(stderr || stdout || err.message).trim()}`));
      else resolve();
    });
  });
}

/**
 * Starts HAProxy in the foreground of its own process group and waits until
 * its runtime API answers. @throws FleetxError 'failed' (see the log)
 */
export async function startHaproxy(o: { configFile: string; socket: string; logFile: string; pidFile: string }, timeoutMs = 10_000): Promise<number> {
  await checkHaproxyConfig(o.configFile);
  const pid = spawnDetached(HAPROXY, ['-db', '-f', o.configFile], o.logFile, { PATH: SYSTEM_PATH });
  writeFileSync(o.pidFile, `${pid}\n`);
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(pid)) throw failedError('the demo HAProxy exited at start', `see ${o.logFile}`);
    if (await haproxyCommand(o.socket, 'show info').then(() => true, () => false)) return pid;
    if (Date.now() >= until) {
      await stopByPids([pid]);
      throw failedError(`the demo HAProxy does not answer on ${o.socket} within ${timeoutMs} ms`, `see ${o.logFile}`);
    }
    await sleep(50);
  }
}

/** Live presence syncers of `service` against this etcd endpoint. */
export function syncerPids(endpoint: string, service: string): number[] {
  return findProcs(endpoint)
    .filter((p) => p.argv.includes('presence') && p.argv.includes(`--service=${service}`))
    .map((p) => p.pid);
}

/** `node bin/fleetx.mjs presence --service=SVC --endpoint=URL`, detached, JSON logs in logFile. */
export function startSyncer(o: { repoRoot: string; endpoint: string; env?: Record<string, string>; service: string; logFile: string; pidFile: string }): number {
  const argv = [join(o.repoRoot, 'bin', 'fleetx.mjs'), 'presence', `--service=${o.service}`, `--endpoint=${o.endpoint}`];
  // etcd credentials by environment (a password file's path), never in argv
  const pid = spawnDetached(process.execPath, argv, o.logFile, { PATH: SYSTEM_PATH, ...o.env }, o.repoRoot);
  writeFileSync(o.pidFile, `${pid}\n`);
  return pid;
}

/** SIGTERM, then SIGKILL after graceMs. Nothing running is fine. */
export async function stopByPids(pids: number[], graceMs = 10_000): Promise<void> {
  for (const p of pids) signal(p, 'SIGTERM');
  if (!(await waitGone(pids, graceMs))) {
    for (const p of pids) signal(p, 'SIGKILL');
    await waitGone(pids, 5_000);
  }
}

/** The pid in a pid file, when it names a live process that `isOurs` recognises. */
export function livePid(pidFile: string, ours: number[]): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return ours.includes(pid) && isAlive(pid) ? pid : ours[0];
  } catch {
    return ours[0];
  }
}

function spawnDetached(file: string, argv: string[], logFile: string, env: NodeJS.ProcessEnv, cwd?: string): number {
  const log = openSync(logFile, 'a');
  try {
    const child = spawn(file, argv, { detached: true, stdio: ['ignore', log, log], env, ...(cwd ? { cwd } : {}) });
    child.on('error', () => undefined); // surfaces as "exited at start"
    child.unref();
    if (child.pid === undefined) throw failedError(`could not start ${file}`, `see ${logFile}`);
    return child.pid;
  } finally {
    closeSync(log);
  }
}
