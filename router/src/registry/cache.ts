// The Redis side of the registry: key naming, value encoding, TTL and invalidation.
// The router writes entries on read-through; every registry writer deletes the key (and the
// trigger's NOTIFY tells routers to drop their in-process copies).
import type Redis from "ioredis";
import { connectRedis } from "./connect";
import { RegistryEntry, isEnvironment, isStatus, registryKey } from "./types";

export { registryKey };

/** Base TTL of a cached entry (2 minutes, the TTL other readers of these keys expect). */
export const CACHE_TTL_SECONDS = 120;

/** TTL with ±10% jitter so entries cached together do not all expire together. */
export function cacheTtlSeconds(random: () => number = Math.random): number {
  return Math.round(CACHE_TTL_SECONDS * (0.9 + 0.2 * random()));
}

export function encodeEntry(entry: RegistryEntry): string {
  return JSON.stringify(entry);
}

/** Parses a cached value; anything that is not a well-formed entry is a miss (undefined). */
export function decodeEntry(text: string | null | undefined): RegistryEntry | undefined {
  if (!text) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const e = value as Partial<RegistryEntry> | null;
  if (
    !e ||
    typeof e !== "object" ||
    typeof e.modelName !== "string" ||
    typeof e.endpoint !== "string" ||
    !isEnvironment(e.environment) ||
    !isStatus(e.status) ||
    !Array.isArray(e.fallbacks)
  )
    return undefined;
  return e as RegistryEntry;
}

/** What an invalidation did: `failed` carries the reason (Redis down never fails a write). */
export interface InvalidateOutcome {
  key: string;
  result: "deleted" | "absent" | "skipped" | "failed";
  error?: string;
}

/** DEL of one entry's key on an existing client; never throws. */
export async function invalidateEntry(
  redis: Redis,
  environment: string,
  model: string,
): Promise<InvalidateOutcome> {
  const key = registryKey(environment, model);
  try {
    const n = await redis.del(key);
    return { key, result: n > 0 ? "deleted" : "absent" };
  } catch (err) {
    return { key, result: "failed", error: (err as Error).message };
  }
}

/**
 * One-shot invalidation for writers (provider, CLI): connect, DEL, disconnect, all within
 * `timeoutMs`. No URL means no cache to invalidate (`skipped`). Never throws.
 */
export async function invalidateCache(
  redisUrl: string | undefined,
  environment: string,
  model: string,
  timeoutMs = 1000,
): Promise<InvalidateOutcome> {
  const key = registryKey(environment, model);
  if (!redisUrl) return { key, result: "skipped" };
  let redis: Redis | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<InvalidateOutcome>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({ key, result: "failed", error: `Redis did not answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  const attempt = (async (): Promise<InvalidateOutcome> => {
    try {
      redis = await connectRedis(redisUrl, { retryStrategy: () => null });
    } catch (err) {
      return { key, result: "failed", error: (err as Error).message };
    }
    return invalidateEntry(redis, environment, model);
  })();
  try {
    return await Promise.race([attempt, deadline]);
  } finally {
    clearTimeout(timer);
    redis?.disconnect();
  }
}
