/**
 * The agent's YAML config file (`--config`): { ip?, metadata?: {k: v} }.
 * Pure. Its own module so that yaml (~2 MB resident) is loaded only by an
 * agent that has a config file (identity.ts imports it on demand).
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { invalidError } from '../errors/errors.js';
import { META_KEY, type AgentConfig } from './identity.js';

const configSchema = z.object({
  ip: z.string().optional(),
  metadata: z.record(z.string().regex(META_KEY), z.union([z.string(), z.number(), z.boolean()]).transform(String)).optional(),
}).strict();

/** Parses the YAML agent config. Throws 'invalid' naming the file and the problem. */
export function parseAgentConfig(text: string, source: string): AgentConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (e) {
    throw invalidError(`${source}: not valid YAML (${(e as Error).message})`);
  }
  const r = configSchema.safeParse(doc);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw invalidError(`${source}: ${issue.path.join('.') || '(top)'}: ${issue.message}`, 'expected keys: ip, metadata (a map of key: value)');
  }
  return r.data;
}

