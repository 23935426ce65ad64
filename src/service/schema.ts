/**
 * The service file's schema (services/NAME.yaml, see docs/ROLLOUT.md).
 * Durations are strings ('2s') or milliseconds; everything but `name` and
 * `values` has a default. Messages are phrased "field must ..." so the
 * loader can prefix them with file and line.
 */
import { z } from 'zod';
import { parseUnitName } from '../unit/name.js';
import { formatDuration, parseDuration } from './duration.js';
import type { ServiceSpec } from './types.js';

const HOUR = 3_600_000;

/**
 * A duration with sane bounds: `positive` refuses 0, `min`/`max` (ms) refuse
 * settings that cannot work (a rollout deadline of 0 fails every rollout at
 * once) or mean a mistake (a deadline of 99999h never fires).
 */
const duration = (fallback: string, positive = false, bounds: { min?: number; max?: number } = {}) =>
  z
    .unknown()
    .optional()
    .transform((v, ctx) => {
      const ms = parseDuration(v ?? fallback);
      if (ms === undefined || (positive && ms === 0)) {
        ctx.addIssue({ code: 'custom', message: `must be a${positive ? ' positive' : ''} duration like 500ms, 2s or 1m, or a number of milliseconds` });
        return z.NEVER;
      }
      const { min = 0, max = Infinity } = bounds;
      if (ms < min || ms > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${formatDuration(min)} and ${formatDuration(max)}, not ${formatDuration(ms)}` });
        return z.NEVER;
      }
      return ms;
    });

/**
 * The most instances (surge included) one service may have: a deploy writes
 * its new instances, template, revision, service and rollout records in ONE
 * etcd transaction (so a refused deploy writes nothing), and etcd allows 128
 * operations per transaction (--max-txn-ops). 100 leaves room for the rest.
 */
export const MAX_INSTANCES = 100;

const int = (min: number, what: string) =>
  z.number({ error: `must be ${what}` }).int({ error: `must be ${what}` }).min(min, { error: `must be ${what}` });
const positive = () => int(1, 'a positive integer');
const nonNegative = () => int(0, 'a non-negative integer');
const port = () => int(1, 'a port number (1-65535)').max(65535, { error: 'must be a port number (1-65535)' });
const text = () => z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' });
const argv = () => z.array(text(), { error: 'must be a list of strings (argv, no shell)' }).min(1, { error: 'must not be empty' });

// One health-check validation for both forms: the service file's (durations
// as written) and the stored one agents read back from etcd (milliseconds).
const checkType = z.enum(['http', 'tcp', 'command', 'none'], { error: 'must be one of http, tcp, command, none' });
const checkTarget = { port: port().optional(), path: text().optional(), command: argv().optional() };

function requireTarget(h: { type: string; port?: number; command?: string[] }, ctx: z.RefinementCtx): void {
  const need = (field: 'port' | 'command') => {
    if (h[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: `is required for health type ${h.type}` });
  };
  if (h.type === 'http' || h.type === 'tcp') need('port');
  if (h.type === 'command') need('command');
}

const health = z
  .strictObject({
    type: checkType.default('none'),
    ...checkTarget,
    // an agent refuses a stored check without a positive interval and timeout
    interval: duration('2s', true, { min: 10, max: HOUR }),
    timeout: duration('1s', true, { min: 10, max: HOUR }),
    threshold: positive().default(1),
    failureThreshold: positive().default(2),
  })
  .superRefine(requireTarget)
  .default({ type: 'none', interval: 2000, timeout: 1000, threshold: 1, failureThreshold: 2 });

const millis = () => z.number({ error: 'must be a number of milliseconds' }).positive({ error: 'must be positive' }).finite();

/** A stored check (ServiceRecord.health), as an agent reads it from etcd; fields it does not know are dropped. */
export const storedHealthCheckSchema = z
  .object({
    type: checkType,
    ...checkTarget,
    intervalMs: millis(),
    timeoutMs: millis(),
    threshold: positive(),
    failureThreshold: positive(),
  })
  .superRefine(requireTarget);

const presence = z
  .strictObject({
    driver: z.enum(['haproxy', 'webhook', 'command', 'etcd', 'none'], { error: 'must be one of haproxy, webhook, command, etcd, none' }).default('none'),
    port: port().optional(),
    socket: text().optional(),
    backend: text().optional(),
    url: z.url({ error: 'must be a URL' }).optional(),
    tokenFile: text().optional(),
    command: argv().optional(),
    etcdPrefix: text().optional(),
    drainTimeout: duration('30s', false, { max: HOUR }),
  })
  .superRefine((p, ctx) => {
    const required: Record<string, Array<'port' | 'socket' | 'backend' | 'url' | 'command' | 'etcdPrefix'>> = {
      haproxy: ['port', 'socket', 'backend'],
      webhook: ['url'],
      command: ['command'],
      etcd: ['port', 'etcdPrefix'],
      none: [],
    };
    for (const f of required[p.driver] ?? []) {
      if (p[f] === undefined) ctx.addIssue({ code: 'custom', path: [f], message: `is required for presence driver ${p.driver}` });
    }
  })
  .default({ driver: 'none', drainTimeout: 30_000 });

const rollout = z
  .strictObject({
    maxUnavailable: positive().default(1),
    surge: nonNegative().default(0),
    minHealthy: duration('1s', false, { max: HOUR }),
    deadline: duration('120s', true, { min: 1000, max: 24 * HOUR }),
    autoRevert: z.boolean({ error: 'must be true or false' }).default(true),
  })
  .default({ maxUnavailable: 1, surge: 0, minHealthy: 1000, deadline: 120_000, autoRevert: true });

export const SERVICE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export const serviceFileSchema = z
  .strictObject({
    name: z.string({ error: 'must be a string' }).regex(SERVICE_NAME_RE, { error: 'must start with a letter or digit and use only letters, digits and "_.-"' }),
    template: z
      .string({ error: 'must be a string' })
      .optional()
      .superRefine((t, ctx) => {
        if (t === undefined) return;
        try {
          if (!parseUnitName(t).isTemplate) ctx.addIssue({ code: 'custom', message: `must be a template unit name like app@.service, not ${t}` });
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: `must be a template unit name like app@.service: ${(e as Error).message}` });
        }
      }),
    source: text().optional(),
    values: z.record(z.string(), z.unknown(), { error: 'must be a mapping of names to values' }).default({}),
    instances: positive().max(MAX_INSTANCES, { error: `must be at most ${MAX_INSTANCES} (one deploy is one etcd transaction; see docs/ROLLOUT.md)` }).default(1),
    health,
    presence,
    rollout,
  })
  .superRefine((f, ctx) => {
    const { maxUnavailable, surge, deadline, minHealthy } = f.rollout;
    if (maxUnavailable > f.instances) {
      ctx.addIssue({ code: 'custom', path: ['rollout', 'maxUnavailable'], message: `must be at most instances (${f.instances}), not ${maxUnavailable}` });
    }
    if (f.instances + surge > MAX_INSTANCES) {
      ctx.addIssue({ code: 'custom', path: ['rollout', 'surge'], message: `with instances (${f.instances}) must be at most ${MAX_INSTANCES}` });
    }
    if (deadline <= minHealthy) {
      ctx.addIssue({ code: 'custom', path: ['rollout', 'deadline'], message: `must be longer than rollout.minHealthy (${formatDuration(minHealthy)}): no instance could count as healthy in time` });
    }
  });

export type ServiceFile = z.output<typeof serviceFileSchema>;

/** The parsed file in the stored shape (durations in ms, template defaulted to NAME@.service). */
export function toSpec(f: ServiceFile): ServiceSpec {
  const { interval, timeout, ...h } = f.health;
  const { drainTimeout, ...p } = f.presence;
  const { minHealthy, deadline, ...r } = f.rollout;
  return {
    name: f.name,
    template: f.template ?? `${f.name}@.service`,
    ...(f.source !== undefined ? { templateSource: f.source } : {}),
    values: f.values,
    instances: f.instances,
    health: { ...h, ...(h.type === 'http' && h.path === undefined ? { path: '/' } : {}), intervalMs: interval, timeoutMs: timeout },
    presence: { ...p, drainTimeoutMs: drainTimeout },
    rollout: { ...r, minHealthyMs: minHealthy, deadlineMs: deadline },
  };
}
