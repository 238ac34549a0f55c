import type { Redis, RedisOptions } from 'ioredis';
import type { QueueConnection } from './queue-url.js';

/** The queue cannot be used: Redis unreachable or set up so that jobs could be lost. */
export class QueueError extends Error {
  constructor(readonly code: 'EQUEUE' | 'ECONNREFUSED' | (string & {}), message: string) {
    super(message);
  }
}

/**
 * A client for the queue. `blocking`: for BullMQ's workers, whose blocking
 * reads must wait through an outage (maxRetriesPerRequest null, as BullMQ
 * demands); the others fail fast instead of queueing commands while Redis
 * is down. ioredis is loaded here, on first use.
 */
export async function connect(conn: QueueConnection, { blocking = false }: { blocking?: boolean } = {}): Promise<Redis> {
  const { Redis: Client } = await import('ioredis');
  const where = conn.path !== undefined ? { path: conn.path } : { host: conn.host!, port: conn.port! };
  const options: RedisOptions = {
    ...where,
    db: conn.db,
    ...(conn.username !== undefined ? { username: conn.username } : {}),
    ...(conn.password !== undefined ? { password: conn.password } : {}),
    ...(conn.tls !== undefined ? { tls: { servername: conn.tls.servername } } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: blocking ? null : 1,
    enableOfflineQueue: blocking,
  };
  const client = new Client(options);
  // An unhandled 'error' event would end the process; the first connect's
  // is the cause connect() itself only calls "Connection is closed".
  let cause: Error | undefined;
  client.on('error', (err: Error) => (cause ??= err));
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    const why = (cause ?? err) as NodeJS.ErrnoException;
    throw new QueueError(why.code ?? 'EQUEUE', `cannot reach the queue at ${conn.shown}: ${why.message}`);
  }
  return client;
}

/**
 * A Redis that evicts keys under memory pressure drops queued jobs, locks
 * and results without a word; BullMQ only warns. Read from INFO, which
 * managed services leave enabled when they rename CONFIG.
 */
export async function requireNoEviction(client: Redis, shown: string): Promise<void> {
  const info = await client.info('memory');
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy === undefined) throw new QueueError('EQUEUE', `the queue at ${shown} does not report its maxmemory-policy`);
  if (policy !== 'noeviction') {
    throw new QueueError('EQUEUE', `the queue at ${shown} has maxmemory-policy ${policy}: it may evict jobs; ` +
      'spawnpool needs noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)');
  }
}
