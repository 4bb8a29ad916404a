// GPU rules: whole GPUs requested exactly, on GPU nodes, within the environment's budget.
import {
  ACCELERATOR_ANNOTATION,
  BaseConfig,
  ENVIRONMENTS,
  environmentOf,
  resourcesOfType,
  roleOf,
  stackRule,
  stackWorkloads,
  workloadRule,
} from "../fleet";
import {
  Container,
  Obj,
  TYPES,
  Workload,
  containerLabel,
  containersOf,
  describe,
  list,
  obj,
  quantity,
  str,
  strMap,
} from "../kube";

interface GpuConfig extends BaseConfig {
  /** Extended resource names that are GPUs. */
  gpuResources: string[];
}

const GPU_RESOURCES = ["nvidia.com/gpu", "amd.com/gpu", "gpu.intel.com/i915", "gpu.intel.com/xe"];
const gpuSchema = {
  gpuResources: {
    type: "array" as const,
    items: { type: "string" as const },
    default: GPU_RESOURCES,
    description: "Extended resource names that count as GPUs",
  },
};

interface GpuUse {
  resource: string;
  request: unknown;
  limit: unknown;
}

/** GPU resources a container names in its requests or limits. */
function gpuUses(c: Container, gpuResources: string[]): GpuUse[] {
  const res = obj(c.spec.resources);
  const requests = obj(res.requests);
  const limits = obj(res.limits);
  return gpuResources
    .filter((g) => g in requests || g in limits)
    .map((g) => ({ resource: g, request: requests[g], limit: limits[g] }));
}

/** GPUs one pod holds: Kubernetes defaults an extended resource's request to its limit. */
export function podGpus(podSpec: Obj, gpuResources: string[]): Record<string, number> {
  const total: Record<string, number> = {};
  const initMax: Record<string, number> = {};
  for (const c of containersOf(podSpec)) {
    for (const u of gpuUses(c, gpuResources)) {
      const n = quantity(u.request ?? u.limit) ?? 0;
      if (c.init) initMax[u.resource] = Math.max(initMax[u.resource] ?? 0, n);
      else total[u.resource] = (total[u.resource] ?? 0) + n;
    }
  }
  for (const [g, n] of Object.entries(initMax)) total[g] = Math.max(total[g] ?? 0, n);
  return total;
}

function requestsGpu(w: Workload, gpuResources: string[]): boolean {
  return containersOf(w.podSpec).some((c) => gpuUses(c, gpuResources).length > 0);
}

interface RequestsConfig extends GpuConfig {
  /** Environments where a model annotated `vllm.ai/accelerator: none` may run without GPUs. */
  gpuOptionalEnvironments: string[];
}

