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
  handleCreatedResponse(res: { canceled?: boolean; cancel_reason?: string }): void;
  handleError(err: Error): void;
  /** the Watch RPC client; its `client` is the connection pool holding the auth token */
  client: { client?: { authenticator?: { invalidateMetadata(): void } } };
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

/**
 * etcd checks a watch stream's auth token when each watch is created on it.
 * Once that token is invalid (etcd drops a user's tokens when its password is
 * set, e.g. on a credential rotation), every watch created on the stream is
 * cancelled with "invalid auth token", and etcd3 1.1.2 keeps the stream: the
 * watch is re-created on it and cancelled again, for ever (seen as a host
 * back from a partition that never saw its schedule again). Instead the token
 * is dropped and the stream reset, so it is opened again with a fresh token
 * and every watcher re-attaches.
 */
const handleCreatedResponse = WatchManager.prototype.handleCreatedResponse;
WatchManager.prototype.handleCreatedResponse = function (this: WatchManagerInternals, res) {
  if (res.canceled && /invalid auth token/i.test(res.cancel_reason ?? '')) {
    this.client.client?.authenticator?.invalidateMetadata();
    this.handleError(new etcd3.EtcdInvalidAuthTokenError(res.cancel_reason!));
    return;
  }
  handleCreatedResponse.call(this, res);
};
