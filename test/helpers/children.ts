/**
 * Server processes the tests start (etcd, HAProxy): spawned so they die with
 * the test process (setpriv --pdeathsig where available, and a SIGKILL on
 * exit), and stopped with SIGTERM, then SIGKILL after 3 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';
const running = new Set<ChildProcess>();
let hooked = false;

/** Spawns `program args` with stderr piped; the child never outlives the tests. */
export function spawnServer(program: string, args: string[]): ChildProcess {
  if (!hooked) {
    hooked = true;
    // 'exit' handlers must be synchronous: a plain SIGKILL is all we can do.
    process.on('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
  const [cmd, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', program, ...args]] : [program, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  return child;
}

export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(timer);
  running.delete(child);
}

/** A function that runs `fn` once; later calls get the same promise. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}
