// Model lookups: in-process cache -> Redis -> PostgreSQL, with coalesced misses, a negative
// cache, LISTEN-driven invalidation and last-known-good answers while PostgreSQL is down.
// Every cache is bounded (entries and bytes), Redis values are untrusted (checked by the
// registry's rules, never able to re-enable a model PostgreSQL disabled), and only a failure to
// reach PostgreSQL counts as the registry being unavailable. The lookup in the platform's data
// flow: docs/architecture.md.
import type Redis from "ioredis";
import type { Pool } from "pg";
import { BoundedMap } from "./boundedMap";
import {
  CACHE_TTL_MAX_SECONDS,
  MAX_CACHED_VALUE_BYTES,
  cacheTtlSeconds,
  encodeEntry,
  parseCachedEntry,
  registryKey,
  isConnectionFailure,
  getEntry,
  listEntries,
  modelNameProblems,
  type Environment,
  type RegistryEntry,
} from "@vllm-fleet/registry";
import { RouterError, errors } from "./errors";
import type { Logger } from "./logger";
import type { LookupSource, RouterMetrics } from "./metrics";

/** An answer for one model name; `entry` undefined means the registry does not know it. */
export interface Resolution {
  entry: RegistryEntry | undefined;
  source: LookupSource;
}

interface Known {
  entry: RegistryEntry;
  freshUntil: number;
}

/** Why a Redis value may not enable a model: PostgreSQL disabled it, or a change is unconfirmed. */
type Distrust = "disabled" | "changed";

/** Why a Redis value was ignored (the `reason` label of router_registry_cache_rejected_total). */
export type CacheRejection = "invalid" | "no_ttl" | "overrides_disable";

export interface ResolverOptions {
  pool: Pool;
  redis?: Redis;
  environment: Environment;
  metrics: RouterMetrics;
  logger: Logger;
  /** How long an entry stays fresh in memory while LISTEN is connected (changes arrive by NOTIFY). */
  memoryTtlMs?: number;
  /** How long an entry stays fresh in memory while LISTEN is down (nothing tells us of changes). */
  unlistenedTtlMs?: number;
  /** How long an unknown model name is remembered. */
  negativeTtlMs?: number;
  /** After a failed PostgreSQL query, answer from last known good for this long before retrying. */
  postgresRetryMs?: number;
  /** Most entries each in-process cache (known models, unknown names) holds. */
  cacheMaxEntries?: number;
  /** Most bytes (estimated) each in-process cache holds. */
  cacheMaxBytes?: number;
  /** Most distinct names looked up in Redis/PostgreSQL at once; more get 503 registry_busy. */
  maxPendingLookups?: number;
}

/** Pause before a failed full load of the registry is tried again. */
const RESYNC_RETRY_MS = 250;

/** Seconds a client should wait when nothing can be answered (the Retry-After header). */
export const REGISTRY_RETRY_AFTER_SECONDS = 5;

/** Estimated heap bytes of a cache slot beyond its key and value (Map slot, object headers). */
const SLOT_OVERHEAD_BYTES = 128;

export class ModelResolver {
  /**
   * Entries read from Redis or PostgreSQL: fresh ones answer at once, and all of them are the
   * last known good answers while PostgreSQL is down.
   */
  private readonly known: BoundedMap<string, Known>;
  /** Names PostgreSQL does not know, until `freshUntil`. */
  private readonly negative: BoundedMap<string, { freshUntil: number }>;
  /** Names a Redis value may not enable (PostgreSQL's word outranks the cache). */
  private readonly distrusted: BoundedMap<string, Distrust>;
  private readonly inflight = new Map<string, Promise<Resolution>>();
  private readonly maxPendingLookups: number;
  private warnedUntrusted = false;
  /** Bumped by every invalidation, so reads that started before it never repopulate caches. */
  private epoch = 0;
  private postgresDownUntil = 0;
  private postgresDown = false;
  private listening = false;
  /** A full load (resync) has completed at least once. */
  private synced = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly memoryTtlMs: number;
  private readonly unlistenedTtlMs: number;
  private readonly negativeTtlMs: number;
  private readonly postgresRetryMs: number;

