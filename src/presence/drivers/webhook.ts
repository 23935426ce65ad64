/**
 * The webhook driver: POST {service, unit, address, port, state} as JSON to
 * a URL, with `Authorization: Bearer <token>` when a token file is set. The
 * token is read from the file on every call (so it can be rotated) and is
 * never logged or put in an error message. 2xx = applied.
 *
 * Errors: a non-2xx answer, a timeout or a refused connection is a
 * per-instance error (retried); an unreadable token file throws 'usage'.
 * No session counts (see changes.ts): the rollout's drainTimeout covers
 * the wait for open requests after 'out'.
 */
import { readFile } from 'node:fs/promises';
import { usageError } from '../../errors/errors.js';
import { ChangeDriver, message, type PresenceChange } from './changes.js';

export interface WebhookDriverOptions {
  service: string;
  url: string;
  tokenFile?: string;
  /** per call (default 5000) */
  timeoutMs?: number;
}

export class WebhookDriver extends ChangeDriver {
  readonly kind = 'webhook';

  /** @throws FleetxError 'usage' for a URL that is not http(s). */
  constructor(private readonly opts: WebhookDriverOptions) {
    super(opts.service);
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw usageError(`presence.url "${opts.url}" is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usageError(`presence.url "${opts.url}" must be http:// or https://`);
  }

  protected async send(change: PresenceChange): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.tokenFile) headers.authorization = `Bearer ${await this.token()}`;
    const timeout = this.opts.timeoutMs ?? 5000;
    let res: Response;
    try {
      res = await fetch(this.opts.url, { method: 'POST', headers, body: JSON.stringify(change), signal: AbortSignal.timeout(timeout), redirect: 'error' });
    } catch (e) {
      const why = e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${timeout} ms` : causeOf(e);
      throw new Error(`webhook ${this.opts.url} failed: ${why}`);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new Error(`webhook ${this.opts.url} answered ${res.status} ${res.statusText}`);
  }

  private async token(): Promise<string> {
    try {
      return (await readFile(this.opts.tokenFile!, 'utf8')).trim();
    } catch (e) {
      throw usageError(`cannot read presence.tokenFile ${this.opts.tokenFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}

/** fetch wraps network errors as "fetch failed" with the useful part in `cause`. */
function causeOf(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? message(e);
}
