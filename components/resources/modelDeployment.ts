import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ModelSpec, StackSpec } from "../spec";
import {
  buildHuggingFaceTokenSecret,
  buildModelObjects,
  modelRegistration,
  probeBudget,
} from "../manifests";
import { RegistryEntry } from "./registryEntry";
import { modelEndpoint, registryKey } from "../spec";

export interface ModelDeploymentArgs {
  /** The validated stack the model belongs to (environment, namespace, monitoring). */
  stack: StackSpec;
  /** The model: its promoted release and this environment's capacity. */
  model: ModelSpec;
  /** Where the model's registry row is written. */
  registry: RegistryConnection;
  /** Hugging Face token (a secret); required when the release is gated. */
  huggingFaceToken?: pulumi.Input<string>;
  /** Objects (e.g. the Namespace) that must exist before the model's. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** How components reach the model registry. */
export interface RegistryConnection {
  /** The environment's writer URL of the registry database (a secret). */
  connectionString: pulumi.Input<string>;
  /** CA certificate (PEM) of the registry's TLS (`registry.sslrootcert`). */
  caCertificate?: string;
  /** Redis URL of the registry cache, invalidated on every write. */
  redisUrl?: pulumi.Input<string>;
  /** What must exist before rows are written (the writer's grants). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * One vLLM model served in one environment: cache volume, Deployment, Service, headless pods
 * Service, PDB, NetworkPolicy and ServiceMonitor, built by the pure functions in
 * manifests/modelManifests.ts.
 */
export class ModelDeployment extends pulumi.ComponentResource {
  /** In-cluster endpoint: `{model}-{env}.{namespace}.svc.cluster.local:8000`. */
  readonly endpoint: pulumi.Output<string>;
  /** Name of the model's Service (`{model}-{env}`). */
  readonly serviceName: pulumi.Output<string>;
  /** Redis key of the model's registry entry. */
  readonly registryKey: string;
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;
  /** The headless Service listing the model's ready pods (`{model}-{env}-pods`) for the router. */
  readonly podsService: k8s.core.v1.Service;
  /** The model's registry row; `ready` only once the Deployment's pods are. */
  readonly registryEntry: RegistryEntry;

  constructor(name: string, args: ModelDeploymentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vllm:serving:ModelDeployment", name, {}, opts);
    const { stack, model } = args;
    const objs = buildModelObjects(stack, model);
    const child = { parent: this, dependsOn: args.dependsOn };
    // Pulumi must wait as long as Kubernetes lets vLLM load weights (default is 10 minutes).
    const wait = `${probeBudget(model.startupBudgetMinutes).customTimeoutMinutes}m`;

    let tokenSecret: k8s.core.v1.Secret | undefined;
    if (model.gated) {
      if (args.huggingFaceToken === undefined)
        throw new Error(`${model.name} is gated: ModelDeployment needs huggingFaceToken`);
      tokenSecret = new k8s.core.v1.Secret(
        `${name}-huggingface`,
        buildHuggingFaceTokenSecret(
          stack,
          model,
          pulumi.secret(args.huggingFaceToken),
        ) as k8s.core.v1.SecretArgs,
        child,
      );
    }
    const cache = new k8s.core.v1.PersistentVolumeClaim(
      `${name}-cache`,
      objs.cacheClaim as k8s.core.v1.PersistentVolumeClaimArgs,
      child,
    );
    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      objs.deployment as k8s.apps.v1.DeploymentArgs,
      {
        ...child,
        dependsOn: [cache, ...(tokenSecret ? [tokenSecret] : []), ...(args.dependsOn ?? [])],
        customTimeouts: { create: wait, update: wait },
        // Names are fixed (predictable endpoints), so a replacement must delete first.
        deleteBeforeReplace: true,
      },
    );
    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      objs.service as k8s.core.v1.ServiceArgs,
      {
        ...child,
        customTimeouts: { create: wait, update: wait },
        deleteBeforeReplace: true,
      },
    );
    // No custom timeout: the provider's Service await does not wait for pods when the Service
    // is headless (pulumi-kubernetes provider/pkg/await/service.go, shouldWaitForPods), so it
    // is ready as soon as it exists, with zero ready pods too (a disabled model).
    this.podsService = new k8s.core.v1.Service(
      `${name}-pods-service`,
      objs.podsService as k8s.core.v1.ServiceArgs,
      { ...child, deleteBeforeReplace: true },
    );
    if (objs.disruptionBudget) {
      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        objs.disruptionBudget as k8s.policy.v1.PodDisruptionBudgetArgs,
        child,
      );
    }
    new k8s.networking.v1.NetworkPolicy(
      `${name}-netpol`,
      objs.networkPolicy as k8s.networking.v1.NetworkPolicyArgs,
      child,
    );
    if (objs.serviceMonitor) {
      new k8s.apiextensions.CustomResource(`${name}-servicemonitor`, objs.serviceMonitor, child);
    }

    this.serviceName = this.service.metadata.name;
    this.endpoint = this.service.metadata.apply((m) =>
      modelEndpoint(model.name, stack.environment, m.namespace ?? stack.namespace),
    );
    this.registryKey = registryKey(stack.environment, model.name);
    // Registration is proof of readiness: Pulumi creates the row only after the Deployment's
    // rollout succeeded, and deletes (disables) it before the Deployment goes.
    this.registryEntry = new RegistryEntry(
      `${name}-registry`,
      {
        connectionString: args.registry.connectionString,
        caCertificate: args.registry.caCertificate,
        redisUrl: args.registry.redisUrl,
        ...modelRegistration(stack, model, this.endpoint, pulumi.getStack()),
      },
      {
        parent: this,
        // The pods Service first too, so a router in a pod mode finds the pods as soon as it
        // reads the row (without it the router sends to the Service, which works, but spreads).
        dependsOn: [
          this.deployment,
          this.service,
          this.podsService,
          ...(args.registry.dependsOn ?? []),
        ],
      },
    );
    this.registerOutputs({
      endpoint: this.endpoint,
      serviceName: this.serviceName,
      registryKey: this.registryKey,
    });
  }
}
