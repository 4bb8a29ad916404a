// What the Kubernetes API server does to the pods of a rendered stack, in its order: API
// defaulting, LimitRanger (defaults, then min/max/ratio), resource validation, ResourceQuota
// (required resources, then totals) and Pod Security admission at the namespace's enforce level.
// Each rule is ported from the upstream source named beside it (kubernetes/kubernetes at
// 8f672ecf, kubernetes/pod-security-admission at 8f84a87c) so a stack that passes here is one
// the API server admits, not one that only passes under Pulumi mocks.
import {
  Obj,
  Workload,
  containersOf,
  describe,
  list,
  obj,
  quantity,
  str,
  strMap,
  workloadOf,
} from "../../policies/kube";
import { podSecurityFindings } from "../../policies/podSecurity";

/** One reason the API server would refuse an object (or a pod it creates). */
export interface Violation {
  /** `Kind namespace/name` of the object whose pods (or itself) are refused. */
  object: string;
  /** The container concerned (`init:<name>` for init containers), when the rule is per container. */
  container?: string;
  /** Which admission step refuses it: `LimitRanger`, `validation`, `ResourceQuota`, `PodSecurity`. */
  rule: string;
  message: string;
}

export function formatViolations(vs: Violation[]): string {
  return vs
    .map((v) => `${v.object}${v.container ? ` [${v.container}]` : ""} ${v.rule}: ${v.message}`)
    .join("\n");
}

type ResourceList = Record<string, string>;
interface Resources {
  requests: ResourceList;
  limits: ResourceList;
}
interface Ctr {
  label: string;
  spec: Obj;
  resources: Resources;
}

/** Milli-units, the precision LimitRanger compares at (requestLimitEnforcedValues). */
function milli(q: string | undefined): number | undefined {
  const v = quantity(q);
  return v === undefined ? undefined : Math.round(v * 1000);
}

// pkg/apis/core/v1/helper/helpers.go: IsNativeResource, IsOvercommitAllowed, IsExtendedResourceName.
const isNative = (name: string) => !name.includes("/") || name.includes("kubernetes.io/");
const isHugePages = (name: string) => name.startsWith("hugepages-");
const overcommitAllowed = (name: string) => isNative(name) && !isHugePages(name);
const isExtended = (name: string) => !isNative(name) && !name.startsWith("requests.");

function typeToken(o: Obj): string {
  const apiVersion = str(o.apiVersion) ?? "";
  return `kubernetes:${apiVersion.includes("/") ? apiVersion : `core/${apiVersion}`}:${str(o.kind)}`;
}

function containers(podSpec: Obj): Ctr[] {
  return containersOf(podSpec).map((c) => {
    const res = obj(c.spec.resources);
    const resources = {
      requests: strMap(res.requests) as ResourceList,
      limits: strMap(res.limits) as ResourceList,
    };
    // Quantities may be numbers in a manifest; keep them as strings like the API does.
    for (const kind of ["requests", "limits"] as const) {
      for (const [k, v] of Object.entries(obj(res[kind])))
        if (typeof v === "number") resources[kind][k] = String(v);
    }
    return { label: c.init ? `init:${c.name}` : c.name, spec: c.spec, resources };
  });
}

/**
 * pkg/apis/core/v1/defaults.go SetDefaults_Pod: a container with a limit but no request gets
 * request = limit (for Pods, so for every pod a controller creates from a template).
 */
function podDefaults(ctrs: Ctr[]): void {
  for (const c of ctrs) {
    for (const [k, v] of Object.entries(c.resources.limits))
      if (!(k in c.resources.requests)) c.resources.requests[k] = v;
  }
}

interface LimitItem {
  type: string;
  min: ResourceList;
  max: ResourceList;
  default: ResourceList;
  defaultRequest: ResourceList;
  maxLimitRequestRatio: ResourceList;
}

/**
 * pkg/apis/core/v1/defaults.go SetDefaults_LimitRangeItem (Container items): `max` becomes the
 * default limit, the default limit becomes the default request, `min` the default request.
 */
