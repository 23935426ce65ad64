/**
 * Whether a rolling restart did what it says: every instance it reports
 * restarted runs a new process. Read from systemd on the hosts, not from
 * fleetx's records. (A rollout once succeeded with one instance never
 * restarted: its state records, deleted by an etcd outage with the machine's
 * lease, counted as "stopped" while it ran on.)
 */
import { expect } from 'vitest';
import { DEMO_SERVICE } from '../../../src/demo/demo.js';
import type { SandboxFixture } from '../../helpers/sandbox.js';

/** host/unit -> MainPID of every active instance of the demo service, read from systemd. */
export async function instancePids(sb: SandboxFixture): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of sb.runningHosts()) {
    for (const u of await sb.runningUnits(h, `${DEMO_SERVICE}@*`)) out[`${h.name}/${u}`] = (await sb.show(h, u, ['MainPID'])).MainPID!;
  }
  return out;
}

/** After a rollout that ended `end`: if it succeeded, no instance kept the main PID it had in `before`. */
export async function expectEveryRestarted(sb: SandboxFixture, before: Record<string, string>, end: string): Promise<void> {
  if (end !== 'succeeded') return;
  const after = await instancePids(sb);
  expect(Object.keys(before).filter((k) => after[k] === before[k]), 'instances the succeeded rolling restart never restarted').toEqual([]);
}