export const gpuRequestsEqualLimits = workloadRule<RequestsConfig>({
  name: "gpu-requests-equal-limits",
  description:
    "vLLM pods request whole GPUs, with the GPU request equal to the limit on every container (outside production a model may be declared GPU-less)",
  severity: "high",
  remediationSteps:
    "Set resources.limits[<gpu>] to capacity.<model>.gpu.count and either leave requests unset or equal to it.",
  defaults: {
    environments: [...ENVIRONMENTS],
    gpuResources: GPU_RESOURCES,
    gpuOptionalEnvironments: ["development", "staging"],
  },
  schema: {
    ...gpuSchema,
    gpuOptionalEnvironments: {
      type: "array",
      items: { type: "string", enum: [...ENVIRONMENTS] },
      default: ["development", "staging"],
      description: `Environments where a model annotated ${ACCELERATOR_ANNOTATION}: none may request no GPU`,
    },
  },
  check: (w, { args, cfg, display, report }) => {
    const role = roleOf(w);
    if (role !== "model" && !requestsGpu(w, cfg.gpuResources)) {
      return;
    }
    if (role === "model" && !requestsGpu(w, cfg.gpuResources)) {
      // Unlabelled objects count as production (strictest).
      const env = environmentOf(args.props as Obj) ?? "production";
      const declared = w.annotations[ACCELERATOR_ANNOTATION] === "none";
      if (declared && cfg.gpuOptionalEnvironments.includes(env)) return;
      report(
        declared
          ? `${display}: is declared GPU-less (${ACCELERATOR_ANNOTATION}: none) but ${env} models must run on GPUs; set capacity.<model>.gpu.count`
          : `${display}: the vLLM pod requests no GPU (${cfg.gpuResources.join(", ")}); vLLM needs one, so set resources.limits["nvidia.com/gpu"] on container 'vllm' to capacity.<model>.gpu.count`,
      );
      return;
    }
    for (const c of containersOf(w.podSpec)) {
      for (const u of gpuUses(c, cfg.gpuResources)) {
        const limit = quantity(u.limit);
        const request = u.request === undefined ? limit : quantity(u.request);
        const where = `${display}: ${containerLabel(c)}`;
        if (u.limit === undefined) {
          report(
            `${where} requests ${String(u.request)} ${u.resource} without a limit; set limits["${u.resource}"] to the same whole number`,
          );
        } else if (limit === undefined || !Number.isInteger(limit) || limit < 1) {
          report(
            `${where} has limits["${u.resource}"] = ${JSON.stringify(u.limit)}; GPUs are whole devices, use an integer >= 1`,
          );
        } else if (request !== limit) {
          report(
            `${where} requests ${String(u.request)} ${u.resource} but limits ${String(u.limit)}; GPUs cannot be overcommitted, set requests equal to limits`,
          );
        }
      }
    }
  },
});

interface NodeSelectorConfig extends GpuConfig {
  /** Node labels that pin a pod to GPU nodes (GPU feature discovery, cloud accelerator labels). */
  gpuNodeLabels: string[];
}

// The vendors' own node labels (components/spec/accelerators.ts says where each comes from), then
// the clouds' accelerator labels.
const GPU_NODE_LABELS = [
  "nvidia.com/gpu.product",
  "nvidia.com/gpu.present",
  "feature.node.kubernetes.io/amd-gpu",
  "amd.com/gpu.product-name",
  "intel.feature.node.kubernetes.io/gpu",
  "gpu.intel.com/product",
  "cloud.google.com/gke-accelerator",
  "karpenter.k8s.aws/instance-gpu-name",
];

/** Keys a pod requires of its node: nodeSelector plus required node-affinity expressions. */
function requiredNodeLabels(podSpec: Obj): string[] {
  const keys = Object.keys(strMap(podSpec.nodeSelector));
  const required = obj(
    obj(obj(podSpec.affinity).nodeAffinity).requiredDuringSchedulingIgnoredDuringExecution,
  );
  for (const term of list(required.nodeSelectorTerms)) {
    for (const e of list(obj(term).matchExpressions)) {
      const op = str(obj(e).operator);
      if (op === "In" || op === "Exists") keys.push(str(obj(e).key) ?? "");
    }
  }
  return keys;
}

export const gpuNodeSelector = workloadRule<NodeSelectorConfig>({
  name: "gpu-node-selector",
  description: "Pods that request GPUs select GPU nodes (nodeSelector or required node affinity)",
  severity: "medium",
  remediationSteps:
    "Set capacity.<model>.gpu.resourceName to a vendor with default node labels (nvidia.com/gpu, amd.com/gpu, gpu.intel.com/i915, gpu.intel.com/xe) or set capacity.<model>.gpu.nodeSelector to the labels of its GPU nodes.",
  defaults: {
    environments: [...ENVIRONMENTS],
    gpuResources: GPU_RESOURCES,
    gpuNodeLabels: GPU_NODE_LABELS,
  },
  schema: {
    ...gpuSchema,
    gpuNodeLabels: {
      type: "array",
      items: { type: "string" },
      default: GPU_NODE_LABELS,
      description: "Node label keys that identify GPU nodes",
    },
  },
  applies: (w, cfg) => requestsGpu(w, cfg.gpuResources),
  check: (w, { cfg, display, report }) => {
    const keys = requiredNodeLabels(w.podSpec);
    if (!keys.some((k) => cfg.gpuNodeLabels.includes(k))) {
      report(
        `${display}: requests GPUs but its nodeSelector (${keys.join(", ") || "none"}) does not select GPU nodes; without it the pod lands on CPU nodes and stays Pending. Set capacity.<model>.gpu.product or a nodeSelector with one of ${cfg.gpuNodeLabels.join(", ")}`,
      );
    }
  },
});

