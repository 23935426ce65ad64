/** Run a validator the machine provides (cloud-init, ignition-validate): exit code and output, never a throw for a non-zero exit. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** @throws Error naming setup.sh when the program is not installed. */
export async function runTool(program: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(program, args);
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (err.code === 'ENOENT') throw new Error(`${program} is not installed: run scripts/setup.sh`);
    return { code: Number(err.code), out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}
