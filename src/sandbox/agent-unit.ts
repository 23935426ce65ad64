/**
 * The fleetx agent as a systemd unit inside each sandbox host.
 *
 * TODO: switch to units/fleetx-agent.service.hbs (being written separately)
 * once it exists, so the sandbox installs exactly the unit users get.
 */

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
  /** etcd client URL the agent uses, e.g. http://10.213.0.1:2379 */
  endpoint: string;
  /** The host's own address, advertised to the cluster. */
  ip: string;
  nodePath?: string;
}

/** Pure: the unit text. Restart=always: an agent that dies comes back, like on a real host. */
export function agentUnit(o: AgentUnitOptions): string {
  const exec = [o.nodePath ?? '/usr/bin/node', `${o.repoRoot}/bin/fleetx.mjs`, 'agent', '--endpoint', o.endpoint, '--ip', o.ip]
    .map(execArg)
    .join(' ');
  return [
    '[Unit]',
    'Description=fleetx agent',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    `ExecStart=${exec}`,
    'Restart=always',
    'RestartSec=2',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
