// PrometheusRule alerts generated from the stack spec: per-model availability from
// kube-state-metrics, latency/errors/registry health from the router, KV cache and queue from
// vLLM. Thresholds and severities depend on the environment; every alert links its runbook.
import type { IPrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import type { ModelSpec, StackSpec } from "../spec";
import { ROUTER_METRICS as R } from "@vllm-fleet/router/contract";
import { KUBE_STATE_METRICS as KSM, VLLM_METRICS as V } from "./metricNames";
import { Environment, serviceName } from "../spec";

type Severity = "critical" | "warning" | "info";

/** Per-environment alerting policy: production pages, staging warns, development informs. */
export interface AlertThresholds {
  /** Severity of user-facing outages (model down, registry row not ready, errors). */
  page: Severity;
  /** Severity of degradations (latency, saturation, flapping). */
  ticket: Severity;
  /** How long a condition must hold before alerting. */
  for: string;
  /** Share of 5xx answers per model. */
  errorRatio: number;
  /** p95 time to first byte through the router, seconds. */
  ttfbP95Seconds: number;
  /** KV-cache use (0..1) above which requests start to be preempted. */
  kvCacheUsage: number;
  /** Requests waiting in vLLM's queue per model. */
  queueDepth: number;
  /** Readiness changes of one pod within 30 minutes. */
  readinessChanges: number;
  /** Container restarts of one model within 30 minutes. */
  restarts: number;
}

export const ALERT_THRESHOLDS: Record<Environment, AlertThresholds> = {
  production: {
    page: "critical",
    ticket: "warning",
    for: "5m",
    errorRatio: 0.02,
    ttfbP95Seconds: 2,
    kvCacheUsage: 0.9,
    queueDepth: 10,
    readinessChanges: 4,
    restarts: 2,
  },
  staging: {
    page: "warning",
    ticket: "warning",
    for: "10m",
    errorRatio: 0.05,
    ttfbP95Seconds: 5,
    kvCacheUsage: 0.95,
    queueDepth: 25,
    readinessChanges: 6,
    restarts: 3,
  },
  development: {
    page: "info",
    ticket: "info",
    for: "15m",
    errorRatio: 0.2,
    ttfbP95Seconds: 15,
    kvCacheUsage: 0.98,
    queueDepth: 50,
    readinessChanges: 10,
    restarts: 5,
  },
};

/** README anchors of the runbooks, one per alert (README.md "## Runbooks"). */
export const RUNBOOKS = {
  VllmModelDown: "runbook-model-down",
  VllmModelPartiallyAvailable: "runbook-partial-replicas",
  VllmReadinessFlapping: "runbook-readiness-flapping",
  VllmContainerRestarting: "runbook-container-restarting",
  RouterHighLatency: "runbook-high-latency",
  RouterHighErrorRate: "runbook-high-error-rate",
  VllmKvCachePressure: "runbook-kv-cache-pressure",
  VllmQueueDepth: "runbook-queue-depth",
  RouterRegistryErrors: "runbook-registry-errors",
  RouterDegraded: "runbook-router-degraded",
  RouterRegistryListenStale: "runbook-registry-listener-stale",
  ModelRegistryRowNotReady: "runbook-registry-row-not-ready",
} as const;

export type AlertName = keyof typeof RUNBOOKS;

export interface AlertRule {
  alert: AlertName;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: { summary: string; description: string; runbook_url: string };
}

/**
 * Seconds without proof of life from a router's LISTEN connection before alerting. A healthy
 * router proves it every ping (ROUTER_REGISTRY_PING_INTERVAL_MS, 0.2 s) and replaces a silent
 * connection within a second or two, so 10 s means it cannot get one working.
 */
export const LISTEN_STALE_SECONDS = 10;

/** Regex alternation of literal values for a PromQL `=~` matcher. */
function alternation(values: string[]): string {
  return values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, "\\\\$&")).join("|");
}

/** Minutes as a Prometheus duration. */
const minutes = (n: number) => `${n}m`;

