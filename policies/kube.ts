// Reading Kubernetes objects as the policy engine hands them over: untyped inputs or outputs,
// possibly wrapped in the engine's unknown-checking proxy during preview.

/** A JSON object of unknown shape. */
export type Obj = Record<string, unknown>;

export function obj(value: unknown): Obj {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Obj) : {};
}

export function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

export function strMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(value))) if (typeof v === "string") out[k] = v;
  return out;
}

/** Pulumi type tokens of the Kubernetes objects the pack reads. */
export const TYPES = {
  deployment: "kubernetes:apps/v1:Deployment",
  statefulSet: "kubernetes:apps/v1:StatefulSet",
  daemonSet: "kubernetes:apps/v1:DaemonSet",
  replicaSet: "kubernetes:apps/v1:ReplicaSet",
  job: "kubernetes:batch/v1:Job",
  cronJob: "kubernetes:batch/v1:CronJob",
  pod: "kubernetes:core/v1:Pod",
  service: "kubernetes:core/v1:Service",
  resourceQuota: "kubernetes:core/v1:ResourceQuota",
  pdb: "kubernetes:policy/v1:PodDisruptionBudget",
  networkPolicy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
  // apiextensions.CustomResource registers as `kubernetes:${apiVersion}:${kind}`.
  serviceMonitor: "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
  // Dynamic resources are `pulumi-nodejs:dynamic:Resource` or `pulumi-nodejs:dynamic/<module>:<Type>`.
  dynamic: "pulumi-nodejs:dynamic",
} as const;

/** Workloads that run pods continuously (probes, replicas and PDBs make sense for these). */
const LONG_RUNNING = new Set<string>([
  TYPES.deployment,
  TYPES.statefulSet,
  TYPES.daemonSet,
  TYPES.replicaSet,
]);

/** A pod template found in a workload, with what the rules need around it. */
export interface Workload {
  /** Kind and namespace/name for messages, e.g. `Deployment llm-production/llama-production`. */
  display: string;
  kind: string;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  podLabels: Record<string, string>;
  /** The pod template's metadata (annotations such as AppArmor's matter to Pod Security). */
  podMeta: Obj;
  podSpec: Obj;
  longRunning: boolean;
  /** Desired replicas (1 when unset, as Kubernetes defaults it; 1 for non-replicated kinds). */
  replicas: number;
}

/** Kind name from a Pulumi type token (`kubernetes:apps/v1:Deployment` -> `Deployment`). */
export function kindOf(type: string): string {
  return type.split(":").pop() ?? type;
}

/** `Kind namespace/name` of any Kubernetes object, falling back to the Pulumi resource name. */
export function describe(type: string, props: Obj, pulumiName: string): string {
  const meta = obj(props.metadata);
  const name = str(meta.name) ?? pulumiName;
  const ns = str(meta.namespace);
  return `${kindOf(type)} ${ns ? `${ns}/` : ""}${name}`;
}

/** Does this resource type run pods? Decided from the type alone, before reading any value. */
export function isWorkloadType(type: string): boolean {
  return (
    LONG_RUNNING.has(type) || type === TYPES.job || type === TYPES.cronJob || type === TYPES.pod
  );
}

/** The pod template of a workload object, or undefined when the type runs no pods. */
export function workloadOf(type: string, props: Obj, pulumiName: string): Workload | undefined {
  // Other resources' values are never read: they may be unknown in preview and are not ours to judge.
  if (!isWorkloadType(type)) return undefined;
  const meta = obj(props.metadata);
  const spec = obj(props.spec);
  let template: Obj | undefined;
  if (type === TYPES.pod) template = { metadata: meta, spec };
  else if (type === TYPES.cronJob) template = obj(obj(obj(spec.jobTemplate).spec).template);
  else if (LONG_RUNNING.has(type) || type === TYPES.job) template = obj(spec.template);
  if (!template) return undefined;
  const replicas =
    type === TYPES.deployment || type === TYPES.statefulSet || type === TYPES.replicaSet
      ? typeof spec.replicas === "number"
        ? spec.replicas
        : 1
      : 1;
  return {
    display: describe(type, props, pulumiName),
    kind: kindOf(type),
    name: str(meta.name) ?? pulumiName,
    namespace: str(meta.namespace) ?? "default",
    labels: strMap(meta.labels),
    annotations: strMap(meta.annotations),
    podLabels: strMap(obj(template.metadata).labels),
    podMeta: obj(template.metadata),
    podSpec: obj(template.spec),
    longRunning: LONG_RUNNING.has(type),
    replicas,
  };
}

/** A container with where it sits in the pod (for messages). */
export interface Container {
  name: string;
  init: boolean;
  spec: Obj;
}

export function containersOf(podSpec: Obj, includeInit = true): Container[] {
  const main = list(podSpec.containers).map((c) => ({
    name: str(obj(c).name) ?? "?",
    init: false,
    spec: obj(c),
  }));
  if (!includeInit) return main;
  const init = list(podSpec.initContainers).map((c) => ({
    name: str(obj(c).name) ?? "?",
    init: true,
    spec: obj(c),
  }));
  return [...init, ...main];
}

export function containerLabel(c: Container): string {
  return `${c.init ? "init container" : "container"} '${c.name}'`;
}

// k8s.io/apimachinery pkg/api/resource/quantity.go: <signedNumber><suffix>, where number is
// digits, digits.digits, digits. or .digits and suffix is binarySI (Ki..Ei), decimalSI
// (n u m "" k M G T P E; suffix.go newSuffixer) or e/E with a signed integer exponent.
const QUANTITY =
  /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$/;
const SUFFIX_FACTOR: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** ParseQuantity: the value of a quantity string, or undefined when Kubernetes rejects it. */
export function parseQuantity(value: string): number | undefined {
  const m = QUANTITY.exec(value);
  if (!m) return undefined;
  const [, sign, digits, suffix = ""] = m;
  const factor = /^[eE][+-]?[0-9]+$/.test(suffix)
    ? 10 ** Number(suffix.slice(1))
    : (SUFFIX_FACTOR[suffix] ?? 1);
  return (sign === "-" ? -1 : 1) * Number(digits) * factor;
}

/** A Kubernetes quantity ("2", 2, "500m", "32Gi") as a number; undefined when unset or malformed. */
export function quantity(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value !== "string") return undefined;
  return parseQuantity(value.trim());
}

/** Does a label selector (matchLabels/matchExpressions) select these labels? `{}` selects all. */
export function selectorMatches(selector: unknown, labels: Record<string, string>): boolean {
  const sel = obj(selector);
  for (const [k, v] of Object.entries(strMap(sel.matchLabels))) if (labels[k] !== v) return false;
  for (const e of list(sel.matchExpressions)) {
    const { key, operator, values } = obj(e);
    const k = str(key) ?? "";
    const vals = list(values).filter((x): x is string => typeof x === "string");
    const has = k in labels;
    if (operator === "In" && !(has && vals.includes(labels[k]))) return false;
    if (operator === "NotIn" && has && vals.includes(labels[k])) return false;
    if (operator === "Exists" && !has) return false;
    if (operator === "DoesNotExist" && has) return false;
  }
  return true;
}

/** A selector that selects everything (`{}`): no labels and no expressions. */
export function selectorIsEmpty(selector: unknown): boolean {
  const sel = obj(selector);
  return Object.keys(obj(sel.matchLabels)).length === 0 && list(sel.matchExpressions).length === 0;
}

/** Service-style selector (a plain map): every key must match; an empty map selects nothing. */
export function mapSelects(selector: Record<string, string>, labels: Record<string, string>) {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}
