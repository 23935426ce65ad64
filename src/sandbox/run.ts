/**
 * Running machine commands for the sandbox: always argv arrays, never a shell.
 * A command that exits non-zero is a normal result (the caller decides); only
 * a command that cannot be started or does not finish in time throws.
 */
import { spawn } from 'node:child_process';
import { FleetxError, failedError } from '../errors/errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Replaces the environment entirely when given (PATH included). */
  env?: Record<string, string>;
  input?: string;
}

/** A PATH good for Debian both on the machine and inside test hosts. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Runs `file argv...` in its own process group so that a timeout kills
 * everything it started (nsenter forks a child to enter a PID namespace).
 * @throws FleetxError 'failed' when the program cannot be started,
 *         'unavailable' when it does not finish within timeoutMs.
 */
export function run(file: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, {
      detached: true,
      env: opts.env ?? { ...process.env, PATH: process.env.PATH ?? SYSTEM_PATH },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined); // the program may exit without reading its input
    child.stdin.end(opts.input ?? '');
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new FleetxError('failed', `cannot run ${file}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(new FleetxError('unavailable', `${file} ${argv.join(' ')} did not finish within ${timeoutMs} ms`));
        return;
      }
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/**
 * Runs a command that must succeed.
 * @throws FleetxError 'failed' with its stderr when it exits non-zero.
 */
export async function runOk(file: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(file, argv, opts);
  if (r.code !== 0) {
    throw failedError(`${file} ${argv.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r;
}

/** Sends a signal to a whole process group; a group already gone is fine. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: nothing left to signal.
  }
}
