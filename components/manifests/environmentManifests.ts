// Pure builders: the namespace-wide objects of one stack (namespace, GPU quota, container defaults, default-deny).
import type { ILimitRange } from "kubernetes-models/v1/LimitRange";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IResourceQuota } from "kubernetes-models/v1/ResourceQuota";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyEgressRule } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyEgressRule";
import type { StackSpec } from "../spec";

type Named<T> = T & { metadata: { name: string } };

/** Egress to the cluster DNS (kube-dns in kube-system, port 53 over UDP and TCP); a new object each call. */
export const dnsEgress = (): INetworkPolicyEgressRule => ({
  to: [
    {
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
      podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
    },
  ],
  ports: [
    { port: 53, protocol: "UDP" },
    { port: 53, protocol: "TCP" },
  ],
});

function labels(spec: StackSpec): Record<string, string> {
  return {
    "app.kubernetes.io/part-of": "vllm-fleet",
    "app.kubernetes.io/managed-by": "pulumi",
    "vllm.ai/environment": spec.environment,
  };
}

/**
 * GPU resource names the quota caps: those the stack's models request (normally just
 * nvidia.com/gpu), or nvidia.com/gpu when no model has GPUs, so the budget still holds.
 */
export function gpuResourceNames(spec: StackSpec): string[] {
  const names = spec.models.flatMap((m) => (m.gpu ? [m.gpu.resourceName] : []));
  return names.length ? [...new Set(names)] : ["nvidia.com/gpu"];
}

export function buildNamespace(spec: StackSpec): Named<INamespace> {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: spec.namespace,
      labels: {
        ...labels(spec),
        // Every pod here (vLLM and router) meets the restricted Pod Security Standard.
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
      },
    },
  };
}

/** The GPU budget of the environment: the scheduler refuses pods past it. */
export function buildResourceQuota(spec: StackSpec): Named<IResourceQuota> {
  const hard: Record<string, string> = {};
  for (const r of gpuResourceNames(spec)) hard[`requests.${r}`] = String(spec.gpuQuota);
  return {
    apiVersion: "v1",
    kind: "ResourceQuota",
    metadata: { name: "gpu-budget", namespace: spec.namespace, labels: labels(spec) },
    spec: { hard },
  };
}

/**
 * Default requests for containers that set none, so they are scheduled against real capacity.
 * Deliberately no `default` (limit), `max` or `min`: the LimitRanger admission plugin makes
 * `default` the limit of every container without one (and `max` becomes `default` when unset),
 * and pod validation then rejects a request above its limit
 * (kubernetes/kubernetes plugin/pkg/admission/limitranger/admission.go mergeContainerResources;
 * pkg/apis/core/v1/defaults.go SetDefaults_LimitRangeItem; pkg/apis/core/validation
 * ValidateContainerResourceRequirements). A vLLM pod requests 4-16 CPUs with no CPU limit (CFS
 * limits throttle its tokenizer and scheduler threads), so any default CPU limit below that
 * refuses every model pod; a default memory limit would likewise refuse any container that
 * requests more memory than it without setting a limit. `defaultRequest` only fills in a
 * missing request and can never push a request above a limit.
 */
export function buildLimitRange(spec: StackSpec): Named<ILimitRange> {
  return {
    apiVersion: "v1",
    kind: "LimitRange",
    metadata: { name: "container-defaults", namespace: spec.namespace, labels: labels(spec) },
    spec: {
      limits: [{ type: "Container", defaultRequest: { cpu: "100m", memory: "128Mi" } }],
    },
  };
}

/** Deny all traffic in the namespace except DNS; each workload opens what it needs. */
export function buildDefaultDenyPolicy(spec: StackSpec): Named<INetworkPolicy> {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "default-deny", namespace: spec.namespace, labels: labels(spec) },
    spec: {
      podSelector: {},
      policyTypes: ["Ingress", "Egress"],
      egress: [dnsEgress()],
    },
  };
}

export function buildEnvironmentObjects(spec: StackSpec) {
  return {
    namespace: buildNamespace(spec),
    resourceQuota: buildResourceQuota(spec),
    limitRange: buildLimitRange(spec),
    defaultDeny: buildDefaultDenyPolicy(spec),
  };
}
