/**
 * What a command that starts a rollout (deploy, undo, rolling-restart) does
 * around it, as a CI step needs: follow it (or --detach) within a time
 * limit, say when no engine leader is alive to carry it, act on --on-abort
 * when the build is stopped (SIGTERM from Jenkins, Ctrl-C), wait for a
 * rollout that a stopped build aborted instead of being refused by its
 * lock, and end with one report (last JSON line under -o json; --report
 * FILE.json / FILE.xml). docs/CLI.md describes the contract.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { constants } from 'node:os';
import { FleetxError, isFleetxError, usageError } from '../../errors/errors.js';
import { describeHolder, holderFrom } from '../../deploy/holder.js';
import type { RolloutRecord } from '../../rollout/types.js';
import { formatDuration, parseDuration } from '../../service/duration.js';
import type { DeployContext } from '../context.js';
import { isCi, type Io } from '../io.js';
import { buildReport, type OnAbort, type ReportInput } from '../report/report.js';
import { junitXml } from '../report/junit.js';
import { finishedEvent, postEvent, startedEvent, webhookFrom, type WebhookEvent } from '../report/webhook.js';
import { describe, outcome, shortTime, type FollowEvent } from './events.js';
import { followRollout, signalOnInterrupt } from './follow.js';
import { pickRenderer, showNotice, type Renderer } from './render.js';

export interface FollowFlags {
  detach: boolean;
  /** --timeout; undefined: FLEETX_TIMEOUT or DEFAULT_TIMEOUT_MS; 0: no limit */
  timeoutMs?: number;
  /** what to do with the rollout when the build is stopped while following (default abort) */
  onAbort?: OnAbort;
  /** --report files: .xml is JUnit, anything else JSON */
  reports?: string[];
}

/** A followed rollout gives up after this long unless --timeout / FLEETX_TIMEOUT say otherwise. */
export const DEFAULT_TIMEOUT_MS = 30 * 60_000;
export const DEFAULT_ON_ABORT: OnAbort = 'abort';

export function timeoutOf(flag: number | undefined, env: NodeJS.ProcessEnv): number {
  if (flag !== undefined) return flag;
  if (env.FLEETX_TIMEOUT === undefined || env.FLEETX_TIMEOUT === '') return DEFAULT_TIMEOUT_MS;
  const ms = parseDuration(env.FLEETX_TIMEOUT);
  if (ms === undefined) throw usageError(`FLEETX_TIMEOUT must be a duration like 30s or 15m, got "${env.FLEETX_TIMEOUT}"`);
  return ms;
}

/** Runs a rollout-starting command and always ends with its report, whether it succeeded, failed or was refused. */
export async function reporting(command: string, flags: FollowFlags, ctx: DeployContext, fn: (run: RolloutRun) => Promise<void>): Promise<void> {
  const run = new RolloutRun(command, flags, ctx);
  try {
    await fn(run);
  } catch (e) {
    await run.end(e);
    throw e;
  }
  await run.end();
}

export class RolloutRun {
  private readonly begun = new Date();
  private readonly timeoutMs: number;
  private readonly input: Partial<ReportInput> = {};
  private readonly webhook: ReturnType<typeof webhookFrom>;
  /** the rollout.started post, awaited before rollout.finished so they arrive in order */
  private started?: Promise<void>;

  constructor(
    private readonly command: string,
    private readonly flags: FollowFlags,
    private readonly ctx: DeployContext,
  ) {
    this.timeoutMs = timeoutOf(flags.timeoutMs, ctx.io.env);
    this.webhook = webhookFrom(ctx.io.env);
  }

  /** ms left of the time limit (undefined: none) */
  private remaining(): number | undefined {
    return this.timeoutMs === 0 ? undefined : Math.max(1, this.timeoutMs - (Date.now() - this.begun.getTime()));
  }

  /** A progress line on stderr (text mode only); timestamped unless on a terminal. */
  say(text: string): void {
    if (this.ctx.output !== 'text') return;
    this.ctx.io.stderr(interactive(this.ctx.io) ? text : `${shortTime(new Date().toISOString())} ${text}`);
  }

  unchanged(service: string, revision: number, message: string): void {
    Object.assign(this.input, { service, unchanged: { revision, message } });
    if (this.ctx.output === 'text') this.ctx.io.stdout(message);
  }

  /**
   * Calls `attempt`; when it is refused by a lock whose rollout is being
   * aborted (e.g. by a build stopped with --on-abort=abort), waits for that
   * rollout to end, saying whose it was, and tries once more.
   */
  async afterAbortedLock<T>(attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (e) {
      const lock = isFleetxError(e) ? (e.details?.lock as LockDetails | undefined) : undefined;
      if (!lock || !(await this.aborting(lock))) throw e;
      this.notice('waiting-for-lock', lock.service, lock.rollout, `waiting for the aborted ${lock.what} of ${lock.service} by ${lock.by} (rollout ${lock.rollout}) to end; then deploying`);
      const silent: Renderer = { show() {}, close() {} };
      const t = this.remaining();
      await followRollout(this.ctx.store, { service: lock.service, id: lock.rollout, renderer: silent, ...(t !== undefined ? { timeoutMs: t, limitMs: this.timeoutMs } : {}) });
      return attempt();
    }
  }

