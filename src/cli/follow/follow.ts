/**
 * Following a rollout: show the record as it changes (etcd watch on
 * {p}/rollout/{svc}), and when the key goes away read the finished record
 * from history. A watch error (compaction, lost stream) re-reads and
 * watches again. Ctrl-C / SIGTERM and --timeout only detach.
 */
import { FleetxError, failedError, notFoundError } from '../../errors/errors.js';
import type { DeployStore } from '../../deploy/store.js';
import type { RolloutRecord } from '../../rollout/types.js';
import type { Renderer } from './render.js';
import { outcome } from './events.js';
import { formatDuration } from '../../service/duration.js';

export interface FollowOptions {
  service: string;
  /** the rollout to follow; without it, whichever runs (then the newest in history) */
  id?: string;
  renderer: Renderer;
  /** aborted with reason 'SIGINT' / 'SIGTERM' / other: detach */
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Resolves with the finished record. Throws FleetxError 'failed' on detach (exit 130/143) or timeout. */
export async function followRollout(store: DeployStore, opts: FollowOptions): Promise<RolloutRecord> {
  const { service, renderer } = opts;
  let id = opts.id;
  let cancel: (() => Promise<void>) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<RolloutRecord>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        reject(e);
      };
      const ended = async () => {
        if (settled) return;
        try {
          const rec = await finished(store, service, id);
          if (!settled) {
            settled = true;
            renderer.show(rec);
            resolve(rec);
          }
        } catch (e) {
          fail(e);
        }
      };
      const begin = async (): Promise<void> => {
        await cancel?.();
        const { rollout, revision } = await store.readRollout(service);
        if (!rollout || (id !== undefined && rollout.id !== id)) return ended();
        id ??= rollout.id;
        renderer.show(rollout);
        cancel = await store.watchRollout(service, revision, {
          put: (r) => (r.id === id ? renderer.show(r) : void ended()),
          delete: () => void ended(),
          error: () => void begin().catch(fail),
        });
        if (settled) await cancel();
      };

      onAbort = () => fail(detachError(service, opts.signal?.reason));
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => fail(failedError(`stopped following after ${formatDuration(opts.timeoutMs!)}: the rollout of ${service} continues`, `follow it with fleetx rollout status ${service} --follow`)), opts.timeoutMs);
      }
      begin().catch(fail);
    });
  } finally {
    if (timer) clearTimeout(timer);
    if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    renderer.close();
    await cancel?.();
  }
}

/** Follows and turns the end into the command's result: returns on success, throws 'failed' otherwise. */
export async function followToEnd(store: DeployStore, opts: FollowOptions): Promise<RolloutRecord> {
  const rec = await followRollout(store, opts);
  const err = outcome(rec);
  if (err) throw err;
  return rec;
}

async function finished(store: DeployStore, service: string, id: string | undefined): Promise<RolloutRecord> {
  // The controller writes history and deletes the lock in one transaction, so it is there.
  const rec = id !== undefined ? await store.getHistory(service, id) : (await store.listHistory(service)).at(-1);
  if (!rec) throw notFoundError(id ? `rollout ${id} of ${service} ended but is not in its history` : `no rollout of ${service} is running or recorded`);
  return rec;
}

function detachError(service: string, reason: unknown): FleetxError {
  const code = reason === 'SIGTERM' ? 143 : 130;
  return new FleetxError('failed', `Detached: the rollout of ${service} continues. Follow it with: fleetx rollout status ${service} --follow`, { exitCode: code });
}

/** An AbortSignal fired by SIGINT / SIGTERM while following; dispose() removes the handlers. */
export function signalOnInterrupt(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onInt = () => ac.abort('SIGINT');
  const onTerm = () => ac.abort('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  return {
    signal: ac.signal,
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
