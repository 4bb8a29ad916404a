// Cross-object rules: every model is fenced by a NetworkPolicy, scraped by a ServiceMonitor and
// registered under the DNS name of its Service; every selector selects pods of the stack.
import { StackValidationArgs } from "@pulumi/policy";
import {
  BaseConfig,
  ENVIRONMENTS,
  MODEL_LABEL,
  VLLM_PORT,
  environmentOf,
  inScope,
  resourcesOfType,
  roleOf,
  stackProps,
  stackRule,
  stackWorkloads,
} from "../fleet";
import {
  Obj,
  TYPES,
  Workload,
  describe,
  list,
  mapSelects,
  obj,
  selectorIsEmpty,
  selectorMatches,
  str,
  strMap,
  workloadOf,
} from "../kube";

const namespaceOf = (props: Obj) => str(obj(props.metadata).namespace) ?? "default";

/** Does a NetworkPolicy govern ingress? policyTypes defaults to ["Ingress"] (plus Egress if egress rules exist). */
function governsIngress(spec: Obj): boolean {
  const types = list(spec.policyTypes);
  return types.length === 0 || types.includes("Ingress");
}

interface NetworkPolicyConfig extends BaseConfig {
  requireDefaultDeny: boolean;
}

export const networkPolicySelectsModels = stackRule<NetworkPolicyConfig>({
  name: "network-policy-selects-models",
  description:
    "Every model's pods are selected by a NetworkPolicy that admits only named sources, under a namespace default-deny",
  severity: "high",
  remediationSteps:
    "Give each model a NetworkPolicy selecting its pods with ingress from the router pods and the Prometheus namespace only, and a default-deny policy in the namespace.",
  defaults: { environments: [...ENVIRONMENTS], requireDefaultDeny: true },
  schema: {
    requireDefaultDeny: {
      type: "boolean",
      default: true,
      description: "Require a default-deny ingress NetworkPolicy in each namespace with models",
    },
  },
  check: ({ args, cfg, report }) => {
    const policies = resourcesOfType(args, TYPES.networkPolicy);
    const namespacesWithModels = new Set<string>();
    for (const w of stackWorkloads(args, cfg)) {
      if (roleOf(w) !== "model") continue;
      namespacesWithModels.add(w.namespace);
      const selecting = policies.filter((p) => {
        const spec = obj(p.props.spec);
        return (
          namespaceOf(p.props) === w.namespace &&
          governsIngress(spec) &&
          selectorMatches(spec.podSelector, w.podLabels)
        );
      });
      if (!selecting.some((p) => !selectorIsEmpty(obj(p.props.spec).podSelector))) {
        report(
          `${w.display}: no NetworkPolicy selects its pods (labels ${JSON.stringify(w.podLabels)}); anything in the cluster could call the model directly, bypassing the router's API keys. Add a NetworkPolicy in ${w.namespace} whose podSelector matches them and allows ingress from the router pods and the Prometheus namespace only`,
          w.urn,
        );
      }
      for (const p of selecting) {
        const open = list(obj(p.props.spec).ingress).some(
          (rule) => list(obj(rule).from).length === 0,
        );
        if (open) {
          report(
            `${describe(p.type, p.props, p.name)}: has an ingress rule without 'from', which admits every source to ${w.display}; list the allowed sources (router pods, Prometheus namespace)`,
            p.urn,
          );
        }
      }
    }
    if (!cfg.requireDefaultDeny) return;
    for (const ns of namespacesWithModels) {
      const denies = policies.some((p) => {
        const spec = obj(p.props.spec);
        return (
          namespaceOf(p.props) === ns &&
          governsIngress(spec) &&
          selectorIsEmpty(spec.podSelector) &&
          list(spec.ingress).length === 0
        );
      });
      if (!denies) {
        report(
          `namespace ${ns}: no default-deny NetworkPolicy (podSelector: {}, policyTypes: [Ingress], no ingress rules); pods without their own policy accept traffic from anywhere. Add one`,
        );
      }
    }
  },
});

/** Namespaces a ServiceMonitor looks in for Services. */
function monitoredNamespaces(sm: Obj): string[] | "any" {
  const nsSel = obj(obj(sm.spec).namespaceSelector);
  if (nsSel.any === true) return "any";
  const names = list(nsSel.matchNames).filter((n): n is string => typeof n === "string");
  return names.length ? names : [namespaceOf(sm)];
}

export const serviceMonitorPerModel = stackRule<BaseConfig>({
  name: "service-monitor-per-model",
  description: "Every model is behind a Service that a ServiceMonitor scrapes",
  severity: "medium",
  remediationSteps:
    "Keep monitoring.serviceMonitor enabled: each model gets a ServiceMonitor selecting its Service's labels.",
  defaults: { environments: [...ENVIRONMENTS] },
  check: ({ args, cfg, report }) => {
    const services = resourcesOfType(args, TYPES.service);
    const monitors = resourcesOfType(args, TYPES.serviceMonitor);
    for (const w of stackWorkloads(args, cfg)) {
      if (roleOf(w) !== "model") continue;
      const own = services.filter(
        (s) =>
          namespaceOf(s.props) === w.namespace &&
          mapSelects(strMap(obj(s.props.spec).selector), w.podLabels),
      );
      if (!own.length) {
        report(
          `${w.display}: no Service selects its pods, so nothing can scrape or reach it; add the model's Service (port ${VLLM_PORT})`,
          w.urn,
        );
        continue;
      }
      const scraped = own.some((s) =>
        monitors.some((m) => {
          const nss = monitoredNamespaces(m.props);
          return (
            (nss === "any" || nss.includes(w.namespace)) &&
            selectorMatches(obj(m.props.spec).selector, strMap(obj(s.props.metadata).labels))
          );
        }),
      );
      if (!scraped) {
        report(
          `${w.display}: no ServiceMonitor (monitoring.coreos.com/v1) selects its Service ${own.map((s) => describe(s.type, s.props, s.name)).join(", ")}; its vLLM metrics (queue, KV cache) are not collected and the alerts cannot fire. Set monitoring.serviceMonitor: true or add a ServiceMonitor whose selector matches the Service's labels`,
          w.urn,
        );
      }
    }
  },
});

