/**
 * Pure deploy planning: what a deploy, undo or rolling restart would change,
 * and the records that say so. No I/O, no clock: times, ids and the holder
 * are passed in, so `plan` / `--dry-run` and the real deploy share one path.
 */
import { createTwoFilesPatch } from 'diff';
import type { UnitRecord } from '../registry/records.js';
import type { RolloutHolder, RolloutKind, RolloutRecord } from '../rollout/types.js';
import type { RevisionRecord, RolloutPolicy, ServiceRecord, ServiceSpec } from '../service/types.js';
import { instanceOf, parseUnitName } from '../unit/name.js';
import { parseUnit } from '../unit/parse.js';
import { pullStep } from '../unit/pull.js';
import type { DeployWrite, Versioned } from './store.js';

export interface DeployInput {
  kind: 'deploy' | 'undo';
  spec: ServiceSpec;
  /** the rendered, normalized unit */
  body: { text: string; hash: string };
  current?: ServiceRecord;
  revisions: RevisionRecord[];
  /** body of the revision the service is on (or of the template unit), for the diff */
  oldBody?: string;
  template?: Versioned<UnitRecord>;
  instances: Array<Versioned<UnitRecord>>;
}

export interface DeployPlan {
  kind: RolloutKind;
  service: string;
  template: string;
  fromRevision?: number;
  toRevision: number;
  /** false when the body is the newest revision's already */
  newRevision: boolean;
  toHash: string;
  revertTo?: { revision: number; hash: string };
  /** unified diff of the unit, old revision -> new ('' when equal) */
  diff: string;
  /** existing instances not on toHash, restarted by the rollout */
  restart: string[];
  /** instances the service wants that do not exist yet, created launched on toHash */
  create: string[];
  /** instances beyond `instances` (kept; scale down with fleetx destroy) */
  extra: string[];
  /** extra instances (policy.surge) created launched on toHash for the rollout, destroyed at its end; none when nothing restarts */
  surge: string[];
  templateChanged: boolean;
  /** service settings (instances, health, presence, policy) differ from the stored ones */
  specChanged: boolean;
  /** no revision, unit or rollout to write (the service record may still be updated when specChanged) */
  nothingToDo: boolean;
}

export function planDeploy(input: DeployInput): DeployPlan {
  const { spec, body, revisions } = input;
  const latest = revisions.at(-1);
  const newRevision = latest?.hash !== body.hash;
  const toRevision = newRevision ? (latest?.revision ?? 0) + 1 : latest!.revision;
  const wanted = Array.from({ length: spec.instances }, (_, i) => instanceOf(spec.template, String(i + 1)));
  const existing = new Set(input.instances.map((i) => i.value.name));
  const restart = input.instances.filter((i) => i.value.hash !== body.hash).map((i) => i.value.name);
  const create = wanted.filter((n) => !existing.has(n));
  const extra = [...existing].filter((n) => !wanted.includes(n));
  const templateChanged = input.template?.value.hash !== body.hash;
  const fromRevision = input.current?.revision ?? latest?.revision;
  const healthy = revisions.filter((r) => r.healthy && r.hash !== body.hash).at(-1);
  const old = input.oldBody ?? '';
  const diff =
    old === body.text
      ? ''
      : createTwoFilesPatch(
          `${spec.template}${fromRevision !== undefined ? ` (revision ${fromRevision})` : ''}`,
          `${spec.template} (revision ${toRevision})`,
          old,
          body.text,
          undefined,
          undefined,
          { context: 3 },
        );
  return {
    kind: input.kind,
    service: spec.name,
    template: spec.template,
    ...(fromRevision !== undefined ? { fromRevision } : {}),
    toRevision,
    newRevision,
    toHash: body.hash,
    ...(healthy ? { revertTo: { revision: healthy.revision, hash: healthy.hash } } : {}),
    diff,
    restart,
    create,
    extra,
    surge: restart.length > 0 ? surgeNames(spec.template, [...existing, ...create], spec.rollout.surge) : [],
    templateChanged,
    specChanged: input.current === undefined || !sameSpec(input.current, spec),
    nothingToDo: !newRevision && !templateChanged && restart.length === 0 && create.length === 0 && input.current?.revision === toRevision,
  };
}

