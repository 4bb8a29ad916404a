// Which address a request is sent to. Mode `service` sends every request to the registry
// endpoint (the model's Service, which spreads connections at random), as the router always
// did. `least-loaded` and `scored` send it to one of the model's ready pods (discovery.ts):
// the least loaded one, or, in `scored`, the pod its prompt prefix hashes to (rendezvous
// hashing, the same choice on every router without coordination) unless that pod's load is
// over the bound, then the next pod in the prefix's order.
import type { Logger } from "../logger";
import type { RouterMetrics } from "../metrics";
import type { RegistryEntry } from "@vllm-fleet/registry";
import { Discovery, type PodSource } from "./discovery";
import { DnsSource } from "./dnsSource";
import { mix } from "./hash";
import { PodMetricsScraper } from "./podMetrics";
import type { Pod, PodSet } from "./pods";
import { affinityKey } from "./prefixKey";
import { StaticSource, type StaticPods } from "./staticSource";

import type { RoutingMode } from "../contract";
export { ROUTING_MODES, type RoutingMode } from "../contract";

/** Why a request went where it went (the `reason` label of router_endpoint_picks_total). */
/**
 * How much busier than the least loaded pod a pod may be and still count as equally loaded in
 * `least-loaded` (and for a spilled `scored` request): one request.
 */
export const LOAD_SLACK = 1;

export type PickReason = "service" | "affinity" | "spill" | "least_loaded" | "retry";

export interface RoutingConfig {
  mode: RoutingMode;
  /** Pods from this file (static source) instead of DNS. */
  staticFile?: string;
  /** The file's contents as read at startup. */
  staticPods?: StaticPods;
  /** DNS servers (`ip` or `ip:port`) asked for pods instead of the system's. */
  dnsServers: string[];
  /** How often tracked endpoints' pods are asked again. */
  discoveryIntervalMs: number;
  /** How often each tracked pod's vLLM `/metrics` is read. */
  podMetricsIntervalMs: number;
  /** Deadline of one `/metrics` reading. */
  podMetricsTimeoutMs: number;
  /** Bounded load: a pod is passed over while its load would exceed this factor times the mean. */
  affinityLoadFactor: number;
}

/** A reading counts fully for this many scrape intervals, then fades out over as many again. */
export const FRESH_INTERVALS = 3;
/** Pods of one model one request tries (connect failures) before its fallback models. */
export const MAX_POD_ATTEMPTS = 3;

/** Failures that mean the pod cannot be reached: it is left out for a backoff. */
const UNREACHABLE = new Set([
  "connection_refused",
  "connect_timeout",
  "ehostunreach",
  "enetunreach",
]);

export interface Pick {
  /** `host:port` to send the request to. */
  address: string;
  reason: PickReason;
  /** The pod, unless the request goes to the endpoint itself. */
  pod?: Pod;
}

/** What one request's picks share: its body, and its affinity key once computed. */
export interface PickContext {
  json: Record<string, unknown>;
  /** undefined: not computed yet; null: the request has no key. */
  key?: number | null;
}

/** A pod of a tracked model, for the per-pod metrics. */
export interface PodStat {
  model: string;
  pod: string;
  inflight: number;
  /** Seconds since the pod's last `/metrics` reading; undefined before the first. */
  metricsAgeSeconds?: number;
}

export class EndpointRouting {
  private readonly discovery?: Discovery;
  private readonly scraper?: PodMetricsScraper;
  private readonly freshMs: number;
  /** Scratch for one pick (the router picks synchronously, one request at a time). */
  private readonly candidates: Pod[] = [];
  private readonly loads: number[] = [];

  constructor(
    private readonly c: RoutingConfig,
    private readonly metrics: RouterMetrics,
    logger: Logger,
  ) {
    this.freshMs = FRESH_INTERVALS * c.podMetricsIntervalMs;
    if (c.mode === "service") return;
    const source: PodSource = c.staticFile
      ? new StaticSource(c.staticFile, c.staticPods ?? new Map(), logger)
      : new DnsSource(c.dnsServers, Math.min(c.discoveryIntervalMs, 1000));
    this.discovery = new Discovery({ source, intervalMs: c.discoveryIntervalMs, logger });
    this.scraper = new PodMetricsScraper({
      discovery: this.discovery,
      intervalMs: c.podMetricsIntervalMs,
      timeoutMs: c.podMetricsTimeoutMs,
    });
  }

  get mode(): RoutingMode {
    return this.c.mode;
  }

  start(): void {
    this.discovery?.start();
    this.scraper?.start();
  }

  async close(): Promise<void> {
    this.discovery?.close();
    await this.scraper?.close();
  }

