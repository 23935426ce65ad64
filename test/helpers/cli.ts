/** Run the fleetx CLI in-process (or as a real process) against a test etcd. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../../src/cli/main.js';
import { bufferIo } from '../../src/cli/io.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = `${REPO}bin/fleetx.mjs`;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `stdin`: what the command reads from standard input (undefined: a terminal). */
export async function fleetx(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd(), stdin?: string): Promise<CliResult> {
  const io = bufferIo(env, cwd, stdin);
  const code = await runCommand(argv, io);
  return { code, stdout: io.out.join('\n'), stderr: io.err.join('\n') };
}

/** The real binary, for what only a process shows: exit codes, timing, no hang. */
export function fleetxProcess(argv: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<CliResult & { ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...argv], { env: { PATH: process.env.PATH, ...env }, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}