/**
 * Names for `count` surge instances: the next free instance numbers after
 * the numbered ones that exist or are created (app@4.service … for app@1-3).
 */
export function surgeNames(template: string, taken: string[], count: number): string[] {
  const n = Math.max(0, Math.floor(count));
  if (n === 0) return [];
  let top = 0;
  for (const name of taken) {
    const inst = parseUnitName(name).instance ?? '';
    if (/^\d+$/.test(inst)) top = Math.max(top, Number(inst));
  }
  const used = new Set(taken);
  const out: string[] = [];
  for (let i = top + 1; out.length < n; i++) {
    const name = instanceOf(template, String(i));
    if (!used.has(name)) out.push(name);
  }
  return out;
}

function sameSpec(a: ServiceSpec, b: ServiceSpec): boolean {
  const pick = (s: ServiceSpec) => JSON.stringify([s.template, s.templateSource ?? null, s.values, s.instances, s.health, s.presence, s.rollout]);
  return pick(a) === pick(b);
}

/** Who, when and how: everything impure a deploy needs, decided by the caller. */
export interface ApplyContext {
  id: string;
  now: string;
  holder: RolloutHolder;
  /** holder as one string, for audit fields */
  user: string;
  /** --no-auto-revert */
  autoRevert?: boolean;
}

/** The records a deploy writes, in one transaction (see DeployStore.commitDeploy). */
export function deployWrites(input: DeployInput, plan: DeployPlan, ctx: ApplyContext): DeployWrite {
  const { spec, body } = input;
  const revision: RevisionRecord | undefined = plan.newRevision
    ? { service: spec.name, revision: plan.toRevision, hash: body.hash, values: spec.values, createdAt: ctx.now, createdBy: ctx.user, deployedBy: ctx.holder, healthy: false }
    : undefined;
  const tpl = input.template;
  const units: DeployWrite['units'] = [];
  if (plan.templateChanged) {
    const rec: UnitRecord = { name: spec.template, hash: body.hash, targetState: tpl?.value.targetState ?? 'inactive', submittedBy: ctx.user, updatedAt: ctx.now };
    units.push({ record: rec, readAt: tpl?.modRevision ?? '0' });
  }
  // Created instances and surge instances: launched on the new body, in the deploy's transaction.
  for (const name of [...plan.create, ...plan.surge]) {
    units.push({ record: { name, hash: body.hash, targetState: 'launched', template: spec.template, submittedBy: ctx.user, updatedAt: ctx.now }, readAt: '0' });
  }
  const rollout = rolloutRecord({
    id: ctx.id,
    service: spec.name,
    template: spec.template,
    kind: plan.kind,
    ...(plan.fromRevision !== undefined ? { fromRevision: plan.fromRevision } : {}),
    toRevision: plan.toRevision,
    toHash: body.hash,
    revertTo: plan.revertTo,
    autoRevert: ctx.autoRevert ?? spec.rollout.autoRevert,
    prePull: pullsImage(body.text, spec.template),
    spec,
    policy: spec.rollout,
    holder: ctx.holder,
    now: ctx.now,
    // Instances created by this deploy are launched on the new body in the
    // same transaction, so they join the rollout already 'starting': the
    // controller waits for them to be healthy (and in the LB) like any
    // other, and the revision is marked healthy only once they are.
    instances: [
      ...plan.restart.map((unit) => ({ unit, targetHash: body.hash })),
      ...verify(input, plan).map((unit) => ({ unit, targetHash: body.hash })),
      ...plan.create.map((unit) => ({ unit, targetHash: body.hash, created: true })),
      ...plan.surge.map((unit) => ({ unit, targetHash: body.hash, created: true, surge: true })),
    ],
  });
  return {
    service: spec.name,
    body,
    ...(revision ? { revision } : {}),
    serviceRecord: { ...spec, revision: plan.toRevision, updatedAt: ctx.now },
    units,
    rollout,
    ...(plan.templateChanged && tpl && tpl.value.hash !== body.hash ? { released: [tpl.value.hash] } : {}),
  };
}

