/**
 * Grace for machines that vanish (fleet #1289). A machine's record lives
 * under its agent's lease. When etcd pauses or is out of reach for longer
 * than the TTL, leases expire together although every host and unit is
 * fine, and the agents re-register seconds later; moving their units at the
 * first pass after the outage restarted every instance (fleet did this, and
 * so did fleetx). A host that really died must still be failed over at once.
 *
 * What tells the two apart: during an outage the engine itself was cut off
 * from etcd too (its own election lease went unrenewed, its campaigns
 * failed; see Election.troubleAt). So a machine that holds schedule keys but
 * has no record is HELD (its units stay, not moved, not placed twice)
 * - while the engine's own last trouble with etcd is less than
 *   `disruptionGraceMs` ago (default 2 × TTL: etcd3 reports a lost lease at
 *   the latest 2 × TTL after its last keepalive, and the agent re-registers
 *   at once then), or
 * - for `graceMs` after this leader term first saw it missing (default 0:
 *   a dead host's units move as soon as its lease expires).
 * A host that dies while the engine is fine is failed over as before.
 *
 * Pure: the clock comes in as `now` (ms).
 */

export interface Absence {
  /** machines with schedule keys but no record, whose units stay where they are */
  held: Set<string>;
  /** ms until the earliest hold ends (a pass is due then), or undefined */
  nextExpiryMs: number | undefined;
}

export interface AbsenceOptions {
  /** hold for this long after a machine was first seen missing, ms */
  graceMs: number;
  /** hold for this long after the engine's own last trouble with etcd, ms */
  disruptionGraceMs: number;
}

export class MachineAbsence {
  private readonly since = new Map<string, number>();

  constructor(private readonly o: AbsenceOptions) {}

  /**
   * Updates the clocks from one pass's view and tells which machines are
   * held. `troubleAt`: when the engine was last cut off from etcd, if ever.
   */
  observe(live: ReadonlySet<string>, scheduled: Iterable<string>, now: number, troubleAt?: number): Absence {
    const missing = new Set([...scheduled].filter((m) => !live.has(m)));
    for (const m of [...this.since.keys()]) if (!missing.has(m)) this.since.delete(m);
    const disruptionEnds = troubleAt === undefined ? -Infinity : troubleAt + this.o.disruptionGraceMs;
    const held = new Set<string>();
    let nextExpiryMs: number | undefined;
    for (const m of missing) {
      const since = this.since.get(m) ?? now;
      this.since.set(m, since);
      const left = Math.max(since + this.o.graceMs, disruptionEnds) - now;
      if (left <= 0) continue;
      held.add(m);
      nextExpiryMs = nextExpiryMs === undefined ? left : Math.min(nextExpiryMs, left);
    }
    return { held, nextExpiryMs };
  }
}
