// Names every part of the platform agrees on: Service DNS, registry keys, labels.

import type { Environment } from "../../router/src/registry/types";

// The registry library (shipped inside the router image) owns the environment list and key format.
export { ENVIRONMENTS, registryKey } from "../../router/src/registry/types";
export type { Environment } from "../../router/src/registry/types";

/**
 * The environment of each stack, by stack name: the name decides the environment (and with it
 * every guardrail), so a stack file cannot declare itself another environment. A new stack is
 * added here, to policies/fleet.ts and as policies/config/<stack>.json.
 */
export const STACK_ENVIRONMENTS: Readonly<Record<string, Environment>> = {
  development: "development",
  staging: "staging",
  production: "production",
  // The end-to-end stack on kind: no GPUs, development guardrails.
  ci: "development",
};

/** The environment of a stack (`org/stack` and `org/project/stack` name the same stack); undefined when unmapped. */
export function stackEnvironment(stack: string): Environment | undefined {
  const name = stack.split("/").pop() ?? stack;
  return Object.hasOwn(STACK_ENVIRONMENTS, name) ? STACK_ENVIRONMENTS[name] : undefined;
}

/** vLLM's OpenAI server port; the Service exposes the same port. */
export const VLLM_PORT = 8000;

/** DNS-1035 label: what a model name must be to become part of a Service name. */
export const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Name of a model's Deployment and Service: `{model}-{env}` (predictable endpoints clients and the registry rely on). */
export function serviceName(model: string, environment: Environment): string {
  return `${model}-${environment}`;
}

/** In-cluster endpoint of a model: `{model}-{env}.{namespace}.svc.cluster.local:8000`. */
export function modelEndpoint(model: string, environment: Environment, namespace: string): string {
  return `${serviceName(model, environment)}.${namespace}.svc.cluster.local:${VLLM_PORT}`;
}

/** Recommended `app.kubernetes.io/*` labels of one model's objects. */
export function modelLabels(model: string, environment: Environment): Record<string, string> {
  return {
    "app.kubernetes.io/name": "vllm",
    "app.kubernetes.io/instance": serviceName(model, environment),
    "app.kubernetes.io/component": "model-server",
    "app.kubernetes.io/part-of": "vllm-fleet",
    "app.kubernetes.io/managed-by": "pulumi",
    "vllm.ai/model": model,
    "vllm.ai/environment": environment,
  };
}

/** The subset of `modelLabels` that selects one model's pods (stable across releases). */
export function modelSelector(model: string, environment: Environment): Record<string, string> {
  return {
    "app.kubernetes.io/name": "vllm",
    "app.kubernetes.io/instance": serviceName(model, environment),
  };
}

/** Labels of the router's objects. */
export function routerLabels(environment: Environment): Record<string, string> {
  return {
    "app.kubernetes.io/name": "vllm-router",
    "app.kubernetes.io/instance": `vllm-router-${environment}`,
    "app.kubernetes.io/component": "router",
    "app.kubernetes.io/part-of": "vllm-fleet",
    "app.kubernetes.io/managed-by": "pulumi",
    "vllm.ai/environment": environment,
  };
}

/** The subset of `routerLabels` that selects router pods. */
export function routerSelector(environment: Environment): Record<string, string> {
  return {
    "app.kubernetes.io/name": "vllm-router",
    "app.kubernetes.io/instance": `vllm-router-${environment}`,
  };
}