  /**
   * Where to send a request for `entry`: a pod, or the endpoint itself (mode `service`, no
   * pods known, or all of them down). With `tried` (pods that failed to connect) the next pod
   * of the same model, or undefined when none is left.
   */
  pick(entry: RegistryEntry, ctx: PickContext, tried?: readonly Pod[]): Pick | undefined {
    const set = this.discovery?.pods(entry.endpoint, entry.modelName);
    let pick = set && this.choose(set, ctx, tried);
    if (tried?.length) {
      if (!pick) return undefined; // every pod tried: the fallback models are next
      pick.reason = "retry";
    }
    pick ??= { address: entry.endpoint, reason: "service" };
    this.metrics.endpointPicks.inc({ model: entry.modelName, reason: pick.reason });
    return pick;
  }

  /** An attempt on `pick` failed for `reason` (upstream.ts's classification). True: try another pod. */
  failed(pick: Pick, reason: string): boolean {
    if (!pick.pod || !UNREACHABLE.has(reason)) return false;
    pick.pod.markDown(Date.now());
    return true;
  }

  /** Pods of the tracked models, for the per-pod gauges. */
  *podStats(): IterableIterator<PodStat> {
    if (!this.discovery) return;
    const now = Date.now();
    for (const set of this.discovery.sets())
      for (const p of set.pods)
        yield {
          model: set.model,
          pod: p.address,
          inflight: p.inflight,
          metricsAgeSeconds: p.reportedAt === undefined ? undefined : (now - p.reportedAt) / 1000,
        };
  }

  private choose(
    set: PodSet,
    ctx: PickContext,
    tried: readonly Pod[] | undefined,
  ): Pick | undefined {
    const now = Date.now();
    const pods = this.candidates;
    const loads = this.loads;
    pods.length = 0;
    loads.length = 0;
    for (const p of set.pods) {
      if (p.isDown(now) || tried?.includes(p)) continue;
      pods.push(p);
      loads.push(p.load(now, this.freshMs));
    }
    if (pods.length === 0) return undefined;
    if (ctx.key === undefined) ctx.key = affinityKey(ctx.json) ?? null;
    if (this.c.mode === "scored" && ctx.key !== null)
      return this.rendezvous(ctx.key, pods, loads) ?? this.leastLoaded(set, "spill", ctx.key);
    return this.leastLoaded(set, "least_loaded", ctx.key);
  }

  /**
   * Rendezvous (highest random weight) hashing with bounded loads: the pods rank by
   * mix(key ^ pod), and the highest-ranked pod whose load, with this request, stays within
   * ceil(factor x mean) takes it (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with
   * Bounded Loads", 2018). The ranking depends only on the key and the pod addresses, so every
   * router agrees; the bound keeps a hot prefix from piling onto one pod. A pod's own load is
   * compared in whole requests, as the paper's loads are: its fraction (KV-cache use, a fading
   * reading) is dropped, or an idle pod's 0.004 would lift it over ceil(2 x 1.004 / 4) = 1 and
   * every lightly loaded prefix would spill off its pod. The mean keeps the fractions, so the
   * bound still grows with the pods' KV pressure (rounding it too spilled 167 of the
   * benchmark's 419 picks, instead of 1 of 423).
   */
  private rendezvous(key: number, pods: Pod[], loads: number[]): Pick | undefined {
    let total = 1; // the request being placed
    for (const l of loads) total += l;
    const cap = Math.ceil((this.c.affinityLoadFactor * total) / pods.length);
    let best = -1;
    let bestWeight = -1;
    let topWeight = -1;
    for (let i = 0; i < pods.length; i++) {
      const w = mix(key ^ pods[i].id);
      if (w > topWeight) topWeight = w;
      // Whole requests against the bound: a fraction of one (KV-cache use a reading showed)
      // never turns an idle pod away, while the mean keeps every pod's pressure.
      if (Math.floor(loads[i]) + 1 <= cap && w > bestWeight) {
        best = i;
        bestWeight = w;
      }
    }
    if (best === -1) return undefined;
    const pod = pods[best];
    return { address: pod.address, pod, reason: bestWeight === topWeight ? "affinity" : "spill" };
  }

  /**
   * The candidate with the lowest load. Pods within LOAD_SLACK of the lowest count as equal,
   * and among them the prompt's key decides (its rendezvous order, as in `scored`), so equally
   * loaded pods keep seeing the same prefixes and their caches stay useful; without a key they
   * are taken in turn. Load still comes first: a pod more than LOAD_SLACK busier never wins.
   */
  private leastLoaded(set: PodSet, reason: PickReason, key: number | null): Pick {
    const pods = this.candidates;
    const loads = this.loads;
    let lowest = Infinity;
    for (const l of loads) if (l < lowest) lowest = l;
    const start = set.rotation++ % pods.length;
    let best = -1;
    let bestWeight = -1;
    for (let j = 0; j < pods.length; j++) {
      const i = (start + j) % pods.length;
      if (loads[i] > lowest + LOAD_SLACK) continue;
      if (key === null) {
        if (best === -1) best = i;
        continue;
      }
      const w = mix(key ^ pods[i].id);
      if (w > bestWeight) {
        best = i;
        bestWeight = w;
      }
    }
    return { address: pods[best].address, pod: pods[best], reason };
  }
}
