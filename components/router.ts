import * as path from "node:path";
import * as dockerBuild from "@pulumi/docker-build";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { StackSpec } from "./config";
import {
  buildRouterObjects,
  buildRouterRedisSecret,
  ROUTER_NAME,
  routerUrl,
} from "./routerManifests";

/** The repository root: the router image's build context (router/ is an npm workspace). */
const REPO_ROOT = path.resolve(__dirname, "..");

export interface RouterServiceArgs {
  /** The validated stack (environment, namespace, router, registry, redis, monitoring). */
  stack: StackSpec;
  /** Name of the Secret whose `DATABASE_URL` key holds the router's read-only registry URL. */
  registrySecretName: pulumi.Input<string>;
  /** Credentials for pushing to `router.imageRegistry`, if it needs them. */
  imageRegistryAuth?: {
    address: pulumi.Input<string>;
    username: pulumi.Input<string>;
    password: pulumi.Input<string>;
  };
  /** Objects (the Namespace, the registry Secret) that must exist before the router's. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * The router: its image built from router/Dockerfile and pushed to `router.imageRegistry`
 * (or `router.image` when given), deployed by digest with Service, HPA, PDB, NetworkPolicy
 * and ServiceMonitor from the pure builders in routerManifests.ts.
 */
export class RouterService extends pulumi.ComponentResource {
  /** In-cluster URL: `http://vllm-router.{namespace}.svc.cluster.local`. */
  readonly url: pulumi.Output<string>;
  /** The image the Deployment runs, pinned by digest. */
  readonly image: pulumi.Output<string>;
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;

  constructor(name: string, args: RouterServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vllm:router:RouterService", name, {}, opts);
    const { stack } = args;
    // Names are fixed (one router per namespace), so a replacement must delete first.
    const child = { parent: this, dependsOn: args.dependsOn, deleteBeforeReplace: true };
    this.image = routerImage(name, stack, args, { parent: this });

    const redisUrl = stack.redis.url;
    const redisSecret = redisUrl
      ? new k8s.core.v1.Secret(
          `${name}-redis-secret`,
          {
            ...buildRouterRedisSecret(stack, ""),
            stringData: { REDIS_URL: pulumi.secret(redisUrl) },
          } as k8s.core.v1.SecretArgs,
          child,
        )
      : undefined;
    // Builders take plain values; the deploy-time ones (digest, Secret name) are filled in here.
    const objs = buildRouterObjects(stack, { image: "", registrySecretName: "" });
    const registryCa = objs.registryCa
      ? new k8s.core.v1.ConfigMap(
          `${name}-registry-ca`,
          objs.registryCa as k8s.core.v1.ConfigMapArgs,
          child,
        )
      : undefined;
    const deploymentSpec = pulumi
      .all([this.image, args.registrySecretName])
      .apply(
        ([image, registrySecretName]) =>
          buildRouterObjects(stack, { image, registrySecretName }).deployment.spec,
      );
    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      { metadata: objs.deployment.metadata, spec: deploymentSpec } as k8s.apps.v1.DeploymentArgs,
      {
        ...child,
        dependsOn: [
          ...(redisSecret ? [redisSecret] : []),
          ...(registryCa ? [registryCa] : []),
          ...(args.dependsOn ?? []),
        ],
      },
    );
    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      objs.service as k8s.core.v1.ServiceArgs,
      child,
    );
    new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      `${name}-hpa`,
      objs.autoscaler as k8s.autoscaling.v2.HorizontalPodAutoscalerArgs,
      { ...child, dependsOn: [this.deployment] },
    );
    if (objs.disruptionBudget) {
      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        objs.disruptionBudget as k8s.policy.v1.PodDisruptionBudgetArgs,
        child,
      );
    }
    new k8s.networking.v1.NetworkPolicy(
      `${name}-network-policy`,
      objs.networkPolicy as k8s.networking.v1.NetworkPolicyArgs,
      child,
    );
    if (objs.serviceMonitor) {
      new k8s.apiextensions.CustomResource(
        `${name}-service-monitor`,
        objs.serviceMonitor as k8s.apiextensions.CustomResourceArgs,
        child,
      );
    }
    this.url = pulumi.output(routerUrl(stack.namespace));
    this.registerOutputs({ url: this.url, image: this.image });
  }
}

/**
 * `router.image` as given, or an image built from router/Dockerfile and pushed to
 * `router.imageRegistry` now. parseStackConfig guarantees one of them, and the digest.
 */
function routerImage(
  name: string,
  stack: StackSpec,
  args: RouterServiceArgs,
  opts: pulumi.CustomResourceOptions,
): pulumi.Output<string> {
  if (stack.router.image) return pulumi.output(stack.router.image);
  const image = new dockerBuild.Image(
    `${name}-image`,
    {
      context: { location: REPO_ROOT },
      dockerfile: { location: path.join(REPO_ROOT, "router/Dockerfile") },
      platforms: ["linux/amd64"],
      push: true,
      tags: [`${stack.router.imageRegistry!}/${ROUTER_NAME}:${stack.environment}`],
      registries: args.imageRegistryAuth ? [args.imageRegistryAuth] : undefined,
    },
    opts,
  );
  // `ref` is `<tag>@sha256:<digest>`: the Deployment changes exactly when the image does.
  return image.ref;
}
