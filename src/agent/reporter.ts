/**
 * Current-state reporting: {p}/state/{id}/{name} for every unit fleetx
 * manages on this host, under the machine's lease. Driven by systemd's
 * change signals (onUnitChange), never by polling. Bursts are coalesced: a
 * change marks the unit dirty and one flush shortly after writes every dirty
 * unit once, in batches of one transaction each. Unchanged records are not
 * rewritten. A failed write stays dirty and is retried; a new lease
 * (`rewriteAll`) marks everything dirty again.
 */
import { DirtyWriter, type RecordChange, type RecordSink } from '../registry/dirty-writer.js';
import type { Keyspace } from '../registry/keys.js';
import type { PullReport, UnitStateRecord } from '../registry/records.js';
import type { UnitStatus } from '../systemd/types.js';

export type StateChange = RecordChange;
export type StateSink = RecordSink;

export interface ReporterOptions {
  machineId: string;
  keys: Keyspace;
  sink: StateSink;
  now: () => Date;
  /** how long to gather a burst of changes before writing (default 50 ms) */
  coalesceMs?: number;
  /** after a failed write (default 1 s) */
  retryMs?: number;
  onError?: (msg: string, err: unknown) => void;
}

type Entry = { hash: string; status?: UnitStatus; pull?: PullReport };

export class StateReporter {
  private readonly units = new Map<string, Entry>();
  /** last written record per name, without updatedAt, to skip no-op writes */
  private readonly written = new Map<string, string>();
  /** names whose record must be written (or deleted when no longer in units) */
  private readonly writer: DirtyWriter;

  constructor(private readonly o: ReporterOptions) {
    this.writer = new DirtyWriter({
      write: (name) => this.writeSome([name]),
      writeBatch: (names) => this.writeSome(names),
      coalesceMs: o.coalesceMs ?? 50,
      retryMs: o.retryMs ?? 1000,
      onError: (name, err) => o.onError?.(`reporting state of ${name} failed; retrying until it works`, err),
    });
  }

  /** The units fleetx manages here and the hash of each file. Units that left are deleted from etcd. */
  setManaged(hashes: ReadonlyMap<string, string>): void {
    for (const name of this.units.keys()) {
      if (!hashes.has(name)) {
        this.units.delete(name);
        this.markDirty(name);
      }
    }
    for (const [name, hash] of hashes) {
      const e = this.units.get(name);
      if (!e) this.units.set(name, { hash }); // written once systemd reports a status
      else if (e.hash !== hash) {
        e.hash = hash;
        if (e.status) this.markDirty(name);
      }
    }
  }

  /** One unit became managed (its file was written) with this hash. */
  manage(name: string, hash: string): void {
    const e = this.units.get(name);
    if (e?.hash === hash) return;
    if (!e) {
      this.units.set(name, { hash }); // written once systemd reports a status
      return;
    }
    e.hash = hash;
    if (e.status) this.markDirty(name);
  }

  /** One unit's file was removed: its record is deleted. */
  unmanage(name: string): void {
    if (!this.units.delete(name)) return;
    this.markDirty(name);
  }

  /** Managed units by their last observed active state ('unknown' until observed). */
  countByState(): Map<string, number> {
    const n = new Map<string, number>();
    for (const e of this.units.values()) {
      const s = e.status?.activeState ?? 'unknown';
      n.set(s, (n.get(s) ?? 0) + 1);
    }
    return n;
  }

  isManaged(name: string): boolean {
    return this.units.has(name);
  }

  /** A systemd status for any unit; ignored unless fleetx manages it. */
  observe(s: UnitStatus): void {
    const e = this.units.get(s.name);
    if (!e) return;
    // every pass re-observes every managed unit: an unchanged one is not a
    // change, and must not start a (no-op) flush that would make the next
    // real change wait out the coalescing window
    if (e.status && sameRecordFields(e.status, s)) return;
    e.status = s;
    this.markDirty(s.name);
  }

  /** The pre-pull of a unit's next body (prepull.ts); undefined clears it. Ignored unless fleetx manages the unit. */
  setPull(name: string, pull: PullReport | undefined): void {
    const e = this.units.get(name);
    if (!e || (e.pull === undefined && pull === undefined)) return;
    if (pull === undefined) delete e.pull;
    else e.pull = pull;
    this.markDirty(name);
  }

  /** After a new lease: every record must be written again. */
  rewriteAll(): void {
    this.written.clear();
    for (const name of this.units.keys()) this.markDirty(name);
  }

  /** Writes pending records now; resolves when done (errors are reported, not thrown). */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  close(): void {
    this.writer.close();
  }

  private markDirty(name: string): void {
    this.writer.mark(name);
  }

  /** Writes the records of these names that changed (deletes those no longer managed), in one transaction. */
  private async writeSome(names: string[]): Promise<void> {
    const changes: StateChange[] = [];
    const written: Array<[string, string | undefined]> = [];
    for (const name of names) {
      const key = this.o.keys.state(this.o.machineId, name);
      const e = this.units.get(name);
      if (!e) {
        changes.push({ key });
        written.push([name, undefined]);
        continue;
      }
      if (!e.status) continue; // no status yet: written when systemd reports one
      const rec = this.record(name, e.hash, e.status);
      if (e.pull !== undefined) rec.pull = e.pull;
      const { updatedAt: _omit, ...stable } = rec;
      const sig = JSON.stringify(stable);
      if (this.written.get(name) === sig) continue;
      changes.push({ key, value: JSON.stringify(rec) });
      written.push([name, sig]);
    }
    if (changes.length === 0) return;
    await this.o.sink.write(changes);
    for (const [name, sig] of written) {
      if (sig === undefined) this.written.delete(name);
      else this.written.set(name, sig);
    }
  }

  private record(name: string, hash: string, s: UnitStatus): UnitStateRecord {
    const rec: UnitStateRecord = {
      name,
      machine: this.o.machineId,
      hash,
      loadState: s.loadState,
      activeState: s.activeState,
      subState: s.subState,
      updatedAt: this.o.now().toISOString(),
    };
    if (s.mainPid !== undefined && s.mainPid > 0) rec.mainPid = s.mainPid;
    return rec;
  }
}

/** Whether two statuses give the same state record. */
function sameRecordFields(a: UnitStatus, b: UnitStatus): boolean {
  return a.loadState === b.loadState && a.activeState === b.activeState && a.subState === b.subState && (a.mainPid ?? 0) === (b.mainPid ?? 0);
}
