/** Whole-process timing and summaries of repeated measurements, for the benchmarks' printed lines. */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ProcessRun {
  wallMs: number;
  /** user + system, as /usr/bin/time reports them (10 ms resolution) */
  cpuMs: number;
  rssMb: number;
}

/**
 * Runs argv as a whole process under /usr/bin/time (CPU and peak RSS);
 * wall time from spawn to exit. Rejects unless it exits 0. `scratch` is a
 * directory for /usr/bin/time's report.
 */
export async function timedProcess(argv: string[], env: NodeJS.ProcessEnv, scratch: string, cwd?: string): Promise<ProcessRun> {
  const out = join(scratch, 'time');
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-o', out, '-f', '%U %S %M', ...argv], { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`${argv.join(' ').slice(0, 200)} exited ${c}: ${err.slice(-2000)}`))));
  });
  const wallMs = performance.now() - started;
  const [user, sys, maxKb] = (await readFile(out, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wallMs, cpuMs: (user! + sys!) * 1000, rssMb: maxKb! / 1024 };
}

export interface Summary {
  min: number;
  median: number;
  max: number;
}

/** min, median (middle value, or the mean of the two middle ones) and max. */
export function summarize(xs: number[]): Summary {
  if (xs.length === 0) throw new Error('summarize: no measurements');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s.at(-1)! };
}

/** CPU (user + system) a live process has used so far, ms, from /proc (10 ms resolution). */
export async function procCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // fields after the command name, which is in parentheses and may hold spaces
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // utime, stime: clock ticks of 10 ms
}

/** The pid of the etcd whose command line holds `needle` (e.g. its client URL), if one runs. */
export async function etcdPid(needle: string): Promise<number | undefined> {
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const cmd = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    if (cmd.startsWith('/usr/bin/etcd') && cmd.includes(needle)) return Number(d);
  }
  return undefined;
}