  constructor(private readonly o: ResolverOptions) {
    this.memoryTtlMs = o.memoryTtlMs ?? 60_000;
    // Well under a second, so a disable reaches a router that cannot LISTEN within 1 s.
    this.unlistenedTtlMs = Math.min(o.unlistenedTtlMs ?? 500, this.memoryTtlMs);
    this.negativeTtlMs = o.negativeTtlMs ?? 5_000;
    this.postgresRetryMs = o.postgresRetryMs ?? 1_000;
    this.maxPendingLookups = o.maxPendingLookups ?? 256;
    const maxEntries = o.cacheMaxEntries ?? 10_000;
    const maxBytes = o.cacheMaxBytes ?? 32 * 1024 * 1024;
    const nameBytes = (name: string) => SLOT_OVERHEAD_BYTES + 2 * name.length;
    this.known = new BoundedMap(
      maxEntries,
      maxBytes,
      (name, k) => nameBytes(name) + 2 * encodeEntry(k.entry).length,
    );
    this.negative = new BoundedMap(maxEntries, maxBytes, nameBytes);
    this.distrusted = new BoundedMap(maxEntries, maxBytes, nameBytes);
  }

  /** Entries held by the in-process caches (known models, unknown names, distrusted names). */
  get cacheSize(): { entries: number; bytes: number } {
    const maps = [this.known, this.negative, this.distrusted];
    return {
      entries: maps.reduce((n, m) => n + m.size, 0),
      bytes: maps.reduce((n, m) => n + m.bytes, 0),
    };
  }

  /** True while PostgreSQL is unreachable and answers may be stale. */
  get degraded(): boolean {
    return this.postgresDown;
  }

  /**
   * Readiness: the cache is warm (a full load finished and PostgreSQL answers), or PostgreSQL
   * is down but there are last known good entries to answer from.
   */
  get ready(): boolean {
    return this.postgresDown ? this.known.size > 0 : this.synced;
  }

  /**
   * Looks a model up; throws RouterError 503 when the registry is unreachable and nothing is
   * known. A name the registry's rules reject cannot be a model: it is unknown without a lookup.
   */
  resolve(model: string): Promise<Resolution> | Resolution {
    if (modelNameProblems(model).length) {
      this.o.metrics.lookups.inc({ source: "negative" });
      return { entry: undefined, source: "negative" };
    }
    const now = Date.now();
    const known = this.known.get(model);
    if (known && known.freshUntil > now) {
      this.o.metrics.lookups.inc({ source: "memory" });
      return { entry: known.entry, source: "memory" };
    }
    if ((this.negative.get(model)?.freshUntil ?? 0) > now) {
      this.o.metrics.lookups.inc({ source: "negative" });
      return { entry: undefined, source: "negative" };
    }
    let pending = this.inflight.get(model);
    if (!pending) {
      if (this.inflight.size >= this.maxPendingLookups) throw registryBusy();
      pending = this.fetch(model).finally(() => this.inflight.delete(model));
      this.inflight.set(model, pending);
    }
    return pending;
  }

  /** A registry change for `model` (NOTIFY): forget it everywhere and reload it from PostgreSQL. */
  invalidate(model: string): void {
    this.epoch++;
    const known = this.known.get(model);
    if (known) known.freshUntil = 0;
    this.negative.delete(model);
    // Until PostgreSQL says what changed, a cached value may be the one before a disable.
    if (this.distrusted.get(model) !== "disabled") this.distrusted.set(model, "changed");
    const redis = this.o.redis;
    if (redis && redis.status === "ready") {
      // Writers DEL too; this closes the race with our own read-through of a pre-change row.
      redis.del(registryKey(this.o.environment, model)).catch(() => this.redisFailed());
    }
    this.reloadFromPostgres(model);
  }

  /** Called when LISTEN (re)connects: notifications may have been missed, so reload everything. */
  async resync(): Promise<void> {
    clearTimeout(this.resyncTimer);
    if (this.closed) return;
    this.listening = true;
    const epoch = ++this.epoch;
    try {
      const entries = await listEntries(this.o.pool, { environment: this.o.environment });
      this.postgresUp();
      // A change arrived meanwhile: this list may predate it, so load again.
      if (epoch !== this.epoch) return this.retryResync();
      this.known.clear();
      this.negative.clear();
      this.distrusted.clear();
      const freshUntil = Date.now() + this.memoryTtlMs;
      for (const e of entries) {
        this.known.set(e.modelName, { entry: e, freshUntil });
        if (e.status !== "ready") this.distrusted.set(e.modelName, "disabled");
        // Redis may hold what a change we did not hear made stale: overwrite it with the truth.
        this.writeRedis(e, epoch);
      }
      this.synced = true;
      this.o.logger.info({ models: entries.length }, "registry resynced");
    } catch (err) {
      this.postgresError(err);
      this.retryResync();
    }
  }

