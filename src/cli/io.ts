/**
 * What a command may touch of the outside world. Commands receive an Io
 * instead of using process.* so that tests can run them in-process and the
 * top-level handler stays the only place that exits.
 */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  readonly isTTY: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /**
   * All of standard input (for `secret set`, whose value must never be an
   * argument); undefined when stdin is a terminal, so a value is never typed
   * where it echoes.
   */
  readStdin?(): Promise<string | undefined>;
}

export type OutputFormat = 'text' | 'json';

/** CI mode (CI=true, as Jenkins, GitHub Actions and GitLab set it): no redraws or escapes even on a terminal. */
export function isCi(env: NodeJS.ProcessEnv): boolean {
  const v = env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

export function processIo(): Io {
  return {
    stdout: (t) => void process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    stderr: (t) => void process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    isTTY: Boolean(process.stdout.isTTY),
    env: process.env,
    cwd: process.cwd(),
    readStdin: async () => {
      if (process.stdin.isTTY) return undefined;
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

/** An Io that records output, for tests and for commands run from code. */
export function bufferIo(env: NodeJS.ProcessEnv = {}, cwd = process.cwd(), stdin?: string): Io & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    isTTY: false,
    env,
    cwd,
    readStdin: async () => stdin,
  };
}
