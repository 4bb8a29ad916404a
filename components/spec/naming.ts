// Names every part of the platform agrees on: Service DNS, registry keys, labels.

import type { Environment } from "@vllm-fleet/registry";

// The registry package owns the environment list, the stack-to-environment map and the key format.
export {
  ENVIRONMENTS,
  STACK_ENVIRONMENTS,
  registryKey,
  stackEnvironment,
} from "@vllm-fleet/registry";
export type { Environment } from "@vllm-fleet/registry";

// The router package owns the headless Service's name (its discovery resolves it), the routing
// modes and the names and range of the routing variables the router Deployment gets.
export {
  AFFINITY_LOAD_FACTOR,
  podsServiceName,
  ROUTING_ENV,
  ROUTING_MODES,
} from "@vllm-fleet/router/routing";
export type { RoutingMode } from "@vllm-fleet/router/routing";

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

/** `app.kubernetes.io/component` of a model's objects (the ServiceMonitor selects its Service by it). */
export const MODEL_SERVER_COMPONENT = "model-server";

/** Recommended `app.kubernetes.io/*` labels of one model's objects. */
export function modelLabels(model: string, environment: Environment): Record<string, string> {
  return {
    "app.kubernetes.io/name": "vllm",
    "app.kubernetes.io/instance": serviceName(model, environment),
    "app.kubernetes.io/component": MODEL_SERVER_COMPONENT,
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
