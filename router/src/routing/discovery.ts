// Which pods serve each registry endpoint: asked of a source (DNS or a static list) on a short
// interval, only for endpoints that requests asked for recently and only for a bounded number
// of them. Requests never wait for it: an endpoint without an answer yet, or whose answer is
// "no pods", is sent to the endpoint itself (the model's Service), as before.
import type { Logger } from "../logger";
import { PodSet } from "./pods";

/** Where pod lists come from. */
export interface PodSource {
  /** Whether this source can list pods for `endpoint`; other endpoints are never tracked. */
  covers(endpoint: string): boolean;
  /** Called once per round, before its `resolve` calls (e.g. to re-read a file). */
  refresh?(): Promise<void>;
  /** The pods' `host:port` addresses; [] when none is ready. Throws when the source failed. */
  resolve(endpoint: string): Promise<string[]>;
  close?(): void;
}

export interface DiscoveryOptions {
  source: PodSource;
  /** How often each tracked endpoint is asked again. */
  intervalMs: number;
  logger: Logger;
}

/** Endpoints tracked at once; beyond, the least recently requested is dropped. */
export const MAX_TRACKED_ENDPOINTS = 64;
/** Pods kept per endpoint (the first by address, so every router keeps the same ones). */
export const MAX_PODS_PER_ENDPOINT = 64;
/** An endpoint no request asked for in this long is no longer tracked. */
export const TRACK_IDLE_MS = 60_000;

interface Tracked {
  set: PodSet;
  resolving: boolean;
  /** The source failed last time (logged once per run of failures). */
  failing: boolean;
}

export class Discovery {
  private readonly tracked = new Map<string, Tracked>();
  private timer?: NodeJS.Timeout;
  private roundRunning = false;

  constructor(private readonly o: DiscoveryOptions) {}

  start(): void {
    this.timer ??= setInterval(() => void this.round(), this.o.intervalMs).unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.o.source.close?.();
  }

  /**
   * The pods of `endpoint` if its source listed some; undefined sends the request to the
   * endpoint itself. Marks the endpoint as requested (the first time, starts tracking it and
   * labels its pods' metrics with `model`).
   */
  pods(endpoint: string, model: string): PodSet | undefined {
    const t = this.tracked.get(endpoint) ?? this.track(endpoint, model);
    if (!t) return undefined;
    t.set.usedAt = Date.now();
    return t.set.pods.length > 0 ? t.set : undefined;
  }

  /** Pod sets being tracked (for scraping and metrics). */
  *sets(): IterableIterator<PodSet> {
    for (const t of this.tracked.values()) yield t.set;
  }

  private track(endpoint: string, model: string): Tracked | undefined {
    if (!this.o.source.covers(endpoint)) return undefined;
    if (this.tracked.size >= MAX_TRACKED_ENDPOINTS) {
      let oldest: Tracked | undefined;
      for (const t of this.tracked.values())
        if (!oldest || t.set.usedAt < oldest.set.usedAt) oldest = t;
      this.tracked.delete(oldest!.set.endpoint);
    }
    const t: Tracked = { set: new PodSet(endpoint, model), resolving: false, failing: false };
    this.tracked.set(endpoint, t);
    void this.resolve(t); // now, not at the next round: the next requests can use the answer
    return t;
  }

  private async round(): Promise<void> {
    if (this.roundRunning) return;
    this.roundRunning = true;
    try {
      const now = Date.now();
      for (const [endpoint, t] of this.tracked)
        if (now - t.set.usedAt > TRACK_IDLE_MS) this.tracked.delete(endpoint);
      await this.o.source.refresh?.();
      await Promise.all(Array.from(this.tracked.values(), (t) => this.resolve(t)));
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, "pod discovery round failed");
    } finally {
      this.roundRunning = false;
    }
  }

  private async resolve(t: Tracked): Promise<void> {
    if (t.resolving) return;
    t.resolving = true;
    const endpoint = t.set.endpoint;
    try {
      const addresses = (await this.o.source.resolve(endpoint)).sort();
      if (t.set.update(addresses.slice(0, MAX_PODS_PER_ENDPOINT)) || t.failing)
        this.o.logger.info({ endpoint, pods: t.set.pods.length }, "endpoint pods");
      t.failing = false;
    } catch (err) {
      // Keep the last answer: pods that are gone fail to connect and are left out one by one.
      if (!t.failing)
        this.o.logger.warn(
          { endpoint, err: (err as Error).message, pods: t.set.pods.length },
          "pod discovery failed; keeping the last answer",
        );
      t.failing = true;
    } finally {
      t.resolving = false;
    }
  }
}
