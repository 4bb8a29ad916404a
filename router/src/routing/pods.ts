// A model's pods as one router sees them: its own requests in flight on each, the load vLLM last
// reported for each (decaying to neutral as the report ages), and whether a connection to one
// just failed.
import { fnv1a } from "./hash";

/** What a pod's vLLM reports about its load (its `/metrics`). */
export interface VllmLoad {
  /** Requests being computed: `vllm:num_requests_running`. */
  running: number;
  /** Requests queued behind them: `vllm:num_requests_waiting`. */
  waiting: number;
  /** KV-cache usage, 0..1 (1 means 100 percent): `vllm:kv_cache_usage_perc`. */
  kvUsage: number;
}

/**
 * A full KV cache counts as this many more requests: vLLM must preempt running requests to
 * admit another, so a pod near the limit is worse than its request counts say.
 */
export const KV_WEIGHT = 2;
/** A pod that refused a connection is left out this long, doubling per failure in a row. */
export const POD_DOWN_MIN_MS = 1000;
export const POD_DOWN_MAX_MS = 30000;

export class Pod {
  /** Rendezvous identity: the same for every router, since it hashes the address. */
  readonly id: number;
  /** This router's requests on the pod right now (attempts, including open streams). */
  inflight = 0;
  private reported?: VllmLoad & { at: number; ownAtReport: number };
  private downUntil = 0;
  private failuresInARow = 0;

  constructor(readonly address: string) {
    this.id = fnv1a(address);
  }

  /** Records a `/metrics` reading taken at `now`. */
  report(load: VllmLoad, now: number): void {
    this.reported = { ...load, at: now, ownAtReport: this.inflight };
  }

  /** When the last reading was taken (epoch ms), if ever. */
  get reportedAt(): number | undefined {
    return this.reported?.at;
  }

  /**
   * Estimated requests ahead of a new one: this router's own in flight (exact, immediate) plus
   * what the last reading shows beyond them (other routers' requests, and the queue, counted
   * again because a queued request delays everything behind it), plus the KV-cache term. A
   * reading counts fully for `freshMs`, then fades linearly to nothing at twice that age: a pod
   * whose metrics stopped coming is judged by this router's own count alone.
   */
  load(now: number, freshMs: number): number {
    const r = this.reported;
    if (!r) return this.inflight;
    const weight = Math.min(1, Math.max(0, 2 - (now - r.at) / freshMs));
    if (weight === 0) return this.inflight;
    const others = Math.max(0, r.running + r.waiting - r.ownAtReport);
    return this.inflight + weight * (others + r.waiting + KV_WEIGHT * r.kvUsage);
  }

  isDown(now: number): boolean {
    return now < this.downUntil;
  }

  /** A connection failed: leave the pod out for a backoff that doubles while failures repeat. */
  markDown(now: number): void {
    this.failuresInARow++;
    const backoff = POD_DOWN_MIN_MS * 2 ** Math.min(this.failuresInARow - 1, 16);
    this.downUntil = now + Math.min(POD_DOWN_MAX_MS, backoff);
  }

  /** The pod answered: it is up. */
  markUp(): void {
    this.failuresInARow = 0;
    this.downUntil = 0;
  }
}

/** The pods of one registry endpoint, as its discovery source last listed them. */
export class PodSet {
  /** Sorted by address, so every router holds the same list for the same answer. */
  pods: Pod[] = [];
  /** When a request last asked for this endpoint (epoch ms). */
  usedAt = Date.now();
  /** Start of the next least-loaded scan: ties go round the pods instead of to the first. */
  rotation = 0;

  constructor(
    readonly endpoint: string,
    /** Client-facing model name, for metric labels: the first model that asked for the endpoint. */
    readonly model: string,
  ) {}

  /** Takes a new answer; pods that stay keep their counts, readings and backoff. True if the pods changed. */
  update(addresses: readonly string[]): boolean {
    const sorted = [...new Set(addresses)].sort();
    if (sorted.length === this.pods.length && sorted.every((a, i) => this.pods[i].address === a))
      return false;
    const old = new Map(this.pods.map((p) => [p.address, p]));
    this.pods = sorted.map((a) => old.get(a) ?? new Pod(a));
    return true;
  }
}
