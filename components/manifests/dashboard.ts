// The Grafana dashboard of one stack, as a ConfigMap the Grafana sidecar picks up (label
// grafana_dashboard: "1"). Variables: environment (this stack) and model (its releases).
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { StackSpec } from "../spec";
import { ROUTER_METRICS as R } from "@vllm-fleet/router/contract";
import { KUBE_STATE_METRICS as KSM, VLLM_METRICS as V } from "./metricNames";

interface Target {
  expr: string;
  legendFormat: string;
  refId: string;
}

export interface Panel {
  id: number;
  type: "timeseries" | "stat";
  title: string;
  description: string;
  gridPos: { x: number; y: number; w: number; h: number };
  fieldConfig: { defaults: { unit: string; min?: number; max?: number }; overrides: [] };
  targets: Target[];
  datasource: { type: "prometheus"; uid: "${datasource}" };
}

/** Router series of the selected environment and models. */
const ROUTER = `environment="$environment", model=~"$model"`;

/**
 * The label under which Prometheus stores the router's own `pod` label (the pod a request went
 * to): the ServiceMonitor leaves honorLabels off, so the target's `pod` (the router pod) wins
 * and the scraped one is renamed `exported_pod` (Prometheus scrape_config, honor_labels).
 */
export const PICKED_POD_LABEL = "exported_pod";

function panel(
  title: string,
  description: string,
  unit: string,
  queries: [expr: string, legend: string][],
  extra: Partial<Panel["fieldConfig"]["defaults"]> = {},
  type: Panel["type"] = "timeseries",
): Omit<Panel, "id" | "gridPos"> {
  return {
    type,
    title,
    description,
    datasource: { type: "prometheus", uid: "${datasource}" },
    fieldConfig: { defaults: { unit, ...extra }, overrides: [] },
    targets: queries.map(([expr, legendFormat], i) => ({
      expr,
      legendFormat,
      refId: String.fromCharCode(65 + i),
    })),
  };
}

const quantiles = (metric: string, by: string, sel: string): [string, string][] =>
  [0.5, 0.95, 0.99].map((q) => [
    `histogram_quantile(${q}, sum by (${by}, le) (rate(${metric}_bucket{${sel}}[$__rate_interval])))`,
    `{{${by}}} p${q * 100}`,
  ]);

