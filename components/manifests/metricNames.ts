// The Prometheus metrics alerts and dashboards may use: what the router
// (@vllm-fleet/router/contract, the names router/src/metrics.ts registers), vLLM (v0.11, label
// model_name) and kube-state-metrics export. Tests check every expression against this list, and
// that the router registers exactly its contract's names, so a rename cannot go unnoticed.
import { ROUTER_METRICS } from "@vllm-fleet/router/contract";

/** vLLM server metrics; `gpuCacheUsage` is the pre-0.10 name of `kvCacheUsage`. */
export const VLLM_METRICS = {
  running: "vllm:num_requests_running",
  waiting: "vllm:num_requests_waiting",
  gpuCacheUsage: "vllm:gpu_cache_usage_perc",
  kvCacheUsage: "vllm:kv_cache_usage_perc",
  timeToFirstToken: "vllm:time_to_first_token_seconds",
  e2eLatency: "vllm:e2e_request_latency_seconds",
  promptTokens: "vllm:prompt_tokens_total",
  generationTokens: "vllm:generation_tokens_total",
} as const;

/** kube-state-metrics series about Deployments and pods. */
export const KUBE_STATE_METRICS = {
  availableReplicas: "kube_deployment_status_replicas_available",
  specReplicas: "kube_deployment_spec_replicas",
  podReady: "kube_pod_status_ready",
  restarts: "kube_pod_container_status_restarts_total",
} as const;

/** Histograms: expressions use their `_bucket`, `_sum` and `_count` series. */
export const HISTOGRAMS: string[] = [
  ROUTER_METRICS.duration,
  ROUTER_METRICS.timeToFirstByte,
  VLLM_METRICS.timeToFirstToken,
  VLLM_METRICS.e2eLatency,
];

/** Every series name an alert or panel may reference. */
export const ALLOWED_SERIES: ReadonlySet<string> = new Set([
  ...Object.values(ROUTER_METRICS).filter((m) => !HISTOGRAMS.includes(m)),
  ...Object.values(VLLM_METRICS).filter((m) => !HISTOGRAMS.includes(m)),
  ...Object.values(KUBE_STATE_METRICS),
  ...HISTOGRAMS.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]),
]);

const PROMQL_WORDS = new Set([
  "sum",
  "avg",
  "min",
  "max",
  "count",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "rate",
  "irate",
  "increase",
  "changes",
  "delta",
  "histogram_quantile",
  "clamp_min",
  "clamp_max",
  "max_over_time",
  "min_over_time",
  "avg_over_time",
  "absent",
  "vector",
  "topk",
  "label_replace",
]);

/** Series names a PromQL expression reads (label matchers, grouping labels and functions removed). */
export function seriesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = stripped.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return [...new Set(names.filter((n) => !PROMQL_WORDS.has(n) && !/^\d/.test(n)))];
}
