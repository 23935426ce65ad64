/** Measurements of a sandbox's agents shared by the sandbox benchmarks (agent, converge). */
import { sleep, type SandboxFixture } from '../test/helpers/sandbox.js';
import type { Host } from '../src/sandbox/host.js';

export const TICKS_PER_S = 100;

export interface AgentSample {
  rssMb: number;
  hwmMb: number;
  cpuTicks: number;
}

export async function agentSample(h: Host): Promise<AgentSample> {
  const pid = (await h.exec(['systemctl', 'show', '-p', 'MainPID', '--value', 'fleetx-agent.service'])).stdout.trim();
  const status = (await h.exec(['cat', `/proc/${pid}/status`])).stdout;
  const stat = (await h.exec(['cat', `/proc/${pid}/stat`])).stdout;
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  // fields after the command name (which may hold spaces): utime and stime are the 14th and 15th
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024, cpuTicks: Number(rest[11]) + Number(rest[12]) };
}

/** The largest resident memory (VmHWM: peak since start) of the agents of the running hosts, MB. */
export async function agentRssMaxMb(sb: SandboxFixture): Promise<{ peakMb: number; nowMb: number }> {
  const samples = await Promise.all(sb.runningHosts().map(agentSample));
  return { peakMb: Math.max(...samples.map((s) => s.hwmMb)), nowMb: Math.max(...samples.map((s) => s.rssMb)) };
}

/** `destroy` of running units: the CLI's time, and the time until no host reports them any more (the agent removes a unit's state record once it stopped it and removed its file). */
export async function destroyToStopped(sb: SandboxFixture, names: string[]): Promise<number> {
  const gone = new Set(names);
  const t0 = Date.now();
  await sb.cliOk(['destroy', ...names]);
  const cliMs = Date.now() - t0;
  for (;;) {
    const states = Object.values(await sb.etcd().getAll().prefix(sb.keys.states()).strings());
    const left = states.filter((v) => gone.has((JSON.parse(v) as { name: string }).name)).length;
    if (left === 0) break;
    if (Date.now() - t0 > 120_000) throw new Error(`${left} destroyed units still reported after 120 s`);
    await sleep(50);
  }
  const ms = Date.now() - t0;
  console.log(`destroy of ${names.length} running units: CLI ${cliMs} ms (in-process), stopped on the host${sb.hostCount > 1 ? 's' : ''} (state records gone) after ${ms} ms`);
  return ms;
}

