/**
 * Finding and stopping the sandbox's own processes through /proc. The sandbox
 * records pids, but after a crash or a reboot a pid may name someone else, so
 * a process is only ever recognised by its command line (a path that is
 * unique to the sandbox), never by pid alone.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
  ppid: number;
  argv: string[];
}

/** argv of a live process, or undefined when it is gone, a zombie, or (for a moment) inside execve. */
export function procArgv(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return undefined;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** The fields of /proc/PID/stat after the command name (state, ppid, ...), or undefined when there is no such process. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name sits in parentheses and may contain spaces: parse after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

export function procPpid(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields ? Number(fields[1]) : undefined;
}

export function listProcs(): ProcInfo[] {
  const procs: ProcInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const argv = procArgv(pid);
    const ppid = procPpid(pid);
    if (argv && ppid !== undefined) procs.push({ pid, ppid, argv });
  }
  return procs;
}

/** Live processes whose argv contains `needle` as a whole argument (or as `--flag=needle`). */
export function findProcs(needle: string, program?: string): ProcInfo[] {
  return listProcs().filter(
    (p) =>
      (program === undefined || p.argv[0]?.endsWith(program)) &&
      p.argv.some((a) => a === needle || a.endsWith(`=${needle}`)),
  );
}

/**
 * Whether `pid` runs (a zombie does not), from the state in /proc/PID/stat.
 * Not from the command line: while a process is inside execve its
 * command line reads empty for a moment (measured: up to ~4 ms under load,
 * in 19 of 50 `sh -c 'exec sleep'`), exactly as a zombie's does, so a
 * daemon checked right after its spawn could look dead.
 */
export function isAlive(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && !'ZXx'.includes(state);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `pids` are all gone; true when they are. */
export async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (pids.every((p) => !isAlive(p))) return true;
    if (Date.now() >= until) return false;
    await sleep(50);
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** SIGTERM, then SIGKILL after graceMs. Nothing running is fine. */
export async function terminate(pids: number[], graceMs = 10_000): Promise<void> {
  for (const p of pids) signal(p, 'SIGTERM');
  if (!(await waitGone(pids, graceMs))) {
    for (const p of pids) signal(p, 'SIGKILL');
    await waitGone(pids, 5_000);
  }
}

/**
 * Spawns a daemon detached (own process group, output appended to logFile,
 * unref'ed) so it outlives the CLI that started it. Returns its pid, or
 * undefined when it could not be started (the caller's wait reports it).
 */
export function spawnDaemon(file: string, argv: string[], logFile: string, env: NodeJS.ProcessEnv): number | undefined {
  const log = openSync(logFile, 'a');
  try {
    const child = spawn(file, argv, { detached: true, stdio: ['ignore', log, log], env });
    child.on('error', () => undefined); // surfaces as "exited at start"
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}
