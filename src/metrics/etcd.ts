/**
 * etcd request latency and errors, measured where every request of the
 * process passes: a gRPC client interceptor on the etcd3 client's unary
 * calls (connect(opts, { interceptors })). Streams (watches, lease
 * keepalives) are long-lived and not timed. Calls etcd3's circuit breaker
 * refuses before they reach gRPC are not seen here.
 */
import { createRequire } from 'node:module';
import type * as GrpcPackage from '@grpc/grpc-js';
import type { Interceptor } from '@grpc/grpc-js';

// CommonJS: required, not imported (see registry/libraries.ts for why)
const { InterceptingCall, status } = createRequire(import.meta.url)('@grpc/grpc-js') as typeof GrpcPackage;

export interface EtcdCallObserver {
  /** one finished unary call: its method (e.g. KV/Range), seconds, and the status code name unless OK */
  (method: string, seconds: number, errorCode: string | undefined): void;
}

/** Pure: '/etcdserverpb.KV/Range' -> 'KV/Range'. */
export function methodLabel(path: string): string {
  const m = /^\/(?:[\w]+\.)*(\w+)\/(\w+)$/.exec(path);
  return m ? `${m[1]}/${m[2]}` : path;
}

/** Pure: a gRPC status code as its name ('UNAVAILABLE'); unknown numbers as themselves. */
export function codeName(code: number): string {
  return (status as unknown as Record<number, string | undefined>)[code] ?? String(code);
}

export function etcdCallInterceptor(observe: EtcdCallObserver): Interceptor {
  return (options, nextCall) => {
    const def = options.method_definition;
    if (def.requestStream || def.responseStream) return new InterceptingCall(nextCall(options));
    const method = methodLabel(def.path);
    const t0 = performance.now();
    return new InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        next(metadata, {
          onReceiveStatus(s, forward) {
            observe(method, (performance.now() - t0) / 1000, s.code === status.OK ? undefined : codeName(s.code));
            forward(s);
          },
        });
      },
    });
  };
}