function perModelRules(spec: StackSpec, m: ModelSpec, t: AlertThresholds, runbook: Runbook) {
  const ns = spec.namespace;
  const deployment = serviceName(m.name, spec.environment);
  const sel = `namespace="${ns}", deployment="${deployment}"`;
  // A rollout of a single replica legitimately has no ready pod for up to the startup budget.
  const startupGrace = m.replicas > 1 ? t.for : minutes(m.startupBudgetMinutes + 5);
  const labels = { model: m.name, deployment };
  const rules: AlertRule[] = [
    {
      alert: "VllmModelDown",
      expr: `max(${KSM.availableReplicas}{${sel}}) == 0 and max(${KSM.specReplicas}{${sel}}) > 0`,
      for: startupGrace,
      labels: { severity: t.page, ...labels },
      annotations: {
        summary: `Model ${m.name} has no available replica in ${spec.environment}`,
        description: `Deployment ${ns}/${deployment} wants replicas but none is available; requests for ${m.name} fail over to its fallbacks or get 502/503.`,
        runbook_url: runbook("VllmModelDown"),
      },
    },
    {
      alert: "VllmModelPartiallyAvailable",
      expr: `max(${KSM.availableReplicas}{${sel}}) < max(${KSM.specReplicas}{${sel}})`,
      for: minutes(m.startupBudgetMinutes + 10),
      labels: { severity: t.ticket, ...labels },
      annotations: {
        summary: `Model ${m.name} runs fewer replicas than configured in ${spec.environment}`,
        description: `Deployment ${ns}/${deployment} has had fewer available than desired replicas for longer than its startup budget (${m.startupBudgetMinutes} min): capacity is reduced and one more failure takes the model down.`,
        runbook_url: runbook("VllmModelPartiallyAvailable"),
      },
    },
    {
      // Missing rows count as not ready (`or on() vector(0)`); a model scaled to zero is quiet.
      alert: "ModelRegistryRowNotReady",
      expr: `(max(${R.entryReady}{environment="${spec.environment}", model="${m.name}"}) or on() vector(0)) < 1 and on() max(${KSM.availableReplicas}{${sel}}) > 0`,
      for: t.for,
      // A ticket, not a page: an emergency `registry disable` is deliberate and also fires this.
      labels: { severity: t.ticket, ...labels },
      annotations: {
        summary: `Model ${m.name} runs but its registry row is missing or disabled in ${spec.environment}`,
        description: `Deployment ${ns}/${deployment} has available replicas but the router has no 'ready' row for ${m.name}, so clients get model_not_found/model_disabled. Check \`npm run registry -- status --model-name ${m.name} --environment ${spec.environment}\`.`,
        runbook_url: runbook("ModelRegistryRowNotReady"),
      },
    },
  ];
  return rules;
}

type Runbook = (alert: AlertName) => string;

/**
 * The stack's PrometheusRule. `runbookBase` is where README.md is browsed (e.g. the repository's
 * blob URL); anchors are appended.
 */
