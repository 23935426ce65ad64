/**
 * A TCP forwarder on loopback, to cut a client off from a real server (etcd)
 * and let it back: cut() drops every connection and refuses new ones until
 * restore(). How the tests simulate a network fault without touching etcd.
 * It counts the bytes clients sent (`sent`); with a `budget` it forwards
 * only that many of them and silently drops the rest, so a client stalls
 * part-way through its requests at a byte count the test chose.
 * blackhole() makes it a peer that froze: connections stay open and
 * nothing passes either way (no reset, no FIN), like a SIGSTOPped member.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { freePort } from './etcd.js';

export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  /** bytes clients sent (forwarded or, beyond the budget, dropped) */
  sent = 0;
  private frozen = false;

  private constructor(
    readonly port: number,
    private readonly target: number,
    private readonly budget: number,
  ) {}

  /** Starts forwarding 127.0.0.1:<free port> to 127.0.0.1:target. */
  static async start(target: number, port?: number, opts: { budget?: number } = {}): Promise<TcpProxy> {
    const p = new TcpProxy(port ?? (await freePort()), target, opts.budget ?? Infinity);
    await p.restore();
    return p;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async restore(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = tcpConnect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.on('data', (chunk: Buffer) => {
        const room = Math.max(0, this.budget - this.sent);
        this.sent += chunk.length;
        if (room > 0 && !this.frozen) upstream.write(chunk.length > room ? chunk.subarray(0, room) : chunk);
      });
      client.on('end', () => upstream.end());
      upstream.on('data', (chunk: Buffer) => {
        if (!this.frozen) client.write(chunk);
      });
      upstream.on('end', () => client.end());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** From now on nothing passes on any connection, old or new, and nothing is closed. */
  blackhole(): void {
    this.frozen = true;
  }

  /** Ends a blackhole: the connections it swallowed bytes of are closed (their streams are broken), new ones flow. */
  flow(): void {
    this.frozen = false;
    for (const s of this.sockets) s.destroy();
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }
}
