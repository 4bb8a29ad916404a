// Kubernetes objects shaped as the program builds them (a compliant production fleet), and
// helpers that call policy rules directly the way the engine does.
import {
  PolicyResource,
  PolicyResourceOptions,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationPolicy,
} from "@pulumi/policy";
import { EvaluatedResource } from "../../policies/evaluate";
import { TYPES } from "../../policies/kube";

export type Props = Record<string, unknown>;
/** A JSON-shaped fixture that tests mutate deeply (a bad fixture is a good one with one change). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Mutable = any;

export const ENV = "production";
export const NS = "llm-production";
export const MODEL = "llama-3-1-8b-instruct";
export const NAME = `${MODEL}-${ENV}`;
export const DIGEST_IMAGE = `vllm/vllm-openai:v0.11.0@sha256:${"0".repeat(64)}`;

export const modelLabels = {
  "app.kubernetes.io/name": "vllm",
  "app.kubernetes.io/instance": NAME,
  "app.kubernetes.io/part-of": "vllm-fleet",
  "vllm.ai/model": MODEL,
  "vllm.ai/environment": ENV,
};
export const modelSelector = {
  "app.kubernetes.io/name": "vllm",
  "app.kubernetes.io/instance": NAME,
};
export const routerLabels = {
  "app.kubernetes.io/name": "vllm-router",
  "app.kubernetes.io/instance": `vllm-router-${ENV}`,
  "vllm.ai/environment": ENV,
};

const restricted = {
  allowPrivilegeEscalation: false,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

export function modelDeployment(): Mutable {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: NAME,
      namespace: NS,
      labels: modelLabels,
      annotations: { "vllm.ai/startup-budget-minutes": "15" },
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: modelSelector },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
      template: {
        metadata: { labels: modelLabels },
        spec: {
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 1000 },
          nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB" },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: { matchLabels: modelSelector },
            },
          ],
          containers: [
            {
              name: "vllm",
              image: DIGEST_IMAGE,
              resources: {
                requests: {
                  cpu: "8",
                  memory: "48Gi",
                  "ephemeral-storage": "10Gi",
                  "nvidia.com/gpu": "1",
                },
                limits: { memory: "56Gi", "nvidia.com/gpu": "1" },
              },
              startupProbe: {
                httpGet: { path: "/health", port: "http" },
                periodSeconds: 10,
                failureThreshold: 90,
              },
              readinessProbe: { httpGet: { path: "/v1/models", port: "http" }, periodSeconds: 10 },
              livenessProbe: {
                httpGet: { path: "/health", port: "http" },
                periodSeconds: 15,
                failureThreshold: 6,
              },
              // A copy: tests mutate fixtures deeply.
              securityContext: structuredClone(restricted),
            },
          ],
        },
      },
    },
  };
}

export function routerDeployment(): Mutable {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: `vllm-router-${ENV}`, namespace: NS, labels: routerLabels },
    spec: {
      // No replicas: the HPA owns the count.
      selector: { matchLabels: routerLabels },
      template: {
        metadata: { labels: routerLabels },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "router",
              image: `registry.example.com/vllm-router@sha256:${"1".repeat(64)}`,
              resources: {
                requests: { cpu: "250m", memory: "256Mi", "ephemeral-storage": "256Mi" },
                limits: { memory: "512Mi" },
              },
              readinessProbe: { httpGet: { path: "/readyz", port: 8080 } },
              livenessProbe: { httpGet: { path: "/healthz", port: 8080 } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
            },
          ],
        },
      },
    },
  };
}

export function routerAutoscaler(): Mutable {
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name: `vllm-router-${ENV}`, namespace: NS, labels: routerLabels },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: `vllm-router-${ENV}` },
      minReplicas: 3,
      maxReplicas: 6,
    },
  };
}

export function modelService(): Mutable {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: NAME, namespace: NS, labels: modelLabels },
    spec: { selector: modelSelector, ports: [{ name: "http", port: 8000, targetPort: "http" }] },
  };
}

export function modelPdb(): Mutable {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name: NAME, namespace: NS, labels: modelLabels },
    spec: { maxUnavailable: 1, selector: { matchLabels: modelSelector } },
  };
}

export function routerPdb(): Mutable {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name: `vllm-router-${ENV}`, namespace: NS, labels: routerLabels },
    spec: { minAvailable: 1, selector: { matchLabels: routerLabels } },
  };
}

export function modelNetworkPolicy(): Mutable {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: NAME, namespace: NS, labels: modelLabels },
    spec: {
      podSelector: { matchLabels: modelSelector },
      policyTypes: ["Ingress"],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "vllm-router" } } }],
          ports: [{ port: 8000 }],
        },
      ],
    },
  };
}

export function defaultDeny(): Mutable {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "default-deny", namespace: NS },
    spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
  };
}

export function serviceMonitor(): Mutable {
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: { name: NAME, namespace: NS, labels: modelLabels },
    spec: {
      selector: { matchLabels: modelSelector },
      namespaceSelector: { matchNames: [NS] },
      endpoints: [{ port: "http", path: "/metrics" }],
    },
  };
}

export function resourceQuota(gpus: number | string): Mutable {
  return {
    apiVersion: "v1",
    kind: "ResourceQuota",
    metadata: { name: "gpu-budget", namespace: NS, labels: { "vllm.ai/environment": ENV } },
    spec: { hard: { "requests.nvidia.com/gpu": String(gpus) } },
  };
}

export function registryEntry(): Mutable {
  return {
    modelName: MODEL,
    environment: ENV,
    namespace: NS,
    endpoint: `${NAME}.${NS}.svc.cluster.local:8000`,
    servedModelName: "llama-3.1-8b-instruct",
  };
}

/** Custom timeouts a ModelDeployment gives its Deployment (budget 15 min + 10). */
export const MODEL_TIMEOUTS = { createSeconds: 1500, updateSeconds: 1500, deleteSeconds: 0 };

