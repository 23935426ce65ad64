/**
 * The watches a leader term keeps on the five prefixes a pass reads, feeding
 * the ViewCache (view-cache.ts) and kicking passes. Units, machines and
 * machine-meta changes kick a pass, as before; schedule and unschedulable
 * keys are the engine's own output (and `destroy`'s deletes, which delete
 * the unit too), so their events only update the cache: the engine does not
 * wake itself with its own writes. A re-list of any prefix (after an error,
 * a compaction or a disconnection: watch.ts) kicks a pass.
 */
import type { Etcd3 } from 'etcd3';
import type { BackoffOptions } from '../registry/backoff.js';
import type { Keyspace } from '../registry/keys.js';
import { PrefixWatch } from '../registry/watch.js';
import { ViewCache, VIEW_PARTS, type ViewPart } from './view-cache.js';

const KICKS: ReadonlySet<ViewPart> = new Set(['units', 'machines', 'machineMetas']);

export class ViewFeed {
  readonly cache = new ViewCache();
  private readonly watches: PrefixWatch[];

  constructor(
    client: Etcd3,
    keys: Keyspace,
    kick: (reason: string) => void,
    problem: (msg: string, err: unknown) => void,
    opts: { backoff?: BackoffOptions } = {},
  ) {
    const prefixes: Record<ViewPart, string> = {
      units: keys.units(),
      machines: keys.machines(),
      machineMetas: keys.machineMetas(),
      schedules: keys.schedules(),
      unschedulable: keys.unschedulables(),
    };
    this.watches = VIEW_PARTS.map((part) => {
      const prefix = prefixes[part];
      const kicks = KICKS.has(part);
      return new PrefixWatch(client, { prefix }, {
        replace: (items, revision) => {
          this.cache.replace(part, items, revision);
          kick(`listed ${prefix}`);
        },
        event: (e) => {
          if (e.type === 'put') this.cache.put(part, e.key, e.value, e.modRevision);
          else this.cache.delete(part, e.key, e.modRevision);
          if (kicks) kick(`${e.type} ${e.key}`);
        },
        problem,
      }, { ...opts, list: 'values' });
    });
  }

  /** Resolves once every prefix is listed and watched, or its first attempt failed (it keeps trying). */
  async start(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.start()));
  }

  /** Every prefix is listed again (after a refused write: the view may be behind or wrong). */
  resync(): void {
    for (const w of this.watches) w.resync();
  }

  async stop(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.stop()));
  }
}
