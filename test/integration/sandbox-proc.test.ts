/**
 * How the sandbox tells whether one of its processes runs, against real
 * processes. A process inside execve shows an empty command line for a
 * moment, as a zombie does: bootHost's wrapper sh execs nspawn, and a boot
 * that looked at the command line then could take a healthy nspawn for one
 * that "exited during boot".
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isAlive, procArgv } from '../../src/sandbox/proc.js';
import { waitFor } from '../helpers/wait.js';

const state = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];

describe('sandbox processes', () => {
  it('a process is alive all through its exec (sh -c "exec sleep"), 100 times over', async () => {
    let lookedGone = 0;
    let execsSeen = 0;
    for (let i = 0; i < 100; i++) {
      const child = spawn('/bin/sh', ['-c', 'exec /bin/sleep 60'], { stdio: 'ignore' });
      const pid = child.pid!;
      // Poll from the spawn until the exec has finished (sleep 60 cannot end on its own meanwhile).
      const until = Date.now() + 5_000;
      while (procArgv(pid)?.[0] !== '/bin/sleep' && Date.now() < until) if (!isAlive(pid)) lookedGone++;
      if (procArgv(pid)?.[0] === '/bin/sleep') execsSeen++;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    expect(execsSeen).toBe(100);
    expect(lookedGone).toBe(0);
  });

  it('a zombie is not alive, nor is a process that is gone', async () => {
    // The background sleep ends after its parent sh became sleep 60, which never reaps it.
    const child = spawn('/bin/sh', ['-c', '/bin/sleep 1 & echo $!; exec /bin/sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = Number(await new Promise<string>((r) => child.stdout.once('data', (d: Buffer) => r(d.toString()))));
      await waitFor('the background process to become a zombie', () => state(zombie) === 'Z');
      expect(isAlive(zombie)).toBe(false);
      expect(isAlive(child.pid!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    await waitFor('the killed process to be reaped', () => !isAlive(child.pid!));
  });
});
