/**
 * `fleetx … | head -1`: a reader that goes away ends fleetx quietly, as it
 * ends a Unix tool (status 141, 128 + SIGPIPE), not with an EPIPE stack.
 * The real binary, whose stdout (or stderr) pipe is closed before it writes.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What came out on the stream left open. */
  other: string;
}

function runWithClosed(argv: string[], closed: 'stdout' | 'stderr'): Promise<Ended> {
  const child = spawn(process.execPath, [BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  child[closed].destroy(); // the reader is gone before fleetx has started
  let other = '';
  (closed === 'stdout' ? child.stderr : child.stdout).on('data', (d: Buffer) => (other += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, other })));
}

describe('a closed output ends fleetx quietly', () => {
  it.each([
    ['version', ['version']],
    ['help, written by commander', ['--help']],
  ])('stdout closed: %s exits 141 without a word on stderr', async (_what, argv) => {
    expect(await runWithClosed(argv, 'stdout')).toEqual({ code: 141, signal: null, other: '' });
  });

  it('stderr closed: an error it cannot print exits 141, nothing on stdout', async () => {
    expect(await runWithClosed(['list-machines', '--endpoint', 'http://127.0.0.1:1'], 'stderr')).toEqual({ code: 141, signal: null, other: '' });
  });

  it('stdout closed but never written to: the command ends with its own error and code', async () => {
    const r = await runWithClosed(['list-machines', '--endpoint', 'http://127.0.0.1:1'], 'stdout');
    expect(r).toMatchObject({ code: 6, signal: null });
    expect(r.other).toMatch(/^fleetx: etcd at http:\/\/127\.0\.0\.1:1 is unreachable/);
  });
});