interface QuotaConfig extends GpuConfig {
  /** Count the extra pods a RollingUpdate surges (all models may roll at once on a promotion). */
  includeRolloutSurge: boolean;
}

/** Extra pods a Deployment creates during a rolling update (Kubernetes default maxSurge 25%). */
export function surgePods(type: string, props: Obj, replicas: number): number {
  if (type !== TYPES.deployment || replicas === 0) return 0;
  const strategy = obj(obj(props.spec).strategy);
  if (strategy.type === "Recreate") return 0;
  const surge = obj(strategy.rollingUpdate).maxSurge ?? "25%";
  if (typeof surge === "number") return surge;
  const pct = /^(\d+)%$/.exec(String(surge));
  return pct ? Math.ceil((Number(pct[1]) * replicas) / 100) : Number(surge) || 0;
}

export const gpuQuota = stackRule<QuotaConfig>({
  name: "gpu-quota",
  description:
    "The GPUs all workloads of a namespace request (including rollout surge) fit its ResourceQuota",
  severity: "high",
  remediationSteps:
    "Raise gpuQuota in the stack config, lower capacity.<model>.replicas or gpu.count, or disable a model.",
  defaults: {
    environments: [...ENVIRONMENTS],
    gpuResources: GPU_RESOURCES,
    includeRolloutSurge: true,
  },
  schema: {
    ...gpuSchema,
    includeRolloutSurge: {
      type: "boolean",
      default: true,
      description: "Count the pods a RollingUpdate surges on top of the replicas",
    },
  },
  check: ({ args, cfg, report }) => {
    const needed = new Map<string, { steady: number; surge: number; parts: string[] }>();
    for (const w of stackWorkloads(args, cfg)) {
      for (const [gpu, perPod] of Object.entries(podGpus(w.podSpec, cfg.gpuResources))) {
        if (perPod === 0) continue;
        const key = `${w.namespace}\u0000${gpu}`;
        const n = needed.get(key) ?? { steady: 0, surge: 0, parts: [] };
        // An autoscaled GPU workload must fit at its maximum.
        const replicas = w.maxReplicas;
        const surge = cfg.includeRolloutSurge ? surgePods(w.type, w.props, replicas) * perPod : 0;
        n.steady += replicas * perPod;
        n.surge += surge;
        n.parts.push(
          `${w.name} ${replicas}x${perPod}${surge ? ` (+${surge} during rollout)` : ""}`,
        );
        needed.set(key, n);
      }
    }
    const quotas = resourcesOfType(args, TYPES.resourceQuota);
    for (const [key, n] of needed) {
      const [ns, gpu] = key.split("\u0000");
      const inNs = quotas.filter((q) => str(obj(q.props.metadata).namespace) === ns);
      const hard = inNs
        .map((q) => ({ q, limit: quantity(obj(obj(q.props.spec).hard)[`requests.${gpu}`]) }))
        .filter((x): x is { q: (typeof inNs)[number]; limit: number } => x.limit !== undefined)
        .sort((a, b) => a.limit - b.limit)[0];
      if (!hard) {
        report(
          `namespace ${ns}: workloads request ${n.steady} ${gpu} but no ResourceQuota in the stack sets requests.${gpu}; add the environment's GPU budget (gpuQuota) as a ResourceQuota`,
        );
        continue;
      }
      const total = n.steady + n.surge;
      if (total > hard.limit) {
        report(
          `${describe(TYPES.resourceQuota, hard.q.props, hard.q.name)}: allows ${hard.limit} ${gpu} but the namespace needs ${total} (${n.parts.join(", ")}); raise gpuQuota, lower replicas or gpu.count, or set maxSurge: 0 so rollouts do not need extra GPUs`,
          hard.q.urn,
        );
      }
    }
  },
});
