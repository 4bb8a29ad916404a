// Every Kubernetes object of a stack, from the same pure builders the components use.
import type { StackSpec } from "./config";
import { buildEnvironmentObjects } from "./environmentManifests";
import type { Manifest } from "./manifest";
import { buildModelObjects } from "./modelManifests";

function present(objs: Record<string, unknown>): Manifest[] {
  return Object.values(objs).filter((o): o is Manifest => o !== undefined);
}

/** The stack's manifests in apply order: namespace-wide objects first, then each model. */
export function renderStack(spec: StackSpec): Manifest[] {
  return [
    ...present(buildEnvironmentObjects(spec)),
    ...spec.models.flatMap((m) => present(buildModelObjects(spec, m))),
  ];
}
