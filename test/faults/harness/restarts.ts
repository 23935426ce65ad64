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

/**
 * After a rollout that ended `end`: if it succeeded, every instance in
 * `before` runs a process it did not run then: a new main PID, or on
 * another host (moved off a host cut off from etcd). A stale copy left on
 * the old host for a moment after a partition heals is the checker's
 * 'double' invariant, not this one.
 */
export async function expectEveryRestarted(sb: SandboxFixture, before: Record<string, string>, end: string): Promise<void> {
  if (end !== 'succeeded') return;
  const after = Object.entries(await instancePids(sb));
  const unitOf = (key: string) => key.slice(key.indexOf('/') + 1);
  const kept = Object.entries(before)
    .filter(([key, pid]) => !after.some(([k, p]) => unitOf(k) === unitOf(key) && (k !== key || p !== pid)))
    .map(([key]) => key);
  expect(kept, 'instances the succeeded rolling restart never restarted').toEqual([]);
}
