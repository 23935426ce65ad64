/**
 * Reading records out of etcd key-values. A record that is not valid JSON
 * is a bug or tampering, reported as 'internal' with the key, never
 * silently skipped.
 */
import type { IKeyValue } from 'etcd3';
import { FleetxError } from '../errors/errors.js';

export function decode<T>(key: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new FleetxError('internal', `corrupt record at etcd key ${key} (not JSON)`);
  }
}

export const encode = (record: unknown): string => JSON.stringify(record);

export function decodeKv<T>(kv: IKeyValue): T {
  return decode<T>(kv.key.toString(), kv.value.toString());
}

/** etcd revisions are decimal strings of int64; compare them without precision loss. */
export function maxRevision(revs: Iterable<string>): string {
  let max = 0n;
  for (const r of revs) {
    const v = BigInt(r);
    if (v > max) max = v;
  }
  return max.toString();
}

export function nextRevision(rev: string): string {
  return (BigInt(rev) + 1n).toString();
}

/** The end of the key range "every key starting with prefix" (etcd's prefix range). */
export function prefixEnd(prefix: string): Buffer {
  const buf = Buffer.from(prefix);
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i]! < 0xff) {
      const end = Buffer.from(buf.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  return Buffer.from([0]);
}
