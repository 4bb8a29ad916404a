// The Redis side of the registry: key naming, value encoding, TTL and invalidation.
// The router writes entries on read-through; every registry writer deletes the key (and the
// trigger's NOTIFY tells routers to drop their in-process copies).
import type Redis from "ioredis";
import { connectRedis } from "./connect";
import { RegistryEntry, entryInputProblems, registryKey } from "./types";

/** Base TTL of a cached entry (2 minutes, the TTL other readers of these keys expect). */
export const CACHE_TTL_SECONDS = 120;

/** Share of the TTL the jitter adds or takes away. */
const TTL_JITTER = 0.1;

/** The longest TTL a registry writer sets; a longer (or no) TTL was not set by one. */
export const CACHE_TTL_MAX_SECONDS = Math.round(CACHE_TTL_SECONDS * (1 + TTL_JITTER));

/** TTL with ±10% jitter so entries cached together do not all expire together. */
export function cacheTtlSeconds(random: () => number = Math.random): number {
  return Math.round(CACHE_TTL_SECONDS * (1 - TTL_JITTER + 2 * TTL_JITTER * random()));
}

/** Largest cached value the router reads or writes; a longer value is not a registry entry. */
export const MAX_CACHED_VALUE_BYTES = 64 * 1024;

export function encodeEntry(entry: RegistryEntry): string {
  return JSON.stringify(entry);
}

/** The key a cached value was read from. */
export interface CacheKey {
  environment: string;
  model: string;
}

/**
 * Why a cached value is not a registry entry for `key` (empty when it is one). Redis is a cache,
 * not an authority: a value is held to the rules of a registry write (name, environment, endpoint,
 * status, fallbacks) and must name the model and environment of the key it was read from.
 */
export function cachedEntryProblems(value: unknown, key?: CacheKey): string[] {
  if (!value || typeof value !== "object" || Array.isArray(value))
    return ["the value is not a JSON object"];
  const e = value as Partial<RegistryEntry>;
  const problems = entryInputProblems(e);
  if (e.status === undefined) problems.push("status is required");
  if (!Array.isArray(e.fallbacks)) problems.push("fallbacks is not a list");
  if (!Number.isInteger(e.id)) problems.push("id is not an integer");
  // The entry rules check a served name when there is one; a row always has one.
  if (e.servedModelName === undefined) problems.push("servedModelName is required");
  for (const field of ["createdAt", "updatedAt"] as const)
    if (typeof e[field] !== "string" || e[field] === "") problems.push(`${field} is required`);
  if (!e.metadata || typeof e.metadata !== "object") problems.push("metadata is not an object");
  if (key && e.modelName !== key.model)
    problems.push(`modelName '${String(e.modelName)}' is not the key's model '${key.model}'`);
  if (key && e.environment !== key.environment)
    problems.push(
      `environment '${String(e.environment)}' is not the key's environment '${key.environment}'`,
    );
  return problems;
}

/**
 * Parses a cached value; anything that is not a valid entry (for `key`, when given) is a miss
 * (undefined).
 */
export function decodeEntry(
  text: string | null | undefined,
  key?: CacheKey,
): RegistryEntry | undefined {
  const decoded = parseCachedEntry(text, key);
  return "entry" in decoded ? decoded.entry : undefined;
}

/** A cached value checked against the registry's rules: the entry, or why it is not one. */
export function parseCachedEntry(
  text: string | null | undefined,
  key?: CacheKey,
): { entry: RegistryEntry } | { problems: string[] } {
  if (!text) return { problems: ["no value"] };
  if (text.length > MAX_CACHED_VALUE_BYTES)
    return { problems: [`the value is longer than ${MAX_CACHED_VALUE_BYTES} bytes`] };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problems: ["the value is not JSON"] };
  }
  const problems = cachedEntryProblems(value, key);
  return problems.length ? { problems } : { entry: value as RegistryEntry };
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
