/**
 * A TCP forwarder on loopback, to cut a client off from a real server (etcd)
 * and let it back: cut() drops every connection and refuses new ones until
 * restore(). How the tests simulate a network fault without touching etcd.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { freePort } from './etcd.js';

export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  /** Starts forwarding 127.0.0.1:<free port> to 127.0.0.1:target. */
  static async start(target: number, port?: number): Promise<TcpProxy> {
    const p = new TcpProxy(port ?? (await freePort()), target);
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
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }
}
