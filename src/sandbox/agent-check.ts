/**
 * After boot: is the fleetx agent unit really running in a host? An agent
 * that cannot start (say it cannot find bin/fleetx.mjs) exits at once and
 * systemd restarts it every second, so one look at `is-active` can catch it
 * "active" between two crashes. The check asks for the same main process to
 * stay active for a while; otherwise it names the host and quotes the
 * unit's journal, within seconds rather than when a deploy times out.
 */
import { failedError } from '../errors/errors.js';
import type { Host } from './host.js';
import { sleep } from './proc.js';

export interface UnitLiveness {
  activeState: string;
  subState: string;
  mainPid: number;
  nRestarts: number;
}

/** Pure: `systemctl show -p ActiveState,SubState,MainPID,NRestarts` output as values. */
export function parseLiveness(text: string): UnitLiveness {
  const v = Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
  );
  return {
    activeState: v.ActiveState ?? 'unknown',
    subState: v.SubState ?? 'unknown',
    mainPid: Number(v.MainPID ?? 0) || 0,
    nRestarts: Number(v.NRestarts ?? 0) || 0,
  };
}

/**
 * Pure: whether two looks, `stableMs` apart, saw one process running: same
 * main pid, active/running both times.
 */
export function stayedUp(first: UnitLiveness, second: UnitLiveness): boolean {
  const running = (l: UnitLiveness) => l.activeState === 'active' && l.subState === 'running' && l.mainPid > 0;
  return running(first) && running(second) && first.mainPid === second.mainPid;
}

export interface AgentCheckOptions {
  /** Give up after this long (default 12 s). */
  timeoutMs?: number;
  /** The same process must run this long (default 2 s). */
  stableMs?: number;
  /** Journal lines quoted on failure (default 20). */
  journalLines?: number;
}

/**
 * Waits until `unit` runs steadily in `host`.
 * @throws FleetxError 'failed' naming the host, the unit's state and
 *         restart count, with the last journal lines as hint.
 */
export async function checkUnitRuns(host: Host, unit: string, o: AgentCheckOptions = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 12_000;
  const stableMs = o.stableMs ?? 2_000;
  const look = async () =>
    parseLiveness((await host.exec(['systemctl', 'show', '-p', 'ActiveState,SubState,MainPID,NRestarts', unit], { timeoutMs: 5_000 })).stdout);
  const until = Date.now() + timeoutMs;
  let last = await look();
  for (;;) {
    await sleep(stableMs);
    const now = await look();
    if (stayedUp(last, now)) return;
    last = now;
    if (Date.now() + stableMs > until) break;
  }
  const journal = await host.exec(['journalctl', '--no-pager', '-o', 'cat', '-n', String(o.journalLines ?? 20), '-u', unit], { timeoutMs: 5_000 });
  throw failedError(
    `host ${host.name}: ${unit} does not stay up (${last.activeState}/${last.subState}, restarted ${last.nRestarts} times)`,
    `last lines of its journal (fleetx journal or journalctl -u ${unit} in the host):\n${journal.stdout.trimEnd() || journal.stderr.trim()}`,
  );
}
