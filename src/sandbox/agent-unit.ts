/**
 * The fleetx agent as a systemd unit inside each sandbox host, rendered from
 * the shipped template (units/fleetx-agent.service.hbs) so the sandbox
 * installs exactly the unit users get.
 */
import { readFileSync } from 'node:fs';
import { findTemplate } from '../template/find.js';
import { renderTemplate } from '../template/render.js';

export const AGENT_UNIT = 'fleetx-agent.service';

/**
 * Pure: one argument of an Exec line. systemd expands `%` specifiers and `$`
 * variables and splits on blanks, so escape the first two and quote when needed.
 */
export function execArg(value: string): string {
  const escaped = value.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (!/[\s"'\\;]/.test(escaped) && escaped !== '') return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export interface AgentUnitOptions {
  /** Repository root as seen inside the host (the overlay shows the machine's / read-only below). */
  repoRoot: string;
  /** Every etcd member's client URL, e.g. [http://10.213.0.1:2379] */
  endpoints: string[];
  /** The host's own address, advertised to the cluster. */
  ip: string;
  nodePath?: string;
  /** Machine metadata (`--metadata k=v`). */
  metadata?: Record<string, string>;
}

/** Pure: the template's values for a sandbox host. */
export function agentValues(o: AgentUnitOptions): Record<string, unknown> {
  return {
    node: o.nodePath ?? '/usr/bin/node',
    fleetxBin: `${o.repoRoot}/bin/fleetx.mjs`,
    endpoints: o.endpoints,
    ip: o.ip,
    metadata: o.metadata ?? {},
  };
}

/** Pure: renders the agent template source with the sandbox host's values. */
export function renderAgentUnit(source: string, o: AgentUnitOptions): string {
  return renderTemplate(source, agentValues(o), { templateName: AGENT_UNIT }).text;
}

/**
 * The unit text from the checkout's own template (`<repoRoot>/units/`), the
 * one that matches the bin/fleetx.mjs the hosts run.
 * @throws FleetxError 'not-found' without the template, 'invalid' when a value cannot be rendered.
 */
export function agentUnit(o: AgentUnitOptions): string {
  const found = findTemplate(AGENT_UNIT, o.repoRoot);
  return renderAgentUnit(readFileSync(found.path, 'utf8'), o);
}
