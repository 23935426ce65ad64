/** Shared option plumbing for the command registrations. */
import type { Command } from 'commander';
import { usageError } from '../../errors/errors.js';
import type { OutputFormat } from '../io.js';

export interface GlobalFlags {
  endpoint?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  etcdUsername?: string;
  etcdPasswordFile?: string;
  etcdKeyPrefix?: string;
  requestTimeout?: string;
  output: OutputFormat;
}

export function globalFlags(cmd: Command): GlobalFlags {
  return cmd.optsWithGlobals() as GlobalFlags;
}

/** commander reducer for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Parse a non-negative integer option with a clear error. */
export function intOption(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw usageError(`${name} must be a non-negative integer, got "${value}"`);
    return Number(value);
  };
}
