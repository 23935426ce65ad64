/**
 * Following a rollout: show the record as it changes (DeployStore.watchRollout,
 * a PrefixWatch on {p}/rollout/{svc} that re-lists by itself after a
 * compaction or a lost stream), and when the key goes away read the finished
 * record from history. Ctrl-C / SIGTERM and --timeout only detach; etcd
 * failing before anything was shown fails the command.
 */
import { FleetxError, notFoundError } from '../../errors/errors.js';
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
  /** 0 or undefined: no limit */
  timeoutMs?: number;
  /** the whole command's limit, when timeoutMs is what is left of it (for the message) */
  limitMs?: number;
  /** how often to check that an engine leader is alive (default 2 s); 0: never */
  leaderCheckMs?: number;
  /** said when no engine leader is alive (nothing moves the rollout), and when one is back */
  notice?: (what: 'no-engine-leader' | 'engine-leader-back', message: string) => void;
}

export const NO_LEADER_HINT =
  'nothing moves a rollout until an agent with the engine runs. Check: fleetx list-machines (are agents registered?), ' +
  'systemctl status fleetx-agent on a machine, agents started with --no-engine, and that agents use the same --etcd-key-prefix';

/** Resolves with the finished record. Throws FleetxError 'failed' on detach (exit 130/143) or timeout. */
export async function followRollout(store: DeployStore, opts: FollowOptions): Promise<RolloutRecord> {
  const { service, renderer } = opts;
  let id = opts.id;
  let cancel: (() => Promise<void>) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let leaderTimer: NodeJS.Timeout | undefined;
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
      let shown = false;
      const begin = (): void => {
        cancel = store.watchRollout(service, {
          record: (r) => {
            if (settled) return;
            if (!r || (id !== undefined && r.id !== id)) return void ended();
            id ??= r.id;
            shown = true;
            renderer.show(r);
          },
          // before anything was shown (etcd unreachable, no permission) the command fails; later the watch recovers
          problem: (e) => void (shown || fail(e)),
        });
      };

      onAbort = () => fail(detachError(service, opts.signal?.reason));
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs) {
        timer = setTimeout(() => fail(timeoutError(service, opts.limitMs ?? opts.timeoutMs!)), opts.timeoutMs);
      }
      begin();
      if (opts.notice && opts.leaderCheckMs !== 0) {
        leaderTimer = watchLeader(store, opts.leaderCheckMs ?? 2_000, opts.notice, () => settled);
      }
    });
  } finally {
    if (timer) clearTimeout(timer);
    if (leaderTimer) clearTimeout(leaderTimer);
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

function timeoutError(service: string, ms: number): FleetxError {
  return new FleetxError('timeout', `stopped waiting after ${formatDuration(ms)} (--timeout): the rollout of ${service} continues`, {
    hint: `follow it with fleetx rollout status ${service} --follow, or stop it with fleetx rollout abort ${service}`,
  });
}

/** Checks at once and then every `everyMs`; tells only changes (gone, back). A failed read is not news. */
function watchLeader(store: DeployStore, everyMs: number, notice: NonNullable<FollowOptions['notice']>, done: () => boolean): NodeJS.Timeout {
  let alive: boolean | undefined;
  let timer: NodeJS.Timeout;
  const check = async () => {
    const leader = await store.engineLeader().catch(() => null);
    if (done()) return;
    if (leader !== null) {
      const now = leader !== undefined;
      if (!now && alive !== false) notice('no-engine-leader', `no engine leader is alive: ${NO_LEADER_HINT}`);
      if (now && alive === false) notice('engine-leader-back', `an engine leader is alive again (machine ${leader.slice(0, 8)}); the rollout moves on`);
      alive = now;
    }
    timer.refresh();
  };
  timer = setTimeout(() => void check(), everyMs);
  void check();
  return timer;
}

function detachError(service: string, reason: unknown): FleetxError {
  const code = reason === 'SIGTERM' ? 143 : reason === 'SIGHUP' ? 129 : 130;
  return new FleetxError('failed', `Detached: the rollout of ${service} continues. Follow it with: fleetx rollout status ${service} --follow`, { exitCode: code });
}

/**
 * An AbortSignal fired by SIGINT / SIGTERM / SIGHUP while following;
 * dispose() removes the handlers. Handlers stay until then, so a second
 * signal does not kill the process while it acts on the first.
 */
export function signalOnInterrupt(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => {
    const h = () => ac.abort(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });
  return {
    signal: ac.signal,
    dispose() {
      for (const [sig, h] of handlers) process.off(sig, h);
    },
  };
}
