/**
 * The deploy pipeline: read (service file or stored service, --set over its
 * values) -> render -> normalize -> plan (pure, plan.ts) -> apply (one
 * transaction, store.ts). Rolling restart and undo go the same way.
 */
import { existsSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { FleetxError, invalidError, notFoundError, usageError } from '../errors/errors.js';
import type { RolloutRecord } from '../rollout/types.js';
import { secretReferences } from '../secrets/references.js';
import { loadServiceFile } from '../service/load.js';
import type { ServiceRecord, ServiceSpec } from '../service/types.js';
import { findTemplate } from '../template/find.js';
import { renderTemplate } from '../template/render.js';
import { loadValues } from '../template/values.js';
import { mergeValues } from '../template/defaults.js';
import { unitHash } from '../unit/hash.js';
import { parseUnit } from '../unit/parse.js';
import { serializeUnit } from '../unit/serialize.js';
import { parseUnitName } from '../unit/name.js';
import { checkRunnable } from '../unit/runnable.js';
import { parseXFleet } from '../unit/xfleet.js';
import { deployWrites, planDeploy, restartWrites, undoTarget, type ApplyContext, type DeployInput, type DeployPlan, type RestartInput } from './plan.js';
import { lockError, type DeployStore } from './store.js';

export interface DeploySource {
  /** -f services/app.yaml */
  file?: string;
  /** app, app@, app@.service: a stored service (or ./services/NAME.yaml) */
  name?: string;
  sets: string[];
  cwd: string;
}

/** Reads and renders; writes nothing. Throws 'usage', 'not-found', 'invalid' (with file/line). */
export async function prepareDeploy(store: DeployStore, src: DeploySource): Promise<{ input: DeployInput; plan: DeployPlan }> {
  const { spec, stored } = await readSpec(store, src);
  const overrides = loadValues({ files: [], sets: src.sets, cwd: src.cwd });
  const values = mergeValues(spec.values, overrides);
  const current = stored ?? (await store.getService(spec.name));
  const revisions = await store.listRevisions(spec.name);
  // The stored body stands in for a template file not at hand only when nothing that shapes it changed.
  const unchanged = src.sets.length === 0 && current !== undefined && sameShape(current, { ...spec, values });
  const body = renderSpec({ ...spec, values }, src.cwd, unchanged ? await currentBody(store, current, revisions) : undefined);
  return assemble(store, 'deploy', { ...spec, values }, body, current, revisions);
}

/** undo: the previous healthy revision's values and body as a new revision. */
export async function prepareUndo(store: DeployStore, service: string, toRevision?: number): Promise<{ input: DeployInput; plan: DeployPlan }> {
  const current = await store.getService(service);
  if (!current) throw notFoundError(`no service ${service} is stored`, 'deploy it first with fleetx deploy -f services/NAME.yaml');
  const revisions = await store.listRevisions(service);
  const target = undoTarget(revisions, current.revision, toRevision);
  if (!target) {
    throw toRevision !== undefined
      ? notFoundError(`${service} has no revision ${toRevision}`, `see its revisions with fleetx rollout history ${service}`)
      : notFoundError(`${service} has no earlier healthy revision to go back to`, 'name one with --to-revision N');
  }
  const text = await store.getBody(target.hash);
  if (text === undefined) throw notFoundError(`the body of revision ${target.revision} of ${service} is missing from etcd`);
  return assemble(store, 'undo', { ...current, values: target.values }, { text, hash: target.hash }, current, revisions);
}

async function assemble(
  store: DeployStore,
  kind: 'deploy' | 'undo',
  spec: ServiceSpec,
  body: { text: string; hash: string },
  current: ServiceRecord | undefined,
  revisions: DeployInput['revisions'],
): Promise<{ input: DeployInput; plan: DeployPlan }> {
  const units = await store.unitsOf(spec.template);
  const oldHash = revisions.find((r) => r.revision === current?.revision)?.hash ?? units.template?.value.hash;
  const oldBody = oldHash ? await store.getBody(oldHash) : undefined;
  const input: DeployInput = {
    kind,
    spec: pickSpec(spec),
    body,
    ...(current ? { current } : {}),
    revisions,
    ...(oldBody !== undefined ? { oldBody } : {}),
    ...(units.template ? { template: units.template } : {}),
    instances: units.instances,
  };
  return { input, plan: planDeploy(input) };
}

/**
 * Writes the plan. Returns the rollout record, or undefined when there was
 * no rollout to start (settings alone are then stored). @throws 'conflict' (lock held).
 */
export async function applyDeploy(store: DeployStore, prepared: { input: DeployInput; plan: DeployPlan }, ctx: ApplyContext): Promise<RolloutRecord | undefined> {
  const { plan, input } = prepared;
  if (plan.nothingToDo) {
    if (plan.specChanged) await store.putService({ ...input.spec, revision: plan.toRevision, updatedAt: ctx.now });
    return undefined;
  }
  const running = await store.getRollout(prepared.plan.service);
  if (running) {
    throw lockError(running);
  }
  const w = deployWrites(prepared.input, prepared.plan, ctx);
  await store.commitDeploy(w);
  return w.rollout;
}

export interface RestartRequest {
  /** app@, app@.service or app (a service name) */
  target: string;
  overrides: RestartInput['overrides'];
}

/** A rollout of kind 'restart' over every instance of the template. @throws 'not-found' (no instances), 'conflict' (lock). */
export async function startRestart(store: DeployStore, req: RestartRequest, ctx: ApplyContext): Promise<RolloutRecord> {
  let service = await store.getService(req.target);
  const template = service?.template ?? templateName(req.target);
  service ??= (await store.listServices()).find((s) => s.template === template);
  const units = await store.unitsOf(template);
  if (units.instances.length === 0) throw notFoundError(`${template} has no submitted instances to restart`, `start some with fleetx start ${template.replace('@', '@1')}`);
  const w = restartWrites({ template, ...(service ? { service } : {}), instances: units.instances, ...(units.template ? { templateUnit: units.template } : {}), overrides: req.overrides }, ctx);
  await store.commitDeploy(w);
  return w.rollout!;
}

/** app -> app@.service; app@ -> app@.service; app@.service stays. */
export function templateName(arg: string): string {
  const name = arg.endsWith('@') ? `${arg}.service` : arg.includes('@') ? arg : `${arg}@.service`;
  if (!parseUnitName(name).isTemplate) throw usageError(`${arg} is not a template or service name (expected app, app@ or app@.service)`);
  return name;
}

async function readSpec(store: DeployStore, src: DeploySource): Promise<{ spec: ServiceSpec; stored?: ServiceRecord }> {
  if (src.file !== undefined) {
    const path = resolve(src.cwd, src.file);
    return { spec: loadServiceFile(path, relative(src.cwd, path) || src.file) };
  }
  if (src.name === undefined) throw usageError('name a service (fleetx deploy app) or a service file (fleetx deploy -f services/app.yaml)');
  const name = src.name;
  const stored = (await store.getService(name)) ?? (await findByTemplate(store, name));
  if (stored) return { spec: stored, stored };
  const svcName = name.includes('@') ? name.slice(0, name.indexOf('@')) : name;
  const file = resolve(src.cwd, 'services', `${svcName}.yaml`);
  if (existsSync(file)) return { spec: loadServiceFile(file, relative(src.cwd, file)) };
  throw notFoundError(`no service ${name}: it is neither stored in etcd nor in services/${svcName}.yaml`, 'deploy it first with fleetx deploy -f services/NAME.yaml');
}

async function findByTemplate(store: DeployStore, name: string): Promise<ServiceRecord | undefined> {
  if (!name.includes('@')) return undefined;
  const tpl = templateName(name);
  return (await store.listServices()).find((s) => s.template === tpl);
}

/** The body the service is on now: used when its template file is not at hand and no value changed. */
async function currentBody(store: DeployStore, current: ServiceRecord | undefined, revisions: DeployInput['revisions']): Promise<{ text: string; hash: string } | undefined> {
  const rev = revisions.find((r) => r.revision === current?.revision);
  if (!rev) return undefined;
  const text = await store.getBody(rev.hash);
  return text === undefined ? undefined : { text, hash: rev.hash };
}

function renderSpec(spec: ServiceSpec, cwd: string, fallback?: { text: string; hash: string }): { text: string; hash: string } {
  const source = spec.templateSource ?? spec.template;
  let path: string;
  try {
    path = findTemplate(source, cwd).path;
  } catch (e) {
    if (fallback && e instanceof FleetxError && e.kind === 'not-found') return fallback;
    throw e;
  }
  const rendered = renderTemplate(readFileSync(path, 'utf8'), spec.values, { templateName: spec.template });
  const unit = parseUnit(rendered.text, spec.template);
  parseXFleet(unit, spec.template);
  checkRunnable(unit, spec.template, parseUnitName(spec.template).type);
  secretReferences(unit, spec.template);
  const text = serializeUnit(unit);
  if (text.trim() === '') throw invalidError(`template ${source} rendered an empty unit`);
  return { text, hash: unitHash(unit) };
}

/** Same template and values: the body would render the same. */
function sameShape(a: ServiceSpec, b: ServiceSpec): boolean {
  return a.template === b.template && a.templateSource === b.templateSource && JSON.stringify(a.values) === JSON.stringify(b.values);
}

/** Only the ServiceSpec fields (a stored record carries revision and updatedAt too). */
function pickSpec(s: ServiceSpec): ServiceSpec {
  return {
    name: s.name,
    template: s.template,
    ...(s.templateSource !== undefined ? { templateSource: s.templateSource } : {}),
    values: s.values,
    instances: s.instances,
    health: s.health,
    presence: s.presence,
    rollout: s.rollout,
  };
}
