// Probe rules: vLLM loads weights for minutes, so probes and Pulumi's wait must allow for it.
import {
  BaseConfig,
  ENVIRONMENTS,
  STARTUP_BUDGET_ANNOTATION,
  VLLM_CONTAINER,
  roleOf,
  workloadRule,
} from "../fleet";
import { Obj, Workload, containerLabel, containersOf, obj } from "../kube";

/** The probe's handler (what it calls), without its timings. */
function handler(probe: Obj): string {
  const { httpGet, tcpSocket, exec, grpc } = probe;
  return JSON.stringify({ httpGet, tcpSocket, exec, grpc });
}

function num(value: unknown, fallback: number): number {
  return typeof value === "number" ? value : fallback;
}

/** The container that runs vLLM: named `vllm`, else the first one. */
function vllmContainer(w: Workload) {
  const main = containersOf(w.podSpec, false);
  return main.find((c) => c.name === VLLM_CONTAINER) ?? main[0];
}

interface ProbeConfig extends BaseConfig {
  /** Liveness failures before vLLM is restarted: long generations stall /health briefly. */
  minLivenessFailureThreshold: number;
}

export const probesConfigured = workloadRule<ProbeConfig>({
  name: "probes-configured",
  description:
    "Long-running containers have readiness and liveness probes that check different things; vLLM also has a startup probe and a tolerant liveness probe",
  severity: "high",
  remediationSteps:
    "Give vLLM a startupProbe and livenessProbe on /health (liveness failureThreshold >= 5) and a readinessProbe on /v1/models.",
  defaults: { environments: [...ENVIRONMENTS], minLivenessFailureThreshold: 5 },
  schema: {
    minLivenessFailureThreshold: {
      type: "integer",
      minimum: 1,
      default: 5,
      description: "Minimum livenessProbe.failureThreshold of vLLM containers",
    },
  },
  applies: (w) => w.longRunning,
  check: (w, { cfg, display, report }) => {
    const model = roleOf(w) === "model";
    for (const c of containersOf(w.podSpec, false)) {
      const where = `${display}: ${containerLabel(c)}`;
      const readiness = c.spec.readinessProbe;
      const liveness = c.spec.livenessProbe;
      if (!readiness) {
        report(
          `${where} has no readinessProbe; traffic would reach it before it can serve. Add one (vLLM: httpGet /v1/models, ready only once the model is loaded)`,
        );
      }
      if (!liveness) {
        report(
          `${where} has no livenessProbe; a hung process would never be restarted. Add one (vLLM: httpGet /health)`,
        );
      }
      if (readiness && liveness && handler(obj(readiness)) === handler(obj(liveness))) {
        report(
          `${where} uses the same check for readiness and liveness (${handler(obj(liveness))}); an overloaded pod then gets restarted instead of taken out of rotation. Point readiness at a deeper check (vLLM: /v1/models) and liveness at /health`,
        );
      }
      if (!model || c.name !== vllmContainer(w)?.name) continue;
      if (!c.spec.startupProbe) {
        report(
          `${where} has no startupProbe; loading weights takes minutes and the liveness probe would kill the pod first. Add a startupProbe on /health sized from capacity.<model>.startupBudgetMinutes`,
        );
      }
      const threshold = num(obj(liveness).failureThreshold, 3);
      if (liveness && threshold < cfg.minLivenessFailureThreshold) {
        report(
          `${where} livenessProbe.failureThreshold is ${threshold}; long generations stall /health briefly, so restart only after ${cfg.minLivenessFailureThreshold} or more consecutive failures`,
        );
      }
    }
  },
});

/** Seconds Kubernetes lets a startup probe fail before killing the container. */
export function startupProbeSeconds(probe: Obj): number {
  return (
    num(probe.initialDelaySeconds, 0) +
    num(probe.failureThreshold, 3) * num(probe.periodSeconds, 10)
  );
}

/** Pulumi's default wait for a Deployment to become ready. */
const PULUMI_DEFAULT_WAIT_SECONDS = 600;

export const startupBudgetCovered = workloadRule<BaseConfig>({
  name: "startup-budget-covered",
  description:
    "vLLM Deployments declare a startup budget, and both the startup probe and Pulumi's wait cover it",
  severity: "high",
  remediationSteps:
    "Derive startupProbe.failureThreshold * periodSeconds and the Deployment's customTimeouts from capacity.<model>.startupBudgetMinutes.",
  defaults: { environments: [...ENVIRONMENTS] },
  applies: (w) => roleOf(w) === "model" && w.longRunning,
  check: (w, { args, display, report }) => {
    const raw = w.annotations[STARTUP_BUDGET_ANNOTATION];
    const budgetMinutes = Number(raw);
    if (raw === undefined || !Number.isFinite(budgetMinutes) || budgetMinutes <= 0) {
      report(
        `${display}: annotation ${STARTUP_BUDGET_ANNOTATION} is ${raw === undefined ? "missing" : `'${raw}', not a positive number`}; set it from capacity.<model>.startupBudgetMinutes so the probes and timeouts can be checked against it`,
      );
      return;
    }
    const budget = budgetMinutes * 60;
    const c = vllmContainer(w);
    const startup = c && c.spec.startupProbe ? obj(c.spec.startupProbe) : undefined;
    if (startup) {
      const allowed = startupProbeSeconds(startup);
      if (allowed < budget) {
        report(
          `${display}: container '${c.name}' startupProbe allows ${allowed}s (initialDelaySeconds + failureThreshold x periodSeconds) but the startup budget is ${budgetMinutes} min (${budget}s); Kubernetes would kill vLLM while it loads weights. Raise failureThreshold to at least ${Math.ceil(budget / num(startup.periodSeconds, 10))}`,
        );
      }
    }
    if (w.annotations["pulumi.com/skipAwait"] === "true") return;
    const annotated = Number(w.annotations["pulumi.com/timeoutSeconds"]);
    const timeouts = args.opts?.customTimeouts;
    for (const op of ["create", "update"] as const) {
      const custom = timeouts?.[`${op}Seconds`] ?? 0;
      const wait = custom > 0 ? custom : annotated > 0 ? annotated : PULUMI_DEFAULT_WAIT_SECONDS;
      if (wait < budget) {
        report(
          `${display}: Pulumi waits ${wait}s for the Deployment on ${op} but the startup budget is ${budget}s; 'pulumi up' would fail while vLLM is still loading. Set customTimeouts.${op} to at least ${budgetMinutes} minutes (plus scheduling and image pull)`,
        );
      }
    }
  },
});
