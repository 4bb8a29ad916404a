// Every Kubernetes object of a stack, from the same pure builders the components use.
import type { StackSpec } from "../spec";
import { buildEnvironmentObjects } from "./environmentManifests";
import type { Manifest } from "./manifest";
import { buildModelObjects } from "./modelManifests";
import { buildPrometheusRule } from "./alerts";
import { buildDashboardConfigMap } from "./dashboard";
import { buildRouterObjects, ROUTER_NAME, ROUTER_REGISTRY_SECRET_NAME } from "./routerManifests";

function present(objs: Record<string, unknown>): Manifest[] {
  return Object.values(objs).filter((o): o is Manifest => o !== undefined);
}

/**
 * The router image as rendered offline: `router.image` when pinned, else the tag `pulumi up`
 * pushes (the digest exists only once the image is built).
 */
export function renderedRouterImage(spec: StackSpec): string {
  return spec.router.image ?? `${spec.router.imageRegistry}/${ROUTER_NAME}:${spec.environment}`;
}

/**
 * The stack's manifests in apply order: namespace-wide objects, each model, the router, then
 * alerts and dashboard. Secrets are left out: their values exist only in Pulumi state.
 */
export function renderStack(spec: StackSpec): Manifest[] {
  const router = buildRouterObjects(spec, {
    image: renderedRouterImage(spec),
    registrySecretName: ROUTER_REGISTRY_SECRET_NAME,
  });
  return [
    ...present(buildEnvironmentObjects(spec)),
    ...spec.models.flatMap((m) => present(buildModelObjects(spec, m))),
    ...present(router),
    ...present({
      alerts: spec.monitoring.alerts ? buildPrometheusRule(spec) : undefined,
      dashboard: spec.monitoring.dashboard ? buildDashboardConfigMap(spec) : undefined,
    }),
  ];
}
