import { UsageError } from './usage.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration as GNU parallel writes it, in milliseconds: `500ms`, `30s`,
 * `5m`, `1h`, `2d`, sums such as `1h30m`; a bare number is seconds.
 */
export function parseDuration(name: string, text: string): number {
  const bare = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : undefined;
  if (bare !== undefined) return check(name, text, bare);
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
  let ms = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (m === null) throw new UsageError(`${name} must be a duration such as 500ms, 30s, 5m, 1h or a number of seconds, got ${text}`);
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    at = part.lastIndex;
  }
  return check(name, text, ms);
}

function check(name: string, text: string, ms: number): number {
  if (!(ms > 0) || !Number.isFinite(ms)) throw new UsageError(`${name} must be longer than 0, got ${text}`);
  return ms;
}
