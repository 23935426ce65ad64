/**
 * Builds the driver a service's PresenceConfig names.
 * @throws FleetxError 'usage' when the config lacks what the driver needs.
 */
import type { Etcd3 } from 'etcd3';
import { usageError } from '../../errors/errors.js';
import type { ErrorContext } from '../../registry/errors.js';
import type { PresenceConfig } from '../../service/types.js';
import type { PresenceDriver } from '../types.js';
import { CommandDriver } from './command.js';
import { EtcdDriver } from './etcd.js';
import { HaproxyDriver } from './haproxy.js';
import { WebhookDriver } from './webhook.js';

export interface DriverContext {
  service: string;
  template: string;
  client: Etcd3;
  connection: ErrorContext;
}

/** Returns undefined for driver 'none' (the service is not load-balanced). */
export function createDriver(cfg: PresenceConfig, ctx: DriverContext): PresenceDriver | undefined {
  const need = <T>(v: T | undefined, field: string): T => {
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) {
      throw usageError(`service ${ctx.service}: presence driver ${cfg.driver} needs presence.${field}`);
    }
    return v;
  };
  switch (cfg.driver) {
    case 'none':
      return undefined;
    case 'haproxy':
      return new HaproxyDriver({ template: ctx.template, socket: need(cfg.socket, 'socket'), backend: need(cfg.backend, 'backend') });
    case 'webhook':
      return new WebhookDriver({ service: ctx.service, url: need(cfg.url, 'url'), tokenFile: cfg.tokenFile });
    case 'command':
      return new CommandDriver({ service: ctx.service, argv: need(cfg.command, 'command') });
    case 'etcd':
      return new EtcdDriver({ client: ctx.client, etcdPrefix: need(cfg.etcdPrefix, 'etcdPrefix'), connection: ctx.connection });
    default:
      throw usageError(`service ${ctx.service}: unknown presence driver ${String((cfg as { driver: unknown }).driver)}`);
  }
}