/** A compliant production stack: one model, the router and the namespace-wide objects. */
export function fleet(): EvaluatedResource[] {
  return [
    { type: TYPES.resourceQuota, name: "gpu-budget", inputs: resourceQuota(4) },
    { type: TYPES.networkPolicy, name: "default-deny", inputs: defaultDeny() },
    {
      type: TYPES.deployment,
      name: NAME,
      inputs: modelDeployment(),
      opts: { customTimeouts: MODEL_TIMEOUTS },
    },
    { type: TYPES.service, name: `${NAME}-service`, inputs: modelService() },
    { type: TYPES.pdb, name: `${NAME}-pdb`, inputs: modelPdb() },
    { type: TYPES.networkPolicy, name: `${NAME}-netpol`, inputs: modelNetworkPolicy() },
    { type: TYPES.serviceMonitor, name: `${NAME}-monitor`, inputs: serviceMonitor() },
    {
      type: "pulumi-nodejs:dynamic/vllm-registry:RegistryEntry",
      name: `${NAME}-registry`,
      inputs: registryEntry(),
    },
    { type: TYPES.deployment, name: "vllm-router", inputs: routerDeployment() },
    {
      type: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
      name: "vllm-router-hpa",
      inputs: routerAutoscaler(),
    },
    { type: TYPES.pdb, name: "vllm-router-pdb", inputs: routerPdb() },
  ];
}

/** What one direct call of a rule produced. */
export interface Outcome {
  violations: string[];
  /** Set when the rule declared itself not applicable. */
  notApplicable?: string;
}

class NotApplicable extends Error {}

const OPTS: PolicyResourceOptions = {
  protect: false,
  ignoreChanges: [],
  aliases: [],
  customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
  additionalSecretOutputs: [],
};

async function collect(run: (report: ReportViolation) => unknown): Promise<Outcome> {
  const violations: string[] = [];
  try {
    await run((message) => violations.push(message));
  } catch (e) {
    if (e instanceof NotApplicable) return { violations, notApplicable: e.message };
    throw e;
  }
  return { violations };
}

/** Calls a resource rule's validation on one object, with the args the engine would pass. */
export function checkResource(
  policy: ResourceValidationPolicy,
  type: string,
  props: Props,
  options: { opts?: Partial<PolicyResourceOptions>; config?: object } = {},
): Promise<Outcome> {
  const args: ResourceValidationArgs = {
    type,
    name: String((props.metadata as Props | undefined)?.name ?? "fixture"),
    urn: `urn:pulumi:test::vllm-fleet::${type}::fixture`,
    props,
    opts: { ...OPTS, ...options.opts },
    stackTags: new Map(),
    isType: () => false,
    asType: () => undefined,
    getConfig: <T extends object>() => (options.config ?? {}) as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason);
    },
  };
  return collect(async (report) => {
    for (const validate of [policy.validateResource ?? []].flat()) await validate(args, report);
  });
}

/** Calls a stack rule's validation on a set of resources (their inputs as outputs). */
export function checkStack(
  policy: StackValidationPolicy,
  resources: EvaluatedResource[],
  config: object = {},
): Promise<Outcome> {
  const policyResources: PolicyResource[] = resources.map((r, i) => ({
    type: r.type,
    name: r.name,
    urn: `urn:pulumi:test::vllm-fleet::${r.type}::${r.name}-${i}`,
    props: r.outputs ?? r.inputs,
    opts: { ...OPTS, ...r.opts },
    dependencies: [],
    propertyDependencies: {},
    isType: () => false,
    asType: () => undefined,
  }));
  return collect((report) =>
    policy.validateStack(
      {
        resources: policyResources,
        stackTags: new Map(),
        getConfig: <T extends object>() => config as T,
        notApplicable: (reason?: string): never => {
          throw new NotApplicable(reason);
        },
      },
      report,
    ),
  );
}

/** The fleet with one resource (by Pulumi name) changed. */
export function fleetWith(name: string, change: (inputs: Mutable) => void): EvaluatedResource[] {
  return fleet().map((r) => {
    if (r.name !== name) return r;
    const inputs = structuredClone(r.inputs);
    change(inputs);
    return { ...r, inputs };
  });
}

/** The fleet without some resources (by Pulumi name). */
export function fleetWithout(...names: string[]): EvaluatedResource[] {
  return fleet().filter((r) => !names.includes(r.name));
}
