// Availability: enough replicas in production, and disruption budgets that protect without
// blocking node drains.
import {
  BaseConfig,
  ENVIRONMENTS,
  Role,
  resourcesOfType,
  roleOf,
  stackRule,
  stackWorkloads,
  workloadRule,
} from "../fleet";
import { Obj, TYPES, describe, obj, selectorMatches, str } from "../kube";

interface ReplicasConfig extends BaseConfig {
  minReplicas: number;
  roles: Role[];
}

const rolesSchema = {
  type: "array" as const,
  items: { type: "string" as const, enum: ["router", "model", "other"] },
  default: ["router", "model"],
  description: "Workload roles the rule checks",
};

export const minReplicas = workloadRule<ReplicasConfig>({
  name: "min-replicas",
  description:
    "Production models and routers run at least two replicas, so a node loss or rollout keeps them up",
  severity: "high",
  remediationSteps:
    "Set capacity.<model>.replicas (and router.replicas) to 2 or more in Pulumi.production.yaml, within gpuQuota.",
  defaults: { environments: ["production"], minReplicas: 2, roles: ["router", "model"] },
  schema: {
    minReplicas: { type: "integer", minimum: 1, default: 2, description: "Minimum replicas" },
    roles: rolesSchema,
  },
  applies: (w, cfg) => w.kind === "Deployment" && cfg.roles.includes(roleOf(w)),
  check: (w, { cfg, display, report }) => {
    // Zero replicas is a model switched off (capacity.<model>.enabled: false), not a thin one.
    if (w.replicas === 0 || w.replicas >= cfg.minReplicas) return;
    report(
      `${display}: runs ${w.replicas} replica${w.replicas === 1 ? "" : "s"}; production needs at least ${cfg.minReplicas} so a node loss or rollout does not take it down. Raise ${roleOf(w) === "router" ? "router.replicas" : `capacity.${w.podLabels["vllm.ai/model"] ?? "<model>"}.replicas`} (and gpuQuota if needed)`,
    );
  },
});

/** Pods a PDB lets go at once for a workload of `replicas` pods. */
export function allowedDisruptions(pdbSpec: Obj, replicas: number): number {
  const pct = (v: string) => Number(/^(\d+)%$/.exec(v)?.[1] ?? NaN);
  const { maxUnavailable, minAvailable } = pdbSpec;
  if (maxUnavailable !== undefined) {
    if (typeof maxUnavailable === "number") return maxUnavailable;
    return Math.ceil((pct(String(maxUnavailable)) * replicas) / 100);
  }
  if (minAvailable !== undefined) {
    const min =
      typeof minAvailable === "number"
        ? minAvailable
        : Math.ceil((pct(String(minAvailable)) * replicas) / 100);
    return replicas - min;
  }
  // Neither set: the API rejects it; treat as blocking.
  return 0;
}

export const pdbForReplicatedWorkloads = stackRule<{ environments: string[]; roles: Role[] }>({
  name: "pdb-for-replicated-workloads",
  description:
    "Every model and router Deployment with two or more replicas has a PodDisruptionBudget that still lets one pod go",
  severity: "medium",
  remediationSteps:
    "Create a PodDisruptionBudget with maxUnavailable: 1 and the Deployment's selector for every workload with replicas > 1.",
  defaults: { environments: [...ENVIRONMENTS], roles: ["router", "model"] },
  schema: { roles: rolesSchema },
  check: ({ args, cfg, report }) => {
    const pdbs = resourcesOfType(args, TYPES.pdb);
    for (const w of stackWorkloads(args, cfg)) {
      if (!cfg.roles.includes(roleOf(w)) || !w.longRunning || w.replicas < 2) continue;
      const covering = pdbs.filter(
        (p) =>
          (str(obj(p.props.metadata).namespace) ?? "default") === w.namespace &&
          selectorMatches(obj(p.props.spec).selector, w.podLabels),
      );
      if (!covering.length) {
        report(
          `${w.display}: ${w.replicas} replicas but no PodDisruptionBudget selects its pods; a node drain could evict them all at once. Add a PodDisruptionBudget in ${w.namespace} with maxUnavailable: 1 and selector ${JSON.stringify(w.podLabels)}`,
          w.urn,
        );
      }
      for (const p of covering) {
        const allowed = allowedDisruptions(obj(p.props.spec), w.replicas);
        if (allowed < 1) {
          report(
            `${describe(p.type, p.props, p.name)}: allows ${allowed} of ${w.replicas} pods of ${w.display} to be disrupted, which blocks node drains and cluster upgrades forever. Use maxUnavailable: 1`,
            p.urn,
          );
        }
      }
    }
  },
});
