/** What every sandbox benchmark ends with: the sandbox torn down and checked, and one exit code. */
import type { SandboxFixture } from '../test/helpers/sandbox.js';

/** Takes the sandbox down and says whether anything was left behind (exit 1 if so). */
export async function downAndCheck(sb: SandboxFixture): Promise<void> {
  const left = await sb.down();
  console.log(left.length === 0 ? 'sandbox down, nothing left behind' : `LEFT BEHIND: ${left.join('; ')}`);
  if (left.length > 0) process.exitCode = 1;
}

/** Runs a benchmark's main: its code becomes the exit code; an error is printed and exits 1. */
export function runBench(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode ||= code;
    },
    (e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      process.exitCode = 1;
    },
  );
}
