/**
 * etcd's own request counters (its Prometheus /metrics), for benchmarks that
 * say what something cost etcd: unary gRPC requests by method, and MVCC
 * operations (a Txn's ranges and puts count there one by one).
 */
export type Metrics = Map<string, number>;

/** etcd's Prometheus text, as series -> value (only what the benches read). */
export async function metrics(endpoint: string): Promise<Metrics> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    const m = /^(etcd_debugging_mvcc_(?:put|range|txn|delete)_total|grpc_server_started_total|grpc_server_msg_received_total|etcd_disk_wal_fsync_duration_seconds_(?:sum|count)|etcd_disk_backend_commit_duration_seconds_(?:sum|count)|etcd_server_proposals_applied_total)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

export function diff(a: Metrics, b: Metrics): Metrics {
  const out: Metrics = new Map();
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) !== 0) out.set(k, v - (a.get(k) ?? 0));
  return out;
}

/** Unary gRPC requests by method ("Range", "Txn", ...). */
export function unaryByMethod(d: Metrics): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of d) {
    const m = /^grpc_server_started_total\{.*grpc_method="(\w+)".*grpc_type="unary"/.exec(k);
    if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + v);
  }
  return out;
}

/**
 * What etcd's disk and raft did over a window: WAL syncs and their mean
 * time, backend commits, raft entries applied. On a shared VM disk the
 * fsync time is what bounds every write (each commit waits for one).
 */
export function diskText(d: Metrics): string {
  const n = d.get('etcd_disk_wal_fsync_duration_seconds_count') ?? 0;
  const s = d.get('etcd_disk_wal_fsync_duration_seconds_sum') ?? 0;
  const bn = d.get('etcd_disk_backend_commit_duration_seconds_count') ?? 0;
  const bs = d.get('etcd_disk_backend_commit_duration_seconds_sum') ?? 0;
  const mean = (sec: number, k: number) => (k > 0 ? ((sec / k) * 1000).toFixed(1) : '-');
  return `${n} WAL fsyncs (mean ${mean(s, n)} ms), ${bn} backend commits (mean ${mean(bs, bn)} ms), ${d.get('etcd_server_proposals_applied_total') ?? 0} raft entries applied`;
}

export const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

/** `Txn 40, Range 12, ...`, most first. */
export const byMethodText = (m: Map<string, number>): string => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