/** Registry entries: dynamic resources (any module) carrying a model name and an endpoint. */
function registryEntries(args: StackValidationArgs) {
  return args.resources
    .filter((r) => r.type.startsWith(TYPES.dynamic) && stackProps(r).modelName !== undefined)
    .map((r) => ({ urn: r.urn, name: r.name, type: r.type, props: stackProps(r) }));
}

export const registryEndpointMatchesService = stackRule<BaseConfig>({
  name: "registry-endpoint-matches-service",
  description:
    "Every registry entry points at its model's Service DNS name ({model}-{env}.{namespace}.svc.cluster.local:8000), and every model is registered",
  severity: "critical",
  remediationSteps:
    "Register models with modelEndpoint(model, environment, namespace) from components/spec/naming.ts and keep the Service named {model}-{env} on port 8000.",
  defaults: { environments: [...ENVIRONMENTS] },
  check: ({ args, cfg, report }) => {
    const services = resourcesOfType(args, TYPES.service);
    const entries = registryEntries(args);
    for (const e of entries) {
      const model = String(e.props.modelName);
      const env = String(e.props.environment);
      const ns = String(e.props.namespace);
      if (!inScope(cfg, env)) continue;
      const service = `${model}-${env}`;
      const expected = `${service}.${ns}.svc.cluster.local:${VLLM_PORT}`;
      if (e.props.endpoint !== expected) {
        report(
          `registry entry ${e.name} (model ${model}, ${env}): endpoint is '${String(e.props.endpoint)}' but the model's Service answers at '${expected}'; the router would send traffic elsewhere. Register the Service DNS name`,
          e.urn,
        );
      }
      const svc = services.find(
        (s) => str(obj(s.props.metadata).name) === service && namespaceOf(s.props) === ns,
      );
      if (!svc) {
        report(
          `registry entry ${e.name} (model ${model}, ${env}): no Service ${ns}/${service} in the stack, so '${expected}' does not resolve; create the model's Service with that explicit name`,
          e.urn,
        );
      } else if (!list(obj(svc.props.spec).ports).some((p) => obj(p).port === VLLM_PORT)) {
        report(
          `${describe(svc.type, svc.props, svc.name)}: does not expose port ${VLLM_PORT}, which registry entry ${e.name} points at; add port ${VLLM_PORT}`,
          svc.urn,
        );
      }
    }
    for (const w of stackWorkloads(args, cfg)) {
      if (roleOf(w) !== "model" || w.replicas === 0) continue;
      const model = w.podLabels[MODEL_LABEL] ?? w.labels[MODEL_LABEL];
      if (
        !entries.some((e) => e.props.modelName === model && e.props.environment === w.environment)
      ) {
        report(
          `${w.display}: serves model '${model ?? "?"}' but no registry entry registers it, so the router answers model_not_found. Register it (ModelDeployment creates the entry) or label the pods with ${MODEL_LABEL}`,
          w.urn,
        );
      }
    }
  },
});

export const selectorsMatchPods = stackRule<BaseConfig>({
  name: "selectors-match-pods",
  description:
    "Every Service selector and every NetworkPolicy podSelector selects the pods of some workload of the stack in its namespace",
  severity: "high",
  remediationSteps:
    "Make the selector a subset of the pod template labels of the workload it is for (same namespace), or remove the object.",
  defaults: { environments: [...ENVIRONMENTS] },
  check: ({ args, cfg, report }) => {
    // Every workload counts as a target, whatever its environment: only the selecting object is scoped.
    const workloads = args.resources
      .map((r) => workloadOf(r.type, stackProps(r), r.name))
      .filter((w): w is Workload => w !== undefined);
    const inNamespace = (ns: string) => workloads.filter((w) => w.namespace === ns);
    for (const s of resourcesOfType(args, TYPES.service)) {
      const spec = obj(s.props.spec);
      const selector = strMap(spec.selector);
      // No selector (or ExternalName): endpoints are managed elsewhere, nothing to match.
      if (!inScope(cfg, environmentOf(s.props)) || Object.keys(selector).length === 0) continue;
      if (spec.type === "ExternalName") continue;
      if (!inNamespace(namespaceOf(s.props)).some((w) => mapSelects(selector, w.podLabels))) {
        report(
          `${describe(s.type, s.props, s.name)}: selector ${JSON.stringify(selector)} selects no pods of the stack in ${namespaceOf(s.props)}, so the Service has no endpoints and every connection to it fails. Use the labels of the pods it fronts`,
          s.urn,
        );
      }
    }
    for (const p of resourcesOfType(args, TYPES.networkPolicy)) {
      const selector = obj(p.props.spec).podSelector;
      // An empty podSelector selects every pod in the namespace (a namespace-wide policy).
      if (!inScope(cfg, environmentOf(p.props)) || selectorIsEmpty(selector)) continue;
      if (!inNamespace(namespaceOf(p.props)).some((w) => selectorMatches(selector, w.podLabels))) {
        report(
          `${describe(p.type, p.props, p.name)}: podSelector ${JSON.stringify(selector)} selects no pods of the stack in ${namespaceOf(p.props)}, so it isolates nothing and the pods it was meant for are governed by other policies only. Use the labels of the pods it is for`,
          p.urn,
        );
      }
    }
  },
});
