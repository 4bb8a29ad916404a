// Availability: enough replicas in production, spread over nodes, disruption budgets that protect
// without blocking node drains, and autoscalers that own their replica counts.
import {
  BaseConfig,
  ENVIRONMENTS,
  HPA_TYPE,
  MODEL_LABEL,
  Role,
  environmentOf,
  inScope,
  resourcesOfType,
  roleOf,
  stackProps,
  stackRule,
  stackWorkloads,
  workloadRule,
} from "../fleet";
import { Obj, TYPES, describe, list, obj, selectorMatches, str, workloadOf } from "../kube";

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

/** The node label every node carries: its own name (a topology domain of one node). */
export const HOSTNAME_KEY = "kubernetes.io/hostname";

/**
 * Does a term (topology spread constraint or pod anti-affinity term) spread these pods over
 * nodes? Its topologyKey must be the hostname and its labelSelector must select the pods
 * themselves: a null selector matches no pods (kubernetes/api core/v1 types.go,
 * PodAffinityTerm.labelSelector and TopologySpreadConstraint.labelSelector).
 */
function spreadsOverNodes(term: Obj, podLabels: Record<string, string>): boolean {
  return (
    term.topologyKey === HOSTNAME_KEY &&
    term.labelSelector !== undefined &&
    selectorMatches(term.labelSelector, podLabels)
  );
}

export const replicasSpreadAcrossNodes = workloadRule<{ environments: string[]; roles: Role[] }>({
  name: "replicas-spread-across-nodes",
  description:
    "A model with more than one replica spreads its pods across nodes (topologySpreadConstraints or pod anti-affinity on kubernetes.io/hostname), so one node failure does not take every replica",
  severity: "medium",
  remediationSteps:
    "Add to the pod template a topologySpreadConstraint { maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: <the Deployment's selector> }, or a podAntiAffinity term on kubernetes.io/hostname selecting the same pods.",
  defaults: { environments: [...ENVIRONMENTS], roles: ["model"] },
  schema: { roles: { ...rolesSchema, default: ["model"] } },
  applies: (w, cfg) => cfg.roles.includes(roleOf(w)) && w.replicas > 1,
  check: (w, { display, report }) => {
    const spread = list(w.podSpec.topologySpreadConstraints).map(obj);
    const anti = obj(obj(w.podSpec.affinity).podAntiAffinity);
    const terms = [
      ...spread,
      ...list(anti.requiredDuringSchedulingIgnoredDuringExecution).map(obj),
      ...list(anti.preferredDuringSchedulingIgnoredDuringExecution).map((p) =>
        obj(obj(p).podAffinityTerm),
      ),
    ];
    if (!terms.some((t) => spreadsOverNodes(t, w.podLabels))) {
      report(
        `${display}: runs ${w.replicas} replicas but nothing spreads them across nodes (no topologySpreadConstraint or pod anti-affinity on ${HOSTNAME_KEY} selecting its pods ${JSON.stringify(w.podLabels)}); the scheduler may put them all on one node, which then takes the model down alone. Add a topologySpreadConstraint with topologyKey ${HOSTNAME_KEY}, whenUnsatisfiable: ScheduleAnyway and the Deployment's selector`,
      );
    }
  },
});

/** What the program declared for an object: pulumi-kubernetes keeps its inputs under `__inputs` in the outputs stack rules see. */
function declared(props: Obj): Obj {
  return props.__inputs !== undefined ? obj(props.__inputs) : props;
}

export const autoscaledReplicasUnset = stackRule<BaseConfig>({
  name: "autoscaled-replicas-unset",
  description:
    "A workload scaled by a HorizontalPodAutoscaler does not also set spec.replicas, which would reset the autoscaler's count on every pulumi up",
  severity: "high",
  remediationSteps:
    'Omit spec.replicas from a Deployment or StatefulSet an HPA scales (its minReplicas sets the floor), or give the resource ignoreChanges: ["spec.replicas"].',
  defaults: { environments: [...ENVIRONMENTS] },
  check: ({ args, cfg, report }) => {
    const hpas = args.resources.filter((r) => HPA_TYPE.test(r.type)).map((r) => stackProps(r));
    for (const r of args.resources) {
      const props = stackProps(r);
      const w = workloadOf(r.type, props, r.name);
      if (!w || !inScope(cfg, environmentOf(props))) continue;
      const hpa = hpas.find((h) => {
        const target = obj(obj(h.spec).scaleTargetRef);
        return (
          target.kind === w.kind &&
          target.name === w.name &&
          (str(obj(h.metadata).namespace) ?? "default") === w.namespace
        );
      });
      // Outputs always hold spec.replicas (the API server defaults it, the HPA changes it):
      // only what the program declared counts.
      const replicas = obj(declared(props).spec).replicas;
      if (!hpa || replicas === undefined || r.opts.ignoreChanges.includes("spec.replicas")) {
        continue;
      }
      report(
        `${w.display}: sets spec.replicas: ${String(replicas)} but ${describe("HorizontalPodAutoscaler", hpa, "?")} scales it; every pulumi up resets the count to ${String(replicas)}, scaling the workload down under load until the autoscaler reacts. Omit spec.replicas (the HPA's minReplicas is the floor) or add ignoreChanges: ["spec.replicas"]`,
        r.urn,
      );
    }
  },
});