function limitItems(limitRange: Obj): LimitItem[] {
  return list(obj(limitRange.spec).limits).map((raw) => {
    const l = obj(raw);
    const item: LimitItem = {
      type: str(l.type) ?? "",
      min: strMap(l.min),
      max: strMap(l.max),
      default: strMap(l.default),
      defaultRequest: strMap(l.defaultRequest),
      maxLimitRequestRatio: strMap(l.maxLimitRequestRatio),
    };
    if (item.type === "Container") {
      for (const [k, v] of Object.entries(item.max)) item.default[k] ??= v;
      for (const [k, v] of Object.entries(item.default)) item.defaultRequest[k] ??= v;
      for (const [k, v] of Object.entries(item.min)) item.defaultRequest[k] ??= v;
    }
    return item;
  });
}

// plugin/pkg/admission/limitranger/admission.go minConstraint / maxConstraint /
// limitRequestRatioConstraint (messages as upstream).
function rangeProblems(item: LimitItem, r: Resources): string[] {
  const out: string[] = [];
  const t = item.type;
  for (const [k, min] of Object.entries(item.min)) {
    const req = r.requests[k];
    const lim = r.limits[k];
    if (req === undefined)
      out.push(`minimum ${k} usage per ${t} is ${min}.  No request is specified.`);
    else if (milli(req)! < milli(min)!)
      out.push(`minimum ${k} usage per ${t} is ${min}, but request is ${req}.`);
    else if (lim !== undefined && milli(lim)! < milli(min)!)
      out.push(`minimum ${k} usage per ${t} is ${min}, but limit is ${lim}.`);
  }
  for (const [k, max] of Object.entries(item.max)) {
    const req = r.requests[k];
    const lim = r.limits[k];
    if (lim === undefined)
      out.push(`maximum ${k} usage per ${t} is ${max}.  No limit is specified.`);
    else if (milli(lim)! > milli(max)!)
      out.push(`maximum ${k} usage per ${t} is ${max}, but limit is ${lim}.`);
    else if (req !== undefined && milli(req)! > milli(max)!)
      out.push(`maximum ${k} usage per ${t} is ${max}, but request is ${req}.`);
  }
  for (const [k, ratio] of Object.entries(item.maxLimitRequestRatio)) {
    const req = milli(r.requests[k]) ?? 0;
    const lim = milli(r.limits[k]) ?? 0;
    if (req === 0)
      out.push(
        `${k} max limit to request ratio per ${t} is ${ratio}, but no request is specified or request is 0.`,
      );
    else if (lim === 0)
      out.push(
        `${k} max limit to request ratio per ${t} is ${ratio}, but no limit is specified or limit is 0.`,
      );
    else if ((lim / req) * 1000 > milli(ratio)!)
      out.push(
        `${k} max limit to request ratio per ${t} is ${ratio}, but provided ratio is ${(lim / req).toFixed(6)}.`,
      );
  }
  return out;
}

/**
 * A pod's effective requests or limits: the larger of the sum over its containers and any one
 * init container (k8s.io/component-helpers/resource PodRequests; LimitRanger's Pod items).
 */
function podTotal(ctrs: Ctr[], kind: keyof Resources): Record<string, number> {
  const sum: Record<string, number> = {};
  const init: Record<string, number> = {};
  for (const c of ctrs) {
    const into = c.label.startsWith("init:") ? init : sum;
    for (const [k, v] of Object.entries(c.resources[kind])) {
      const m = milli(v) ?? 0;
      into[k] = into === init ? Math.max(into[k] ?? 0, m) : (into[k] ?? 0) + m;
    }
  }
  for (const [k, v] of Object.entries(init)) sum[k] = Math.max(sum[k] ?? 0, v);
  return sum;
}

function fromMilli(m: Record<string, number>): ResourceList {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, `${v}m`]));
}

/** plugin/pkg/admission/limitranger/admission.go PodLimitFunc: merge defaults, then enforce. */
function limitRanger(
  limitRange: Obj,
  ctrs: Ctr[],
  report: (c: Ctr | undefined, m: string) => void,
) {
  const items = limitItems(limitRange);
  // defaultContainerResourceRequirements + mergeContainerResources (containers and init containers).
  for (const item of items.filter((i) => i.type === "Container")) {
    for (const c of ctrs) {
      for (const [k, v] of Object.entries(item.default)) c.resources.limits[k] ??= v;
      for (const [k, v] of Object.entries(item.defaultRequest)) c.resources.requests[k] ??= v;
    }
  }
  for (const item of items) {
    if (item.type === "Container")
      for (const c of ctrs) for (const p of rangeProblems(item, c.resources)) report(c, p);
    if (item.type === "Pod") {
      const pod = {
        requests: fromMilli(podTotal(ctrs, "requests")),
        limits: fromMilli(podTotal(ctrs, "limits")),
      };
      for (const p of rangeProblems(item, pod)) report(undefined, p);
    }
  }
}

