// Model lookups: in-process cache -> Redis -> PostgreSQL, with coalesced misses, a negative
// cache, LISTEN-driven invalidation and last-known-good answers while PostgreSQL is down.
import type Redis from "ioredis";
import type { Pool } from "pg";
import { cacheTtlSeconds, decodeEntry, encodeEntry, registryKey } from "./registry/cache";
import { getEntry, listEntries } from "./registry/queries";
import type { Environment, RegistryEntry } from "./registry/types";
import { RouterError } from "./errors";
import type { Logger } from "./logger";
import type { LookupSource, RouterMetrics } from "./metrics";

/** An answer for one model name; `entry` undefined means the registry does not know it. */
export interface Resolution {
  entry: RegistryEntry | undefined;
  source: LookupSource;
}

interface Cached {
  entry: RegistryEntry | undefined;
  freshUntil: number;
}

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
}

/** Pause before a failed full load of the registry is tried again. */
const RESYNC_RETRY_MS = 250;

/** Seconds a client should wait when nothing can be answered (the Retry-After header). */
export const REGISTRY_RETRY_AFTER_SECONDS = 5;

export class ModelResolver {
  private readonly memory = new Map<string, Cached>();
  /** Last entry read from Redis or PostgreSQL per model: the answer while PostgreSQL is down. */
  private readonly lastKnown = new Map<string, RegistryEntry>();
  private readonly inflight = new Map<string, Promise<Resolution>>();
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
    return this.postgresDown ? this.lastKnown.size > 0 : this.synced;
  }

  /** Looks a model up; throws RouterError 503 when the registry is unreachable and nothing is known. */
  resolve(model: string): Promise<Resolution> | Resolution {
    const cached = this.memory.get(model);
    if (cached && cached.freshUntil > Date.now()) {
      const source: LookupSource = cached.entry ? "memory" : "negative";
      this.o.metrics.lookups.inc({ source });
      return { entry: cached.entry, source };
    }
    let pending = this.inflight.get(model);
    if (!pending) {
      pending = this.fetch(model).finally(() => this.inflight.delete(model));
      this.inflight.set(model, pending);
    }
    return pending;
  }

  /** A registry change for `model` (NOTIFY): forget it everywhere and reload it from PostgreSQL. */
  invalidate(model: string): void {
    this.epoch++;
    this.memory.delete(model);
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
      this.memory.clear();
      this.lastKnown.clear();
      const freshUntil = Date.now() + this.memoryTtlMs;
      for (const e of entries) {
        this.memory.set(e.modelName, { entry: e, freshUntil });
        this.lastKnown.set(e.modelName, e);
        // Redis may hold what a change we did not hear made stale: overwrite it with the truth.
        this.writeRedis(e, epoch);
      }
      this.synced = true;
      this.o.logger.info({ models: entries.length }, "registry resynced");
    } catch (err) {
      this.postgresFailed(err);
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
    this.memory.clear();
  }

  /** Every entry of this environment, from PostgreSQL or (degraded) last known good. */
  async listAll(): Promise<{ entries: RegistryEntry[]; degraded: boolean }> {
    if (Date.now() >= this.postgresDownUntil) {
      try {
        const entries = await listEntries(this.o.pool, { environment: this.o.environment });
        this.postgresUp();
        return { entries, degraded: false };
      } catch (err) {
        this.postgresFailed(err);
      }
    }
    if (!this.lastKnown.size) throw registryUnavailable();
    return { entries: [...this.lastKnown.values()], degraded: true };
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
      this.remember(model, fromRedis, epoch);
      this.o.metrics.lookups.inc({ source: "redis" });
      return { entry: fromRedis, source: "redis" };
    }
    if (Date.now() >= this.postgresDownUntil) {
      try {
        const entry = await getEntry(this.o.pool, this.o.environment, model);
        this.postgresUp();
        this.remember(model, entry, epoch);
        if (entry) this.writeRedis(entry, epoch);
        this.o.metrics.lookups.inc({ source: entry ? "postgres" : "negative" });
        return { entry, source: entry ? "postgres" : "negative" };
      } catch (err) {
        this.postgresFailed(err);
      }
    }
    const stale = this.lastKnown.get(model);
    if (!stale) throw registryUnavailable();
    this.o.metrics.lookups.inc({ source: "stale" });
    return { entry: stale, source: "stale" };
  }

  private reloadFromPostgres(model: string): void {
    const epoch = this.epoch;
    getEntry(this.o.pool, this.o.environment, model).then(
      (entry) => {
        this.postgresUp();
        this.remember(model, entry, epoch);
      },
      (err) => {
        // Unconfirmed after a change: forget it rather than risk serving a disabled model.
        this.lastKnown.delete(model);
        this.postgresFailed(err);
      },
    );
  }

  private remember(model: string, entry: RegistryEntry | undefined, epoch: number): void {
    if (epoch !== this.epoch) return;
    const ttl = entry
      ? this.listening
        ? this.memoryTtlMs
        : this.unlistenedTtlMs
      : this.negativeTtlMs;
    this.memory.set(model, { entry, freshUntil: Date.now() + ttl });
    if (entry) this.lastKnown.set(model, entry);
    else this.lastKnown.delete(model);
  }

  private async readRedis(model: string): Promise<RegistryEntry | undefined> {
    const redis = this.o.redis;
    if (!redis || redis.status !== "ready") return undefined;
    try {
      const entry = decodeEntry(await redis.get(registryKey(this.o.environment, model)));
      return entry && entry.environment === this.o.environment ? entry : undefined;
    } catch {
      this.redisFailed();
      return undefined;
    }
  }

  private writeRedis(entry: RegistryEntry, epoch: number): void {
    const redis = this.o.redis;
    if (!redis || redis.status !== "ready" || epoch !== this.epoch) return;
    redis
      .set(
        registryKey(this.o.environment, entry.modelName),
        encodeEntry(entry),
        "EX",
        cacheTtlSeconds(),
      )
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

function registryUnavailable(): RouterError {
  return new RouterError(
    503,
    "registry_unavailable",
    "The model registry is unreachable and this router has no cached entry for the model; retry shortly",
    "server_error",
    { "retry-after": String(REGISTRY_RETRY_AFTER_SECONDS) },
  );
}
