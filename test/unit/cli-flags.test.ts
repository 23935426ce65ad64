/**
 * The command line's own contract: fleetctl-style global flags before the
 * command, Go's --flag=false form, `version`, and JSON errors on stderr.
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { bufferIo } from '../../src/cli/io.js';
import { buildProgram, fleetctlArgv, jsonError, runCommand } from '../../src/cli/main.js';
import { conflictError, EXIT, FleetxError } from '../../src/errors/errors.js';

/** Parses argv with the real program; the named command's action only records what it got. */
async function parsed(argv: string[], command: string): Promise<Record<string, unknown>> {
  const program = buildProgram(bufferIo());
  let seen: Record<string, unknown> = {};
  program.commands.find((c) => c.name() === command)!.action((...args: unknown[]) => {
    seen = (args.at(-1) as Command).optsWithGlobals();
  });
  await program.parseAsync(fleetctlArgv(argv), { from: 'user' });
  return seen;
}

describe('fleetctl habits', () => {
  it.each([
    ['before the command', ['--tunnel', 'bastion', '--ssh-username', 'core', '--known-hosts-file', '/k', '--strict-host-key-checking=false', 'status', 'web@1.service']],
    ['after the command', ['status', '--tunnel', 'bastion', '--ssh-username', 'core', '--known-hosts-file', '/k', '--no-strict-host-key-checking', 'web@1.service']],
  ])('SSH flags %s', async (_, argv) => {
    expect(await parsed(argv, 'status')).toMatchObject({ tunnel: 'bastion', sshUsername: 'core', knownHostsFile: '/k', strictHostKeyChecking: false });
  });

  it('host keys are checked unless told otherwise', async () => {
    expect((await parsed(['journal', 'web@1.service'], 'journal')).strictHostKeyChecking).toBeUndefined();
    expect((await parsed(['--strict-host-key-checking=true', 'journal', 'web@1.service'], 'journal')).strictHostKeyChecking).toBe(true);
    expect(await parsed(['journal', '--sudo', 'web@1.service'], 'journal')).toMatchObject({ sudo: true });
  });

  it.each([
    [['--strict-host-key-checking=false', 'status'], ['--no-strict-host-key-checking', 'status']],
    [['--strict-host-key-checking=0'], ['--no-strict-host-key-checking']],
    [['--strict-host-key-checking=true'], ['--strict-host-key-checking']],
    [['--other=false'], ['--other=false']],
    [['ssh', 'm', '--', 'x', '--strict-host-key-checking=false'], ['ssh', 'm', '--', 'x', '--strict-host-key-checking=false']],
  ])('fleetctlArgv(%j) = %j', (argv, expected) => {
    expect(fleetctlArgv(argv)).toEqual(expected);
  });

  it('fleetx version, and -o json version with its schema', async () => {
    const io = bufferIo();
    expect(await runCommand(['version'], io)).toBe(0);
    expect(io.out).toEqual([expect.stringMatching(/^fleetx version \d+\.\d+\.\d+$/)]);
    const j = bufferIo();
    expect(await runCommand(['-o', 'json', 'version'], j)).toBe(0);
    expect(JSON.parse(j.out[0]!)).toMatchObject({ schema: 'fleetx/version/v1', version: expect.any(String) });
  });
});

describe('errors under -o json', () => {
  it('a usage error is one JSON object on stderr, exit 2', async () => {
    const io = bufferIo();
    expect(await runCommand(['-o', 'json', 'no-such-command'], io)).toBe(EXIT.usage);
    expect(io.err).toHaveLength(1);
    expect(JSON.parse(io.err[0]!)).toEqual({ schema: 'fleetx/error/v1', error: { kind: 'usage', exitCode: 2, message: "unknown command 'no-such-command'" } });
    expect(io.out).toEqual([]);
  });

  it.each([
    ['a fleetx error with hint and details', new FleetxError('conflict', 'lock held', { hint: 'wait', details: { holder: { user: 'a' } } }), { kind: 'conflict', exitCode: 5, message: 'lock held', hint: 'wait', holder: { user: 'a' } }],
    ['a plain one', conflictError('x'), { kind: 'conflict', exitCode: 5, message: 'x' }],
    ['a bug', new TypeError('boom'), { kind: 'internal', exitCode: 70, message: 'internal error: boom' }],
  ])('%s', (_, e, error) => {
    expect(JSON.parse(jsonError(e))).toEqual({ schema: 'fleetx/error/v1', error });
  });
});
