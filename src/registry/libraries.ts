/**
 * etcd3 and cockatiel, loaded with `require`. Both are CommonJS packages:
 * an ESM `import` of them makes Node scan each of their files for export
 * names (cjs-module-lexer) before running them, about 70 ms of CPU on every
 * CLI call that talks to etcd. Types still come from the packages
 * themselves (`import type`); values come from here.
 */
import { createRequire } from 'node:module';
import type * as Etcd3Package from 'etcd3';
import type * as CockatielPackage from 'cockatiel';

const require = createRequire(import.meta.url);

export const etcd3 = require('etcd3') as typeof Etcd3Package;
export const cockatiel = require('cockatiel') as typeof CockatielPackage;

/**
 * etcd3 1.1.2 throws from its watch stream's data handler when etcd answers
 * for a watch id it does not know ("Failed to find watcher for
 * IWatchResponse"), which kills the process: seen in the fault matrix when a
 * compaction cancelled watches resuming after an agent's connections were
 * reset. Instead the stream is reset as on a stream error: every watcher
 * gets `disconnected` and is created again, and PrefixWatch re-lists.
 */
interface WatchManagerInternals {
  watchers: Array<{ id: string | null }>;
  handleResponse(res: { watch_id: string }): void;
  handleError(err: Error): void;
}
const { WatchManager } = require('etcd3/lib/watch') as { WatchManager: { prototype: WatchManagerInternals } };
const handleResponse = WatchManager.prototype.handleResponse;
WatchManager.prototype.handleResponse = function (this: WatchManagerInternals, res) {
  if (!this.watchers.some((w) => w.id === res.watch_id)) {
    this.handleError(new etcd3.EtcdWatchStreamEnded());
    return;
  }
  handleResponse.call(this, res);
};
