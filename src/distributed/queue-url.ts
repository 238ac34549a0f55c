/**
 * Where the queue is: `redis://[user:password@]host[:port][/db]`,
 * `rediss://…` (TLS), `unix:///path/to.sock[?db=N]` (or
 * `redis+unix://`), from `--queue` or else SPAWNPOOL_QUEUE, so that a
 * password can stay out of `ps`. Passwords are never printed: every
 * message shows the URL as redact() writes it.
 */

/** What ioredis is given. */
export interface QueueConnection {
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly username?: string;
  readonly password?: string;
  readonly db: number;
  readonly tls?: { readonly servername: string };
  /** The URL as it may be shown. */
  readonly shown: string;
}

export class QueueUrlError extends Error {
  readonly code = 'EINVAL';
}

const DEFAULT_PORT = 6379;

/** The URL with its password replaced by `***` (also in text that is not a URL, such as `user:pass@host`). */
export function redact(url: string): string {
  const scheme = url.indexOf('://');
  const start = scheme < 0 ? 0 : scheme + 3;
  const end = url.slice(start).search(/[/?#]/);
  const authority = end < 0 ? url.slice(start) : url.slice(start, start + end);
  const at = authority.lastIndexOf('@');
  if (at < 0) return url;
  const auth = authority.slice(0, at);
  const colon = auth.indexOf(':');
  const hidden = colon < 0 ? '***' : `${auth.slice(0, colon)}:***`;
  return url.slice(0, start) + hidden + url.slice(start + at);
}

function database(text: string | null, shown: string): number {
  if (text === null || text === '') return 0;
  if (!/^\d{1,5}$/.test(text)) throw new QueueUrlError(`${shown}: the database must be a number, not ${JSON.stringify(text)}`);
  return Number(text);
}

/** The queue's connection, from `--queue` or SPAWNPOOL_QUEUE; throws QueueUrlError naming what is wrong. */
export function parseQueueUrl(given: string | undefined, env: NodeJS.ProcessEnv = process.env): QueueConnection {
  const text = given ?? env.SPAWNPOOL_QUEUE;
  if (text === undefined || text === '') throw new QueueUrlError('no queue: give --queue URL or set SPAWNPOOL_QUEUE');
  const shown = redact(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new QueueUrlError(`${shown}: not a URL (redis://host:6379/0, rediss://…, unix:///path.sock)`);
  }
  const username = url.username === '' ? undefined : decodeURIComponent(url.username);
  const password = url.password === '' ? undefined : decodeURIComponent(url.password);
  const auth = { ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) };
  switch (url.protocol) {
    case 'redis:':
    case 'rediss:': {
      if (url.hostname === '') throw new QueueUrlError(`${shown}: no host`);
      const port = url.port === '' ? DEFAULT_PORT : Number(url.port);
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      const db = database(url.pathname.replace(/^\//, ''), shown);
      const tls = url.protocol === 'rediss:' ? { tls: { servername: host } } : {};
      return { host, port, db, ...auth, ...tls, shown };
    }
    case 'unix:':
    case 'redis+unix:': {
      const path = decodeURIComponent(url.pathname);
      if (path === '' || path === '/') throw new QueueUrlError(`${shown}: no socket path`);
      return { path, db: database(url.searchParams.get('db'), shown), ...auth, shown };
    }
    default:
      throw new QueueUrlError(`${shown}: unknown scheme ${url.protocol} (redis:, rediss:, unix:)`);
  }
}
