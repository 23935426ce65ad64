/**
 * The optional rollout webhook: POSTs `rollout.started` and
 * `rollout.finished` (with the report) as JSON to FLEETX_WEBHOOK_URL, e.g.
 * a chat webhook or a small relay to an events API. The URL often is a
 * secret itself (chat webhooks carry their token in the path), so it comes
 * only from the environment (a masked credential in CI, never a flag seen
 * in process lists), a bearer token only from a file
 * (FLEETX_WEBHOOK_TOKEN_FILE), and messages name the URL's origin only.
 * Retries with backoff (cockatiel); a webhook that keeps failing is a
 * warning and never changes the command's exit code.
 */
import { readFile } from 'node:fs/promises';
import { ExponentialBackoff, handleAll, retry } from 'cockatiel';
import type { RolloutRecord } from '../../rollout/types.js';
import type { RolloutReport } from './report.js';

export const WEBHOOK_SCHEMA = 'fleetx/webhook/v1';

export interface WebhookEvent {
  schema: typeof WEBHOOK_SCHEMA;
  event: 'rollout.started' | 'rollout.finished';
  service: string;
  rollout: string;
  kind: RolloutRecord['kind'];
  toRevision?: number;
  holder: RolloutRecord['holder'];
  /** rollout.finished: how it ended, and the whole report */
  outcome?: RolloutReport['outcome'];
  exitCode?: number;
  message?: string;
  report?: RolloutReport;
}

export function startedEvent(r: RolloutRecord): WebhookEvent {
  return { schema: WEBHOOK_SCHEMA, event: 'rollout.started', service: r.service, rollout: r.id, kind: r.kind, ...(r.toRevision !== undefined ? { toRevision: r.toRevision } : {}), holder: r.holder };
}

export function finishedEvent(r: RolloutRecord, report: RolloutReport): WebhookEvent {
  return { ...startedEvent(r), event: 'rollout.finished', outcome: report.outcome, exitCode: report.exitCode, ...(report.message ? { message: report.message } : {}), report };
}

export interface WebhookTarget {
  url: string;
  tokenFile?: string;
}

export function webhookFrom(env: NodeJS.ProcessEnv): WebhookTarget | undefined {
  const url = env.FLEETX_WEBHOOK_URL?.trim();
  if (!url) return undefined;
  return { url, ...(env.FLEETX_WEBHOOK_TOKEN_FILE ? { tokenFile: env.FLEETX_WEBHOOK_TOKEN_FILE } : {}) };
}

/** The part of a webhook URL that may be shown: scheme, host and port. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(an invalid URL)';
  }
}

/**
 * Posts one event, trying up to `attempts` times (200 ms, 400 ms … between
 * tries, each try at most `timeoutMs`). Resolves with undefined when
 * delivered, or a one-line reason without the URL's path or the token.
 */
export async function postEvent(target: WebhookTarget, event: WebhookEvent, o: { attempts?: number; timeoutMs?: number } = {}): Promise<string | undefined> {
  const origin = originOf(target.url);
  let token: string | undefined;
  if (target.tokenFile) {
    try {
      token = (await readFile(target.tokenFile, 'utf8')).trim();
    } catch (e) {
      return `webhook to ${origin}: cannot read FLEETX_WEBHOOK_TOKEN_FILE (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
    }
  }
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const attempts = Math.max(1, o.attempts ?? 3);
  const policy = retry(handleAll, { maxAttempts: attempts - 1, backoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 2_000 }) });
  try {
    await policy.execute(async () => {
      let res: Response;
      try {
        res = await fetch(target.url, { method: 'POST', headers, body: JSON.stringify(event), signal: AbortSignal.timeout(o.timeoutMs ?? 3_000), redirect: 'error' });
      } catch (e) {
        // fetch's own errors may quote the URL: keep only the kind
        throw new Error(e instanceof Error && e.name === 'TimeoutError' ? 'no answer in time' : networkCode(e));
      }
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`answered ${res.status}`);
    });
    return undefined;
  } catch (e) {
    return `webhook ${event.event} to ${origin} failed after ${attempts} attempt(s): ${e instanceof Error ? e.message : 'error'}`;
  }
}

/** fetch wraps network errors ("fetch failed"); the code (ECONNREFUSED …) is in its cause, or the cause's errors. */
function networkCode(e: unknown): string {
  const cause = (e as { cause?: { code?: string; errors?: Array<{ code?: string }> } }).cause;
  return cause?.code ?? cause?.errors?.find((x) => x.code)?.code ?? 'connection failed';
}