/** The dashboard JSON model (Grafana schema 39). */
export function buildDashboard(spec: StackSpec) {
  const env = spec.environment;
  const ns = spec.namespace;
  // Kubernetes and vLLM series are found through the model's Service/Deployment `{model}-{env}`.
  const kube = `namespace="${ns}", deployment=~"($model)-${env}"`;
  const vllm = `namespace="${ns}", service=~"($model)-${env}"`;
  const panels = [
    panel("Available replicas", "Available vs desired replicas per model", "short", [
      [`sum by (deployment) (${KSM.availableReplicas}{${kube}})`, "{{deployment}} available"],
      [`sum by (deployment) (${KSM.specReplicas}{${kube}})`, "{{deployment}} desired"],
    ]),
    panel(
      "Availability",
      "Share of requests not answered with 5xx",
      "percentunit",
      [
        [
          `1 - (sum(rate(${R.requests}{${ROUTER}, status=~"5.."}[$__rate_interval])) / sum(rate(${R.requests}{${ROUTER}}[$__rate_interval])))`,
          "availability",
        ],
      ],
      { min: 0, max: 1 },
      "stat",
    ),
    panel("Request rate", "Requests per second by model and status", "reqps", [
      [
        `sum by (model, status) (rate(${R.requests}{${ROUTER}}[$__rate_interval]))`,
        "{{model}} {{status}}",
      ],
    ]),
    panel(
      "Request latency",
      "Router request duration percentiles (whole response, streams included)",
      "s",
      quantiles(R.duration, "model", ROUTER),
    ),
    panel("Time to first token", "vLLM time to first token and router time to first byte", "s", [
      ...quantiles(V.timeToFirstToken, "model_name", vllm),
      [
        `histogram_quantile(0.95, sum by (model, le) (rate(${R.timeToFirstByte}_bucket{${ROUTER}}[$__rate_interval])))`,
        "{{model}} router TTFB p95",
      ],
    ]),
    panel("Errors", "5xx answers by model and failed upstream attempts by reason", "reqps", [
      [
        `sum by (model, status) (rate(${R.requests}{${ROUTER}, status=~"5.."}[$__rate_interval]))`,
        "{{model}} {{status}}",
      ],
      [
        `sum by (model, reason) (rate(${R.upstreamErrors}{model=~"$model"}[$__rate_interval]))`,
        "{{model}} upstream {{reason}}",
      ],
    ]),
    panel(
      "GPU KV-cache use",
      "vLLM KV-cache use (1 = full; requests get preempted)",
      "percentunit",
      [
        [
          `max by (model_name) (${V.kvCacheUsage}{${vllm}} or ${V.gpuCacheUsage}{${vllm}})`,
          "{{model_name}}",
        ],
      ],
      { min: 0, max: 1 },
    ),
    panel("Queue", "Requests running and waiting in vLLM", "short", [
      [`sum by (model_name) (${V.running}{${vllm}})`, "{{model_name}} running"],
      [`sum by (model_name) (${V.waiting}{${vllm}})`, "{{model_name}} waiting"],
    ]),
    panel("Tokens", "Prompt and generated tokens per second", "short", [
      [
        `sum by (model_name) (rate(${V.promptTokens}{${vllm}}[$__rate_interval]))`,
        "{{model_name}} prompt",
      ],
      [
        `sum by (model_name) (rate(${V.generationTokens}{${vllm}}[$__rate_interval]))`,
        "{{model_name}} generated",
      ],
    ]),
    panel(
      "Endpoint picks",
      "Where the router sent requests, by reason: service (the model's Service), affinity (the pod the prompt prefix hashes to), spill (the next pod, past the load bound), least_loaded, retry (another pod after a connect failure)",
      "reqps",
      [
        [
          `sum by (model, reason) (rate(${R.endpointPicks}{namespace="${ns}", model=~"$model"}[$__rate_interval]))`,
          "{{model}} {{reason}}",
        ],
      ],
    ),
    panel(
      "Requests in flight per pod",
      "Requests the routers have in flight on each model pod (modes least-loaded and scored), summed over router replicas: an even spread, or one pod taking a hot prefix",
      "short",
      [
        [
          `sum by (model, ${PICKED_POD_LABEL}) (${R.podInflight}{namespace="${ns}", model=~"$model"})`,
          `{{model}} {{${PICKED_POD_LABEL}}}`,
        ],
      ],
    ),
    panel("Registry", "Registry lookups by source, errors by backend, degraded routers", "short", [
      [
        `sum by (source) (rate(${R.registryLookups}{namespace="${ns}"}[$__rate_interval]))`,
        "lookups {{source}}",
      ],
      [
        `sum by (backend) (rate(${R.registryErrors}{namespace="${ns}"}[$__rate_interval]))`,
        "errors {{backend}}",
      ],
      [`sum(${R.degraded}{namespace="${ns}"})`, "degraded routers"],
      [`sum(${R.inflight}{namespace="${ns}"})`, "in-flight requests"],
    ]),
    panel(
      "Registry listener",
      "Seconds since each router's LISTEN connection last proved alive, and connections replaced",
      "s",
      [
        [`max by (pod) (${R.listenAge}{namespace="${ns}"})`, "{{pod}} age"],
        [
          `sum by (reason) (increase(${R.listenReconnects}{namespace="${ns}"}[$__rate_interval]))`,
          "reconnects {{reason}}",
        ],
      ],
    ),
  ];
  return {
    uid: `vllm-fleet-${env}`,
    title: `vLLM fleet (${env})`,
    tags: ["vllm", "vllm-fleet", env],
    schemaVersion: 39,
    version: 1,
    editable: false,
    refresh: "30s",
    time: { from: "now-6h", to: "now" },
    templating: {
      list: [
        { name: "datasource", label: "Data source", type: "datasource", query: "prometheus" },
        {
          name: "environment",
          label: "Environment",
          type: "custom",
          query: env,
          current: { text: env, value: env },
          options: [{ text: env, value: env, selected: true }],
        },
        {
          name: "model",
          label: "Model",
          type: "custom",
          multi: true,
          includeAll: true,
          query: spec.models.map((m) => m.name).join(","),
          current: { text: "All", value: "$__all" },
          options: spec.models.map((m) => ({ text: m.name, value: m.name, selected: false })),
        },
      ],
    },
    // Two panels per row, 8 units high.
    panels: panels.map((p, i) => ({
      ...p,
      id: i + 1,
      gridPos: { x: (i % 2) * 12, y: Math.floor(i / 2) * 8, w: 12, h: 8 },
    })),
  };
}

/** ConfigMap holding the dashboard, labelled for the Grafana sidecar. */
export function buildDashboardConfigMap(
  spec: StackSpec,
): IConfigMap & { metadata: { name: string; namespace: string } } {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: `vllm-fleet-dashboard-${spec.environment}`,
      namespace: spec.namespace,
      labels: {
        grafana_dashboard: "1",
        "app.kubernetes.io/part-of": "vllm-fleet",
        "app.kubernetes.io/managed-by": "pulumi",
        "vllm.ai/environment": spec.environment,
      },
    },
    data: { [`vllm-fleet-${spec.environment}.json`]: JSON.stringify(buildDashboard(spec)) },
  };
}