/**
 * A deploy's instances pull the new body's image before they leave the
 * balancer when the body has a pull step (src/unit/pull.ts). A rolling
 * restart does not: its body, so its image, is already on the hosts.
 */
function pullsImage(text: string, template: string): boolean {
  try {
    return pullStep(parseUnit(text, template), template) !== undefined;
  } catch {
    return false;
  }
}

/**
 * Instances that already run the body of a NEW revision (a deploy back to
 * the body of an earlier, reverted-from one): they join the rollout as
 * pending, so the planner finds them on target and healthy (done, no
 * restart) or restarts them, and the revision is marked healthy only once
 * they are. Left out, the rollout had nothing to verify and the revision
 * stayed `healthy: false` after a deploy that reported success.
 */
function verify(input: DeployInput, plan: DeployPlan): string[] {
  if (!plan.newRevision) return [];
  return input.instances.map((i) => i.value).filter((u) => u.hash === input.body.hash && !plan.extra.includes(u.name)).map((u) => u.name);
}

export interface RestartInput {
  template: string;
  service?: ServiceRecord;
  instances: Array<Versioned<UnitRecord>>;
  templateUnit?: Versioned<UnitRecord>;
  /** flags override the service's policy (or the defaults) */
  overrides: Partial<Pick<RolloutPolicy, 'maxUnavailable' | 'minHealthyMs' | 'deadlineMs'>>;
}

export const DEFAULT_POLICY: RolloutPolicy = { maxUnavailable: 1, surge: 0, minHealthyMs: 1000, deadlineMs: 120_000, autoRevert: false };

/** A rolling restart: every instance, each back onto the hash it runs now. */
export function restartRecord(input: RestartInput, ctx: ApplyContext): RolloutRecord {
  const svc = input.service;
  const name = svc?.name ?? input.template.slice(0, input.template.indexOf('@'));
  const base = svc ? svc.rollout : DEFAULT_POLICY;
  const policy: RolloutPolicy = { ...base, ...input.overrides, autoRevert: false };
  const toHash = input.templateUnit?.value.hash ?? input.instances[0]?.value.hash ?? '';
  return rolloutRecord({
    id: ctx.id,
    service: name,
    template: input.template,
    kind: 'restart',
    ...(svc ? { fromRevision: svc.revision } : {}),
    toRevision: svc?.revision,
    toHash,
    autoRevert: false,
    spec: svc,
    policy,
    holder: ctx.holder,
    now: ctx.now,
    instances: [
      ...input.instances.map((i) => ({ unit: i.value.name, targetHash: i.value.hash })),
      ...restartSurge(input, policy, toHash).map((unit) => ({ unit, targetHash: toHash, created: true, surge: true })),
    ],
  });
}

function restartSurge(input: RestartInput, policy: RolloutPolicy, toHash: string): string[] {
  if (toHash === '' || input.instances.length === 0) return [];
  return surgeNames(input.template, input.instances.map((i) => i.value.name), policy.surge);
}

/**
 * A rolling restart in one transaction: the rollout record (the lock) and,
 * with policy.surge, the surge instances' unit records launched on the
 * rollout's hash (see DeployStore.commitDeploy).
 */
export function restartWrites(input: RestartInput, ctx: ApplyContext): DeployWrite {
  const rollout = restartRecord(input, ctx);
  const units: DeployWrite['units'] = Object.values(rollout.instances)
    .filter((p) => p.surge)
    .map((p) => ({ record: { name: p.unit, hash: p.targetHash, targetState: 'launched', template: input.template, submittedBy: ctx.user, updatedAt: ctx.now }, readAt: '0' }));
  return { service: rollout.service, units, rollout };
}

