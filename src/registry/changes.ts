/**
 * Change feeds for loops that re-read everything they need in each pass
 * (engine, rollout controller, service checks): a PrefixWatch per prefix
 * that lists only the revision, so an event's content does not matter and
 * a re-list (after an error or a disconnection, see watch.ts) is reported as
 * a change of its own: a pass after it re-reads whatever was missed.
 */
import type { Etcd3 } from 'etcd3';
import { PrefixWatch, type WatchEvent, type WatchOptions } from './watch.js';

/** A typed event, or "this prefix was listed again" (something may have been missed). */
export type Change = WatchEvent | { type: 'listed'; prefix: string };

/** "put KEY", "delete KEY", "listed PREFIX": for pass reports only, never parsed. */
export function describeChange(c: Change): string {
  return c.type === 'listed' ? `listed ${c.prefix}` : `${c.type} ${c.key}`;
}

export class ChangeFeed {
  private readonly watches: PrefixWatch[];

  constructor(
    client: Etcd3,
    prefixes: readonly string[],
    onChange: (c: Change) => void,
    onProblem: (msg: string, err: unknown) => void,
    opts: Omit<WatchOptions, 'list'> = {},
  ) {
    this.watches = prefixes.map((prefix) => new PrefixWatch(
      client,
      { prefix },
      { replace: () => onChange({ type: 'listed', prefix }), event: onChange, problem: onProblem },
      { ...opts, list: 'revision' },
    ));
  }

  /** Resolves once every prefix is watched, or its first attempt failed (it keeps trying). */
  async start(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.stop()));
  }
}