/**
 * pkg/apis/core/validation/validation.go ValidateContainerResourceRequirements and
 * ValidateResourceQuantityValue: request <= limit; extended resources and hugepages cannot be
 * overcommitted (a request needs an equal limit); extended resources are whole numbers.
 */
function validateResources(c: Ctr): string[] {
  const out: string[] = [];
  const { requests, limits } = c.resources;
  for (const [kind, rl] of [
    ["limits", limits],
    ["requests", requests],
  ] as const) {
    for (const [k, v] of Object.entries(rl)) {
      const m = milli(v);
      if (m === undefined) out.push(`resources.${kind}[${k}]: '${v}' is not a quantity`);
      else if (m < 0) out.push(`resources.${kind}[${k}]: must be greater than or equal to 0`);
      else if (isExtended(k) && m % 1000 !== 0)
        out.push(`resources.${kind}[${k}]: ${v}: must be an integer`);
    }
  }
  for (const [k, req] of Object.entries(requests)) {
    const lim = limits[k];
    if (lim !== undefined) {
      if (!overcommitAllowed(k) && milli(req) !== milli(lim))
        out.push(`resources.requests[${k}]: ${req}: must be equal to ${k} limit of ${lim}`);
      else if (milli(req)! > milli(lim)!)
        out.push(
          `resources.requests[${k}]: ${req}: must be less than or equal to ${k} limit of ${lim}`,
        );
    } else if (!overcommitAllowed(k)) {
      out.push(`resources.limits[${k}]: Limit must be set for non overcommitable resources`);
    }
  }
  return out;
}

// plugin/pkg/admission/resourcequota + pkg/quota/v1/evaluator/core/pods.go.
/** Quota names that force every container to set the resource (`validationSet`, "do not add more"). */
const QUOTA_VALIDATION_SET = new Set([
  "cpu",
  "memory",
  "requests.cpu",
  "requests.memory",
  "limits.cpu",
  "limits.memory",
]);
const COMPUTE = ["cpu", "memory", "ephemeral-storage"];

/** podComputeUsageHelper: the quota names one container's (or pod's) resources count towards. */
function quotaUsage(requests: Record<string, number>, limits: Record<string, number>) {
  const usage: Record<string, number> = { pods: 1000 };
  for (const r of COMPUTE) {
    if (r in requests) usage[r] = usage[`requests.${r}`] = requests[r];
    if (r in limits) usage[`limits.${r}`] = limits[r];
  }
  // Extended resources count only under `requests.<name>`: overcommit is impossible for them.
  for (const [r, v] of Object.entries(requests)) if (isExtended(r)) usage[`requests.${r}`] = v;
  return usage;
}

const toMilli = (rl: ResourceList) =>
  Object.fromEntries(Object.entries(rl).map(([k, v]) => [k, milli(v) ?? 0]));

/** Pods a workload may run at once: replicas, raised to an HPA's maximum, plus rollout surge. */
function podCount(w: Workload, spec: Obj, all: Obj[]): number {
  let n = w.replicas;
  for (const o of all) {
    const s = obj(o.spec);
    const target = obj(s.scaleTargetRef);
    if (
      str(o.kind) === "HorizontalPodAutoscaler" &&
      (str(obj(o.metadata).namespace) ?? "default") === w.namespace &&
      str(target.kind) === w.kind &&
      str(target.name) === w.name
    )
      n = Math.max(n, Number(s.maxReplicas ?? n));
  }
  if (w.kind !== "Deployment" || str(obj(spec.strategy).type) === "Recreate") return n;
  // pkg/apis/apps/v1/defaults.go: maxSurge defaults to 25%; percentages round up
  // (pkg/controller/deployment/util ResolveFenceposts).
  const surge = obj(obj(spec.strategy).rollingUpdate).maxSurge ?? "25%";
  const extra =
    typeof surge === "number"
      ? surge
      : Math.ceil((n * Number(String(surge).replace("%", ""))) / 100);
  return n + extra;
}

/** The metadata of the pods an object creates (annotations matter to Pod Security). */
function podMeta(o: Obj): Obj {
  const spec = obj(o.spec);
  if (str(o.kind) === "Pod") return obj(o.metadata);
  const template =
    str(o.kind) === "CronJob" ? obj(obj(spec.jobTemplate).spec).template : spec.template;
  return obj(obj(template).metadata);
}

