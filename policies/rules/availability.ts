// Availability: enough replicas in production, and disruption budgets that protect without
// blocking node drains.
import {
  BaseConfig,
  ENVIRONMENTS,
  MODEL_LABEL,
  Role,
  resourcesOfType,
  roleOf,
  stackRule,
  stackWorkloads,
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

export const minReplicas = stackRule<ReplicasConfig>({
  name: "min-replicas",
  description:
    "Production models and routers run at least two replicas (or an autoscaler minimum of two), so a node loss or rollout keeps them up",
  severity: "high",
  remediationSteps:
    "Set capacity.<model>.replicas (and router.replicas) to 2 or more in Pulumi.production.yaml, within gpuQuota.",
  defaults: { environments: ["production"], minReplicas: 2, roles: ["router", "model"] },
  schema: {
    minReplicas: { type: "integer", minimum: 1, default: 2, description: "Minimum replicas" },
    roles: rolesSchema,
  },
  check: ({ args, cfg, report }) => {
    for (const w of stackWorkloads(args, cfg)) {
      if (w.kind !== "Deployment" || !cfg.roles.includes(roleOf(w))) continue;
      // Zero replicas is a model switched off (capacity.<model>.enabled: false), not a thin one.
      if ((w.replicas === 0 && !w.autoscaler) || w.minReplicas >= cfg.minReplicas) continue;
      const fix =
        roleOf(w) === "router"
          ? "router.replicas"
          : `capacity.${w.podLabels[MODEL_LABEL] ?? "<model>"}.replicas`;
      const runs = w.autoscaler
        ? `may scale down to ${w.minReplicas} (${w.autoscaler} minReplicas)`
        : `runs ${w.minReplicas} replica${w.minReplicas === 1 ? "" : "s"}`;
      report(
        `${w.display}: ${runs}; production needs at least ${cfg.minReplicas} so a node loss or rollout does not take it down. Raise ${fix} (and gpuQuota if needed)`,
        w.urn,
      );
    }
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
      // With an autoscaler the floor matters: that is how many pods a drain could take at once.
      if (!cfg.roles.includes(roleOf(w)) || !w.longRunning || w.minReplicas < 2) continue;
      const covering = pdbs.filter(
        (p) =>
          (str(obj(p.props.metadata).namespace) ?? "default") === w.namespace &&
          selectorMatches(obj(p.props.spec).selector, w.podLabels),
      );
      if (!covering.length) {
        report(
          `${w.display}: ${w.minReplicas} replicas but no PodDisruptionBudget selects its pods; a node drain could evict them all at once. Add a PodDisruptionBudget in ${w.namespace} with maxUnavailable: 1 and selector ${JSON.stringify(w.podLabels)}`,
          w.urn,
        );
      }
      for (const p of covering) {
        const allowed = allowedDisruptions(obj(p.props.spec), w.minReplicas);
        if (allowed < 1) {
          report(
            `${describe(p.type, p.props, p.name)}: allows ${allowed} of ${w.minReplicas} pods of ${w.display} to be disrupted, which blocks node drains and cluster upgrades forever. Use maxUnavailable: 1`,
            p.urn,
          );
        }
      }
    }
  },
});