  /** Stops background reloads (shutdown). */
  close(): void {
    this.closed = true;
    clearTimeout(this.resyncTimer);
  }

  /** A failed or superseded full load is retried while LISTEN is up (a reconnect resyncs anyway). */
  private retryResync(): void {
    if (!this.listening || this.closed) return;
    this.resyncTimer = setTimeout(() => void this.resync(), RESYNC_RETRY_MS);
  }

  /**
   * LISTEN lost its connection, possibly after a silence in which changes went unheard: nothing
   * cached is trusted, and until it is back lookups skip Redis and are kept only briefly.
   */
  listenerLost(): void {
    this.listening = false;
    clearTimeout(this.resyncTimer);
    this.epoch++;
    // Nothing is fresh any more; the entries stay as last known good answers.
    for (const k of this.known.values()) k.freshUntil = 0;
    this.negative.clear();
  }

  /** Every entry of this environment, from PostgreSQL or (degraded) last known good. */
  async listAll(): Promise<{ entries: RegistryEntry[]; degraded: boolean }> {
    if (Date.now() >= this.postgresDownUntil) {
      try {
        const entries = await listEntries(this.o.pool, { environment: this.o.environment });
        this.postgresUp();
        return { entries, degraded: false };
      } catch (err) {
        if (!this.postgresError(err)) throw errors.registry_error(); // the database refused the query: not an outage
      }
    }
    if (!this.known.size) throw registryUnavailable();
    return { entries: [...this.known.values()].map((k) => k.entry), degraded: true };
  }

  /** Ready entries of this environment, from PostgreSQL or (degraded) last known good. */
  async listReady(): Promise<{ entries: RegistryEntry[]; degraded: boolean }> {
    const { entries, degraded } = await this.listAll();
    return { entries: entries.filter((e) => e.status === "ready"), degraded };
  }

  private async fetch(model: string): Promise<Resolution> {
    const epoch = this.epoch;
    // Only a listening router hears the changes that make Redis values stale.
    const fromRedis = this.listening ? await this.readRedis(model) : undefined;
    if (fromRedis) {
      this.remember(model, fromRedis, epoch, false);
      this.o.metrics.lookups.inc({ source: "redis" });
      return { entry: fromRedis, source: "redis" };
    }
    if (Date.now() >= this.postgresDownUntil) {
      try {
        const entry = await getEntry(this.o.pool, this.o.environment, model);
        this.postgresUp();
        this.remember(model, entry, epoch, true);
        if (entry) this.writeRedis(entry, epoch);
        this.o.metrics.lookups.inc({ source: entry ? "postgres" : "negative" });
        return { entry, source: entry ? "postgres" : "negative" };
      } catch (err) {
        if (!this.postgresError(err)) throw errors.registry_error(); // the database refused the query: not an outage
      }
    }
    const stale = this.known.get(model)?.entry;
    if (!stale) throw registryUnavailable();
    this.o.metrics.lookups.inc({ source: "stale" });
    return { entry: stale, source: "stale" };
  }

  private reloadFromPostgres(model: string): void {
    const epoch = this.epoch;
    getEntry(this.o.pool, this.o.environment, model).then(
      (entry) => {
        this.postgresUp();
        this.remember(model, entry, epoch, true);
      },
      (err) => {
        // Unconfirmed after a change: forget it rather than risk serving a disabled model.
        this.known.delete(model);
        this.postgresError(err);
      },
    );
  }

  /** Caches an answer; one from PostgreSQL also sets whether Redis may enable the model. */
  private remember(
    model: string,
    entry: RegistryEntry | undefined,
    epoch: number,
    fromPostgres: boolean,
  ): void {
    if (epoch !== this.epoch) return;
    if (fromPostgres) {
      if (entry && entry.status !== "ready") this.distrusted.set(model, "disabled");
      else this.distrusted.delete(model);
    }
    if (!entry) {
      this.known.delete(model);
      this.negative.set(model, { freshUntil: Date.now() + this.negativeTtlMs });
      return;
    }
    this.negative.delete(model);
    const ttl = this.listening ? this.memoryTtlMs : this.unlistenedTtlMs;
    this.known.set(model, { entry, freshUntil: Date.now() + ttl });
  }

