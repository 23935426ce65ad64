/**
 * The demo service file: services/app.yaml with the two settings that depend
 * on the sandbox filled in (the image in the sandbox's registry, the
 * sandbox's HAProxy socket), and optionally another instance count.
 * Comments and layout of the original are kept, so the copy reads like the
 * source.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { DEMO_IMAGE } from '../images/demo-images.js';
import { loadServiceFile } from '../service/load.js';
import type { ServiceSpec } from '../service/types.js';

export interface DemoServiceOptions {
  repoRoot: string;
  /** host:port of the sandbox registry */
  registry: string;
  socket: string;
  /** default: the file's */
  instances?: number;
}

/** Pure: the YAML text of the demo service for this sandbox. */
export function demoServiceText(source: string, o: Omit<DemoServiceOptions, 'repoRoot'>): string {
  const doc = parseDocument(source);
  doc.setIn(['values', 'image'], `${o.registry}/${DEMO_IMAGE}`);
  doc.setIn(['presence', 'socket'], o.socket);
  if (o.instances !== undefined) doc.setIn(['instances'], o.instances);
  return doc.toString();
}

/**
 * Writes `target` from the checkout's services/app.yaml and returns the spec
 * as fleetx reads it. @throws FleetxError 'invalid' when the file is not a valid service
 */
export function writeDemoService(target: string, o: DemoServiceOptions): ServiceSpec {
  const source = readFileSync(join(o.repoRoot, 'services', 'app.yaml'), 'utf8');
  writeFileSync(target, demoServiceText(source, o));
  return loadServiceFile(target, target);
}
