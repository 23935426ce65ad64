/**
 * The demo service file: services/web.yaml with the two settings that depend
 * on this machine filled in (the checkout's demo/web.mjs, the sandbox's
 * HAProxy socket), and optionally another instance count. Comments and
 * layout of the original are kept, so the copy reads like the source.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { loadServiceFile } from '../service/load.js';
import type { ServiceSpec } from '../service/types.js';

export interface DemoServiceOptions {
  repoRoot: string;
  socket: string;
  /** default: the file's */
  instances?: number;
}

/** Pure: the YAML text of the demo service for this checkout and sandbox. */
export function demoServiceText(source: string, o: DemoServiceOptions): string {
  const doc = parseDocument(source);
  doc.setIn(['values', 'script'], join(o.repoRoot, 'demo', 'web.mjs'));
  doc.setIn(['presence', 'socket'], o.socket);
  if (o.instances !== undefined) doc.setIn(['instances'], o.instances);
  return doc.toString();
}

/**
 * Writes `target` from the checkout's services/web.yaml and returns the spec
 * as fleetx reads it. @throws FleetxError 'invalid' when the file is not a valid service
 */
export function writeDemoService(target: string, o: DemoServiceOptions): ServiceSpec {
  const source = readFileSync(join(o.repoRoot, 'services', 'web.yaml'), 'utf8');
  writeFileSync(target, demoServiceText(source, o));
  return loadServiceFile(target, target);
}