  /**
   * The model's Redis value if it is one the registry could have written: valid by the
   * registry's rules for this key, with the cache's TTL, and not enabling a model PostgreSQL
   * disabled. Anything else is ignored, counted and deleted (the next read-through rewrites it).
   */
  private async readRedis(model: string): Promise<RegistryEntry | undefined> {
    const redis = this.o.redis;
    if (!redis || redis.status !== "ready") return undefined;
    const key = registryKey(this.o.environment, model);
    let text: string;
    let ttlMs: number;
    try {
      // GETRANGE bounds what a planted value can make the router read; one past the limit
      // shows that the value is longer than any entry.
      const replies = await redis
        .pipeline()
        .getrange(key, 0, MAX_CACHED_VALUE_BYTES)
        .pttl(key)
        .exec();
      const [[rangeErr, value], [ttlErr, ttl]] = replies as [Error | null, unknown][];
      if (rangeErr || ttlErr) throw rangeErr ?? ttlErr;
      text = String(value);
      ttlMs = Number(ttl);
    } catch {
      this.redisFailed();
      return undefined;
    }
    if (!text) return undefined; // GETRANGE of a missing key is ""
    const parsed = parseCachedEntry(text, { environment: this.o.environment, model });
    if ("problems" in parsed) return this.untrusted(key, "invalid", parsed.problems);
    if (ttlMs < 0 || ttlMs > CACHE_TTL_MAX_SECONDS * 1000)
      return this.untrusted(key, "no_ttl", [
        `its TTL is ${ttlMs < 0 ? "unset" : `${ttlMs} ms`}; the registry writes at most ${CACHE_TTL_MAX_SECONDS} s`,
      ]);
    const distrust = this.distrusted.get(model);
    if (parsed.entry.status === "ready" && distrust) {
      if (distrust === "changed") return undefined; // PostgreSQL is being asked right now
      return this.untrusted(key, "overrides_disable", [
        "it says ready, but the registry database disabled the model",
      ]);
    }
    return parsed.entry;
  }

  private untrusted(key: string, reason: CacheRejection, problems: string[]): undefined {
    this.o.metrics.cacheRejected.inc({ reason });
    if (!this.warnedUntrusted) {
      this.warnedUntrusted = true;
      this.o.logger.warn(
        { key, reason, problems: problems.slice(0, 3).map((p) => p.slice(0, 200)) },
        "ignored a registry cache value the registry could not have written; further ones are only counted in router_registry_cache_rejected_total",
      );
    }
    this.o.redis?.del(key).catch(() => this.redisFailed());
    return undefined;
  }

  /** Read-through write: always with the cache's TTL, and never a value too long to read back. */
  private writeRedis(entry: RegistryEntry, epoch: number): void {
    const redis = this.o.redis;
    if (!redis || redis.status !== "ready" || epoch !== this.epoch) return;
    const value = encodeEntry(entry);
    if (Buffer.byteLength(value) > MAX_CACHED_VALUE_BYTES) return;
    redis
      .set(registryKey(this.o.environment, entry.modelName), value, "EX", cacheTtlSeconds())
      .catch(() => this.redisFailed());
  }

  private redisFailed(): void {
    this.o.metrics.registryErrors.inc({ backend: "redis" });
  }

  private postgresUp(): void {
    if (this.postgresDown) this.o.logger.info("registry database reachable again");
    this.postgresDown = false;
    this.postgresDownUntil = 0;
    this.o.metrics.degraded.set(0);
  }

  /**
   * Accounts for a failed PostgreSQL query. Returns true when the server could not be reached
   * (degraded mode); an error about the query itself is logged and counted but leaves readiness
   * and degraded mode alone.
   */
  private postgresError(err: unknown): boolean {
    if (isConnectionFailure(err)) {
      this.postgresFailed(err);
      return true;
    }
    this.o.metrics.registryErrors.inc({ backend: "postgres" });
    this.o.logger.error(
      { err: (err as Error).message, code: (err as { code?: string }).code },
      "registry query failed",
    );
    return false;
  }

  private postgresFailed(err: unknown): void {
    this.o.metrics.registryErrors.inc({ backend: "postgres" });
    if (!this.postgresDown) {
      this.o.logger.warn(
        { err: (err as Error).message },
        "registry database unreachable; serving last known good",
      );
    }
    this.postgresDown = true;
    this.postgresDownUntil = Date.now() + this.postgresRetryMs;
    this.o.metrics.degraded.set(1);
  }
}

/** Too many distinct names are being looked up at once (coalescing map full). */
function registryBusy(): RouterError {
  return errors.registry_busy().with({ headers: { "retry-after": "1" } });
}

function registryUnavailable(): RouterError {
  return errors
    .registry_unavailable()
    .with({ headers: { "retry-after": String(REGISTRY_RETRY_AFTER_SECONDS) } });
}