const LEVELS = ["privileged", "baseline", "restricted"] as const;
type Level = (typeof LEVELS)[number];

/**
 * Admits every pod the objects would create (one per pod template), against the LimitRanges,
 * ResourceQuotas and Namespace Pod Security labels among the same objects. Returns every refusal.
 */
export function admit(objects: unknown[]): Violation[] {
  const all = objects.map(obj);
  const out: Violation[] = [];
  const inNs = (kind: string, ns: string) =>
    all.filter((o) => str(o.kind) === kind && (str(obj(o.metadata).namespace) ?? "default") === ns);
  const nsLevel = (ns: string): Level => {
    const n = all.find((o) => str(o.kind) === "Namespace" && str(obj(o.metadata).name) === ns);
    const l = strMap(obj(n?.metadata).labels)["pod-security.kubernetes.io/enforce"];
    return (LEVELS as readonly string[]).includes(l) ? (l as Level) : "privileged";
  };

  /** Per namespace and quota name: [usage in milli, contributing workload] for the totals check. */
  const charged: { ns: string; object: string; usage: Record<string, number> }[] = [];
  for (const o of all) {
    const w = workloadOf(typeToken(o), o, str(obj(o.metadata).name) ?? "?");
    if (!w) continue;
    const object = w.display;
    const podSpec = structuredClone(w.podSpec);
    const ctrs = containers(podSpec);
    const report = (rule: string) => (c: Ctr | undefined, message: string) =>
      out.push({ object, ...(c ? { container: c.label } : {}), rule, message });

    podDefaults(ctrs);
    for (const lr of inNs("LimitRange", w.namespace)) limitRanger(lr, ctrs, report("LimitRanger"));
    for (const c of ctrs) for (const m of validateResources(c)) report("validation")(c, m);

    for (const q of inNs("ResourceQuota", w.namespace)) {
      const hard = Object.keys(strMap(obj(q.spec).hard));
      const required = hard.filter((h) => QUOTA_VALIDATION_SET.has(h));
      for (const c of ctrs) {
        const usage = quotaUsage(toMilli(c.resources.requests), toMilli(c.resources.limits));
        const missing = required.filter((r) => !(r in usage));
        if (missing.length)
          report("ResourceQuota")(
            c,
            `must specify ${missing.join(", ")} (quota ${str(obj(q.metadata).name)} constrains it)`,
          );
      }
    }
    const usage = quotaUsage(podTotal(ctrs, "requests"), podTotal(ctrs, "limits"));
    const pods = podCount(w, obj(o.spec), all);
    charged.push({
      ns: w.namespace,
      object,
      usage: Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, v * pods])),
    });

    // pod-security-admission at the enforce label of the pod's namespace (privileged, when the
    // program renders no Namespace or no label, checks nothing).
    const level = nsLevel(w.namespace);
    const findings = level === "privileged" ? [] : podSecurityFindings(level, podMeta(o), podSpec);
    for (const f of findings) {
      out.push({
        object,
        ...(f.container
          ? { container: `${f.container.init ? "init:" : ""}${f.container.name}` }
          : {}),
        rule: "PodSecurity",
        message: `${f.check}: ${f.message}`,
      });
    }
  }

  for (const q of all.filter((o) => str(o.kind) === "ResourceQuota")) {
    const ns = str(obj(q.metadata).namespace) ?? "default";
    const object = describe(typeToken(q), q, "?");
    for (const [name, hard] of Object.entries(strMap(obj(q.spec).hard))) {
      // pods.go isExtendedResourceNameForQuota: an extended resource is only tracked as `requests.<name>`.
      if (name.startsWith("limits.") && isExtended(name.slice("limits.".length))) {
        out.push({
          object,
          rule: "ResourceQuota",
          message: `${name} is never enforced: extended resources are quota'd only as requests.${name.slice(7)}`,
        });
        continue;
      }
      const users = charged.filter((c) => c.ns === ns && (c.usage[name] ?? 0) > 0);
      const total = users.reduce((s, c) => s + c.usage[name], 0);
      if (total > milli(hard)!) {
        out.push({
          object,
          rule: "ResourceQuota",
          message: `exceeded quota: ${name} ${total / 1000} > hard ${hard} (${users.map((u) => `${u.object}: ${u.usage[name] / 1000}`).join(", ")})`,
        });
      }
    }
  }
  return out;
}