function rolloutRecord(a: {
  id: string;
  service: string;
  template: string;
  kind: RolloutKind;
  fromRevision?: number;
  toRevision?: number;
  toHash: string;
  revertTo?: { revision: number; hash: string };
  autoRevert: boolean;
  prePull?: boolean;
  spec?: ServiceSpec;
  policy: RolloutPolicy;
  holder: RolloutHolder;
  now: string;
  instances: Array<{ unit: string; targetHash: string; created?: boolean; surge?: boolean }>;
}): RolloutRecord {
  return {
    id: a.id,
    service: a.service,
    template: a.template,
    kind: a.kind,
    state: 'running',
    ...(a.fromRevision !== undefined ? { fromRevision: a.fromRevision } : {}),
    ...(a.toRevision !== undefined ? { toRevision: a.toRevision } : {}),
    toHash: a.toHash,
    ...(a.revertTo ? { revertTo: a.revertTo } : {}),
    autoRevert: a.autoRevert,
    ...(a.prePull ? { prePull: true } : {}),
    presence: (a.spec?.presence.driver ?? 'none') !== 'none',
    ...(a.spec ? { drainTimeoutMs: a.spec.presence.drainTimeoutMs } : {}),
    policy: a.policy,
    holder: a.holder,
    createdAt: a.now,
    updatedAt: a.now,
    instances: Object.fromEntries(
      a.instances.map((i) => [
        i.unit,
        i.created
          ? { unit: i.unit, phase: 'starting' as const, since: a.now, startedAt: a.now, healthAtStart: '', targetHash: i.targetHash, ...(i.surge ? { surge: true } : {}) }
          : { unit: i.unit, phase: 'pending' as const, since: a.now, targetHash: i.targetHash },
      ]),
    ),
  };
}

/**
 * The revision `undo` goes back to: --to-revision N, or the newest healthy
 * revision whose body differs from the current one. undefined if none.
 */
export function undoTarget(revisions: RevisionRecord[], current: number | undefined, to?: number): RevisionRecord | undefined {
  if (to !== undefined) return revisions.find((r) => r.revision === to);
  const currentHash = revisions.find((r) => r.revision === current)?.hash;
  return revisions.filter((r) => r.healthy && r.revision !== current && r.hash !== currentHash).at(-1);
}

/** Rollout ids sort by start time (to the millisecond): 20261122T004001.123Z-1a2b3c. */
export function rolloutId(now: Date, random: string): string {
  return `${now.toISOString().replace(/[-:]/g, '')}-${random}`;
}

/** The plan as text, for `fleetx plan` and `deploy --dry-run`. */
export function formatPlan(p: DeployPlan): string[] {
  if (p.nothingToDo) return [`${p.service} is already at revision ${p.toRevision}${p.specChanged ? ' (its service settings would be updated)' : ''}`];
  const out: string[] = [];
  const from = p.fromRevision !== undefined ? `revision ${p.fromRevision}` : 'nothing';
  out.push(`${p.kind === 'undo' ? 'Undo' : 'Deploy'} ${p.service}: ${from} -> revision ${p.toRevision}${p.newRevision ? ' (new)' : ''}`);
  if (p.diff) out.push(p.diff.trimEnd());
  else out.push(`(unit ${p.template} unchanged)`);
  out.push(p.restart.length > 0 ? `Instances to restart (${p.restart.length}): ${p.restart.join(', ')}` : 'Instances to restart: none');
  if (p.create.length > 0) out.push(`Instances to create (${p.create.length}): ${p.create.join(', ')}`);
  if (p.surge.length > 0) out.push(`Surge instances (${p.surge.length}, started first, destroyed when the rollout ends): ${p.surge.join(', ')}`);
  if (p.extra.length > 0) out.push(`Instances beyond ${p.service}'s count (kept, also restarted if listed above): ${p.extra.join(', ')}`);
  if (p.revertTo) out.push(`On failure: back to revision ${p.revertTo.revision}`);
  return out;
}