export function buildPrometheusRule(
  spec: StackSpec,
  runbookBase = "README.md",
): IPrometheusRule & { metadata: { name: string; namespace: string } } {
  const t = ALERT_THRESHOLDS[spec.environment];
  const env = spec.environment;
  const ns = spec.namespace;
  const runbook: Runbook = (alert) => `${runbookBase}#${RUNBOOKS[alert]}`;
  const models = spec.models.filter((m) => m.enabled && m.replicas > 0);
  const deployments = alternation(models.map((m) => serviceName(m.name, env)));
  const served = alternation(models.map((m) => m.servedModelName));
  const podSel = `namespace="${ns}", pod=~"(${deployments})-.*"`;
  const vllmSel = `namespace="${ns}", model_name=~"${served}"`;
  const routerSel = `environment="${env}"`;
  const common = { environment: env, namespace: ns };

  const podRules: AlertRule[] = [
    {
      alert: "VllmReadinessFlapping",
      expr: `changes(${KSM.podReady}{${podSel}, condition="true"}[30m]) > ${t.readinessChanges}`,
      for: "0m",
      labels: { severity: t.ticket },
      annotations: {
        summary: "A vLLM pod keeps switching between ready and not ready",
        description: `Pod {{ $labels.pod }} changed readiness more than ${t.readinessChanges} times in 30 minutes: the router keeps losing and regaining it (overload, GPU errors or a too strict readiness probe).`,
        runbook_url: runbook("VllmReadinessFlapping"),
      },
    },
    {
      alert: "VllmContainerRestarting",
      expr: `increase(${KSM.restarts}{${podSel}, container="vllm"}[30m]) > ${t.restarts}`,
      for: "0m",
      labels: { severity: t.ticket },
      annotations: {
        summary: "vLLM keeps restarting",
        description: `Pod {{ $labels.pod }} restarted more than ${t.restarts} times in 30 minutes (OOM, CUDA errors, liveness failures or a startup budget too short for the model).`,
        runbook_url: runbook("VllmContainerRestarting"),
      },
    },
  ];

  const routerRules: AlertRule[] = [
    {
      alert: "RouterHighLatency",
      expr: `histogram_quantile(0.95, sum by (model, le) (rate(${R.timeToFirstByte}_bucket{${routerSel}}[5m]))) > ${t.ttfbP95Seconds}`,
      for: t.for,
      labels: { severity: t.ticket },
      annotations: {
        summary: "Slow first byte through the router",
        description: `p95 time to first byte for {{ $labels.model }} is {{ $value | humanizeDuration }} (threshold ${t.ttfbP95Seconds}s): queues are long or the model servers are saturated.`,
        runbook_url: runbook("RouterHighLatency"),
      },
    },
    {
      alert: "RouterHighErrorRate",
      expr: `sum by (model) (rate(${R.requests}{${routerSel}, status=~"5.."}[5m])) / sum by (model) (rate(${R.requests}{${routerSel}}[5m])) > ${t.errorRatio}`,
      for: t.for,
      labels: { severity: t.page },
      annotations: {
        summary: "The router answers many requests with 5xx",
        description: `{{ $value | humanizePercentage }} of requests for {{ $labels.model }} fail with 5xx (threshold ${t.errorRatio * 100}%): upstream unreachable after fallbacks, or registry unavailable.`,
        runbook_url: runbook("RouterHighErrorRate"),
      },
    },
    {
      alert: "RouterRegistryErrors",
      expr: `sum by (backend) (rate(${R.registryErrors}{namespace="${ns}"}[5m])) > 0`,
      for: t.for,
      labels: { severity: t.ticket },
      annotations: {
        summary: "The router cannot reach the registry's {{ $labels.backend }}",
        description:
          "Registry operations against {{ $labels.backend }} keep failing. Redis errors fall back to PostgreSQL (slower lookups); PostgreSQL errors put the router in degraded mode.",
        runbook_url: runbook("RouterRegistryErrors"),
      },
    },
    {
      alert: "RouterDegraded",
      expr: `max(${R.degraded}{namespace="${ns}"}) == 1`,
      for: t.for,
      labels: { severity: t.page },
      annotations: {
        summary: "The router serves from its last known good registry entries",
        description:
          "PostgreSQL is unreachable: enabled models keep working from cache, but no change (enable, disable, new model) reaches the routers until it is back.",
        runbook_url: runbook("RouterDegraded"),
      },
    },
    {
      alert: "RouterRegistryListenStale",
      expr: `max by (pod) (${R.listenAge}{namespace="${ns}"}) > ${LISTEN_STALE_SECONDS}`,
      for: t.for,
      // A ticket: disables still arrive (lookups bypass the caches), at the cost of more queries.
      labels: { severity: t.ticket },
      annotations: {
        summary: "A router cannot keep a working LISTEN connection to the registry",
        description: `Router {{ $labels.pod }} has had no notification or ping back on its LISTEN connection for {{ $value | humanizeDuration }} (threshold ${LISTEN_STALE_SECONDS}s): it answers every lookup from PostgreSQL instead of its caches. router_registry_listen_reconnects_total says why it keeps losing the connection.`,
        runbook_url: runbook("RouterRegistryListenStale"),
      },
    },
  ];

  const vllmRules: AlertRule[] = [
    {
      alert: "VllmKvCachePressure",
      expr: `max by (model_name) (${V.kvCacheUsage}{${vllmSel}} or ${V.gpuCacheUsage}{${vllmSel}}) > ${t.kvCacheUsage}`,
      for: t.for,
      labels: { severity: t.ticket },
      annotations: {
        summary: "vLLM's KV cache is nearly full",
        description: `KV-cache use of {{ $labels.model_name }} is {{ $value | humanizePercentage }} (threshold ${t.kvCacheUsage * 100}%): vLLM preempts requests and latency climbs. Add replicas or lower maxModelLen.`,
        runbook_url: runbook("VllmKvCachePressure"),
      },
    },
    {
      alert: "VllmQueueDepth",
      expr: `sum by (model_name) (${V.waiting}{${vllmSel}}) > ${t.queueDepth}`,
      for: t.for,
      labels: { severity: t.ticket },
      annotations: {
        summary: "Requests are queueing in vLLM",
        description: `{{ $value }} requests wait for {{ $labels.model_name }} (threshold ${t.queueDepth}): the model is saturated.`,
        runbook_url: runbook("VllmQueueDepth"),
      },
    },
  ];

  const withCommon = (rules: AlertRule[]) =>
    rules.map((r) => ({ ...r, labels: { ...r.labels, ...common } }));
  const groups = [
    {
      name: `vllm-fleet.${env}.models`,
      rules: withCommon([
        ...models.flatMap((m) => perModelRules(spec, m, t, runbook)),
        ...podRules,
        ...vllmRules,
      ]),
    },
    { name: `vllm-fleet.${env}.router`, rules: withCommon(routerRules) },
  ];
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: {
      name: `vllm-fleet-${env}`,
      namespace: ns,
      labels: {
        "app.kubernetes.io/part-of": "vllm-fleet",
        "app.kubernetes.io/managed-by": "pulumi",
        "vllm.ai/environment": env,
        // kube-prometheus-stack only loads rules labelled with its release.
        release: spec.monitoring.prometheusRelease,
      },
    },
    spec: { groups: models.length ? groups : [] },
  };
}