  private async aborting(lock: LockDetails): Promise<boolean> {
    if (lock.aborting) return true;
    const c = await this.ctx.store.getControl(lock.service);
    return c?.command === 'abort' && c.at >= lock.since;
  }

  /** After the rollout was stored: follow it to its end (or --detach). Throws what the command exits with. */
  async follow(rollout: RolloutRecord): Promise<void> {
    const { io, store } = this.ctx;
    Object.assign(this.input, { service: rollout.service, rollout });
    if (this.webhook) this.started = this.post(startedEvent(rollout));
    if (this.flags.detach) {
      this.input.detached = true;
      if (this.ctx.output === 'text') io.stdout(`Started the ${describe(rollout)} (${rollout.id}). Follow it with: fleetx rollout status ${rollout.service} --follow`);
      return;
    }
    const shown = pickRenderer(io, this.ctx.output);
    const renderer: Renderer = {
      show: (r) => {
        this.input.rollout = r;
        shown.show(r);
      },
      close: () => shown.close(),
    };
    const interrupt = signalOnInterrupt();
    const t = this.remaining();
    try {
      const rec = await followRollout(store, {
        service: rollout.service,
        id: rollout.id,
        renderer,
        signal: interrupt.signal,
        ...(t !== undefined ? { timeoutMs: t, limitMs: this.timeoutMs } : {}),
        notice: (what, message) => this.notice(what, rollout.service, rollout.id, `${message}; waiting up to ${this.timeoutMs ? formatDuration(this.timeoutMs) : 'no limit'} (--timeout)`),
      });
      this.input.rollout = rec;
      const err = outcome(rec);
      if (err) throw err;
    } catch (e) {
      if (interrupt.signal.aborted) throw await this.stopped(String(interrupt.signal.reason), rollout);
      throw e;
    } finally {
      interrupt.dispose();
    }
  }

  /** The build was stopped: do what --on-abort says, quickly (SIGKILL follows within seconds). */
  private async stopped(signal: string, rollout: RolloutRecord): Promise<FleetxError> {
    const onAbort = this.flags.onAbort ?? DEFAULT_ON_ABORT;
    let action = 'detached: the rollout goes on without this build';
    if (onAbort !== 'detach') {
      const holder = holderFrom(this.ctx.io.env);
      try {
        await this.ctx.store.writeControl(rollout.service, { command: onAbort, by: `${describeHolder(holder)}, stopped by ${signal}`, at: new Date().toISOString() });
        action =
          onAbort === 'abort'
            ? 'abort requested: instances in flight finish, the rest stay as they were, then the rollout ends aborted and releases the lock (the next deploy waits for that)'
            : 'pause requested: instances in flight finish, no new one starts; the lock stays until fleetx rollout resume or abort';
      } catch (e) {
        action = `could not request ${onAbort}: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    this.input.interrupted = { signal, onAbort, action };
    const code = 128 + (constants.signals[signal as NodeJS.Signals] ?? 2);
    return new FleetxError('failed', `build stopped by ${signal} (--on-abort=${onAbort}): ${action}`, {
      exitCode: code,
      hint: `see it with fleetx rollout status ${rollout.service}`,
    });
  }

  private notice(notice: Extract<FollowEvent, { type: 'notice' }>['notice'], service: string, rollout: string, message: string): void {
    showNotice(this.ctx.io, this.ctx.output, { time: new Date().toISOString(), service, rollout, type: 'notice', notice, message });
  }

  private async post(event: WebhookEvent, attempts?: number): Promise<void> {
    const failed = await postEvent(this.webhook!, event, attempts !== undefined ? { attempts } : {});
    if (failed) this.ctx.io.stderr(`fleetx: warning: ${failed}`);
  }

  /**
   * Builds the report; prints it under -o json; writes --report files; posts
   * rollout.finished. Never throws (a report must not mask the exit code).
   */
  async end(error?: unknown): Promise<void> {
    const report = buildReport({
      command: this.command,
      startedAt: this.begun.toISOString(),
      endedAt: new Date().toISOString(),
      ...this.input,
      ...(error !== undefined ? { error } : {}),
    });
    if (this.ctx.output === 'json') this.ctx.io.stdout(JSON.stringify(report));
    for (const file of this.flags.reports ?? []) {
      try {
        writeFileSync(resolve(this.ctx.io.cwd, file), file.endsWith('.xml') ? junitXml(report) : `${JSON.stringify(report, null, 2)}\n`);
      } catch (e) {
        this.ctx.io.stderr(`fleetx: could not write the report ${file}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    await this.started;
    // a detached rollout has not finished; a stopped build gets one quick try before SIGKILL comes
    if (this.webhook && this.input.rollout && !this.input.detached) await this.post(finishedEvent(this.input.rollout, report), this.input.interrupted ? 1 : undefined);
  }
}

/** What lockError (deploy/store.ts) puts in its details. */
interface LockDetails {
  service: string;
  rollout: string;
  what: string;
  by: string;
  since: string;
  aborting: boolean;
}

/** A terminal a person watches: live redraws; CI=true counts as no terminal. */
export function interactive(io: Io): boolean {
  return io.isTTY && !isCi(io.env);
}
