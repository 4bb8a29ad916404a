// The router's Prometheus metrics. Names are a contract with the alerts and dashboards.
import * as client from "prom-client";
import type { RegistryEntry } from "@vllm-fleet/registry";
import { ROUTER_METRICS as NAMES } from "./contract";
import type { PodStat } from "./routing/routing";

/** Most registry entries `router_registry_entry_ready` reports (one series each). */
export const MAX_ENTRY_SERIES = 1000;

export type LookupSource = "memory" | "redis" | "postgres" | "stale" | "negative";

/** Why the registry LISTEN connection was replaced: no ping back in time, or closed/failed. */
export type ListenLossReason = "ping_timeout" | "connection_lost";

/** One registry of metrics per router instance (tests run several in one process). */
export class RouterMetrics {
  readonly registry = new client.Registry();
  readonly requests = new client.Counter({
    name: NAMES.requests,
    help: "Requests answered, by client-facing model, HTTP status and environment",
    labelNames: ["model", "status", "environment"] as const,
    registers: [this.registry],
  });
  readonly duration = new client.Histogram({
    name: NAMES.duration,
    help: "Time from request to the last byte of the response",
    labelNames: ["model", "environment"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly timeToFirstByte = new client.Histogram({
    name: NAMES.timeToFirstByte,
    help: "Time from request to the first response byte from the model server",
    labelNames: ["model", "environment"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly lookups = new client.Counter({
    name: NAMES.registryLookups,
    help: "Model lookups by where the answer came from (memory, redis, postgres, stale, negative)",
    labelNames: ["source"] as const,
    registers: [this.registry],
  });
  readonly registryErrors = new client.Counter({
    name: NAMES.registryErrors,
    help: "Failed registry operations by backend",
    labelNames: ["backend"] as const,
    registers: [this.registry],
  });
  readonly cacheRejected = new client.Counter({
    name: NAMES.cacheRejected,
    help: "Redis values ignored and deleted: invalid by the registry's rules or for their key (invalid), without the cache TTL (no_ttl), or enabling a model the database disabled (overrides_disable)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly upstreamErrors = new client.Counter({
    name: NAMES.upstreamErrors,
    help: "Failed attempts to reach a model server, by model and reason",
    labelNames: ["model", "reason"] as const,
    registers: [this.registry],
  });
  /** Requests being served right now; set by the app, read at scrape time (no per-request cost). */
  inflightNow?: () => number;
  readonly inflight = new client.Gauge({
    name: NAMES.inflight,
    help: "Requests (including open streams) being served",
    registers: [this.registry],
    collect: () => {
      if (this.inflightNow) this.inflight.set(this.inflightNow());
    },
  });
  readonly degraded = new client.Gauge({
    name: NAMES.degraded,
    help: "1 while the registry database is unreachable and answers come from the last known good entries",
    registers: [this.registry],
  });

  /** When the registry listener last heard from PostgreSQL (epoch ms); set by the app. */
  listenProofAt?: () => number;
  readonly listenAge = new client.Gauge({
    name: NAMES.listenAge,
    help: "Seconds since the registry LISTEN connection last proved alive (a change notification or its own ping coming back)",
    registers: [this.registry],
    collect: () => {
      if (this.listenProofAt) this.listenAge.set((Date.now() - this.listenProofAt()) / 1000);
    },
  });
  readonly listenReconnects = new client.Counter({
    name: NAMES.listenReconnects,
    help: "Registry LISTEN connections replaced, by reason (ping_timeout: silently dead; connection_lost: closed or failed)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly endpointPicks = new client.Counter({
    name: NAMES.endpointPicks,
    help: "Where requests were sent, by model and reason: service (the model's Service), affinity (the pod its prompt prefix hashes to), spill (the next pod, the first being over the load bound), least_loaded, retry (another pod after a connect failure)",
    labelNames: ["model", "reason"] as const,
    registers: [this.registry],
  });
  /** The pods of tracked models, read at scrape time; set by the app (modes other than service). */
  podStats?: () => Iterable<PodStat>;
  readonly podInflight = new client.Gauge({
    name: NAMES.podInflight,
    help: "This router's requests in flight on each pod of a recently requested model (endpoint-aware modes)",
    labelNames: ["model", "pod"] as const,
    registers: [this.registry],
    // Rebuilt on each scrape: a pod that left discovery loses its series.
    collect: () => {
      if (!this.podStats) return;
      this.podInflight.reset();
      for (const s of this.podStats())
        this.podInflight.set({ model: s.model, pod: s.pod }, s.inflight);
    },
  });
  readonly podMetricsAge = new client.Gauge({
    name: NAMES.podMetricsAge,
    help: "Seconds since the router last read a pod's vLLM /metrics (older readings fade to neutral)",
    labelNames: ["model", "pod"] as const,
    registers: [this.registry],
    collect: () => {
      if (!this.podStats) return;
      this.podMetricsAge.reset();
      for (const s of this.podStats())
        if (s.metricsAgeSeconds !== undefined)
          this.podMetricsAge.set({ model: s.model, pod: s.pod }, s.metricsAgeSeconds);
    },
  });

  /** Where `router_registry_entry_ready` reads the registry at scrape time; set by the app (see `atMostEvery`). */
  registryEntries?: () => Promise<RegistryEntry[]>;
  readonly entryReady = new client.Gauge({
    name: NAMES.entryReady,
    help: "1 for a registry entry of this environment that is ready, 0 for a disabled one (read at scrape time)",
    labelNames: ["model", "environment"] as const,
    registers: [this.registry],
    // Read on scrape, so the gauge is the table itself, not what requests happened to touch.
    collect: async () => {
      if (!this.registryEntries) return;
      const entries = await this.registryEntries().catch(() => undefined);
      if (!entries) return; // registry unreachable: keep the last values (router_degraded says why)
      this.entryReady.reset();
      for (const e of entries.slice(0, MAX_ENTRY_SERIES)) {
        this.entryReady.set(
          { model: e.modelName, environment: e.environment },
          e.status === "ready" ? 1 : 0,
        );
      }
    },
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
  }
}

/**
 * `read`, called at most once per `intervalMs` however often and concurrently it is asked:
 * a scrape storm costs the registry one query per interval. Failures are kept as long.
 */
export function atMostEvery<T>(intervalMs: number, read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at >= intervalMs) last = { at: now, value: read() };
    return last.value;
  };
}
