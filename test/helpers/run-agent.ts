/**
 * Runs `fleetx agent` without the CLI program (test hosts start it with
 * `node node_modules/tsx/dist/cli.mjs test/helpers/run-agent.ts --flags`).
 * Flags are the agent command's, kebab-case.
 */
import { parseArgs } from 'node:util';
import { agentCommand } from '../../src/cli/commands/agent.js';
import { processIo } from '../../src/cli/io.js';
import { exitCodeOf } from '../../src/errors/errors.js';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    'etcd-key-prefix': { type: 'string' },
    'machine-id': { type: 'string' },
    ip: { type: 'string' },
    metadata: { type: 'string', multiple: true },
    config: { type: 'string' },
    ttl: { type: 'string' },
    'unit-dir': { type: 'string' },
    'purge-on-exit': { type: 'boolean' },
    'no-engine': { type: 'boolean' },
    resync: { type: 'string' },
    'log-level': { type: 'string' },
  },
});

const io = processIo();
try {
  await agentCommand(
    {
      endpoint: values.endpoint,
      etcdKeyPrefix: values['etcd-key-prefix'],
      machineId: values['machine-id'],
      ip: values.ip,
      metadata: values.metadata,
      config: values.config,
      ttl: values.ttl === undefined ? undefined : Number(values.ttl),
      unitDir: values['unit-dir'],
      purgeOnExit: values['purge-on-exit'],
      engine: !values['no-engine'],
      resync: values.resync === undefined ? undefined : Number(values.resync),
      logLevel: values['log-level'],
    },
    io,
  );
} catch (e) {
  io.stderr(`fleetx agent: ${(e as Error).message}`);
  process.exitCode = exitCodeOf(e);
}
// like the CLI's runCli: exit now, whatever handles the libraries keep open
process.exit();
