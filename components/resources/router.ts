import * as path from "node:path";
import * as dockerBuild from "@pulumi/docker-build";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  buildRouterAutoscaler,
  buildRouterDeployment,
  buildRouterDisruptionBudget,
  buildRouterNetworkPolicy,
  buildRouterRedisSecret,
  buildRouterRegistryCa,
  buildRouterService,
  buildRouterServiceMonitor,
  ROUTER_NAME,
  routerMetadata,
  routerUrl,
} from "../manifests";
import type { StackSpec } from "../spec";

/** The repository root: the router image's build context (router/ is an npm workspace). */
const REPO_ROOT = path.resolve(__dirname, "../..");

export interface RouterServiceArgs {
  /** The validated stack (environment, namespace, router, registry, redis, monitoring). */
  stack: StackSpec;
  /** Name of the Secret whose `DATABASE_URL` key holds the router's read-only registry URL. */
  registrySecretName: pulumi.Input<string>;
  /** Password or token of `router.imageRegistryUsername`, for pushing the image it builds. */
  imageRegistryPassword?: pulumi.Input<string>;
  /** Objects (the Namespace, the registry Secret) that must exist before the router's. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * The router: its image built from router/Dockerfile and pushed to `router.imageRegistry`
 * (or `router.image` when given), deployed by digest with Service, HPA, PDB, NetworkPolicy
 * and ServiceMonitor from the pure builders in manifests/routerManifests.ts.
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

    const redisSecret = stack.redis.url
      ? new k8s.core.v1.Secret(
          `${name}-redis-secret`,
          buildRouterRedisSecret(stack, pulumi.secret(stack.redis.url)) as k8s.core.v1.SecretArgs,
          child,
        )
      : undefined;
    const ca = buildRouterRegistryCa(stack);
    const registryCa = ca
      ? new k8s.core.v1.ConfigMap(`${name}-registry-ca`, ca as k8s.core.v1.ConfigMapArgs, child)
      : undefined;
    // The pod spec needs the image digest and the Secret's name, known once they exist; the
    // metadata does not, so the Deployment keeps its name in preview.
    const pod = pulumi
      .all([this.image, args.registrySecretName])
      .apply(([image, registrySecretName]) =>
        buildRouterDeployment(stack, { image, registrySecretName }),
      );
    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      { metadata: routerMetadata(stack), spec: pod.spec } as k8s.apps.v1.DeploymentArgs,
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
      buildRouterService(stack) as k8s.core.v1.ServiceArgs,
      child,
    );
    new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      `${name}-hpa`,
      buildRouterAutoscaler(stack) as k8s.autoscaling.v2.HorizontalPodAutoscalerArgs,
      { ...child, dependsOn: [this.deployment] },
    );
    const disruptionBudget = buildRouterDisruptionBudget(stack);
    if (disruptionBudget) {
      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        disruptionBudget as k8s.policy.v1.PodDisruptionBudgetArgs,
        child,
      );
    }
    new k8s.networking.v1.NetworkPolicy(
      `${name}-network-policy`,
      buildRouterNetworkPolicy(stack) as k8s.networking.v1.NetworkPolicyArgs,
      child,
    );
    const serviceMonitor = buildRouterServiceMonitor(stack);
    if (serviceMonitor) {
      new k8s.apiextensions.CustomResource(
        `${name}-service-monitor`,
        serviceMonitor as k8s.apiextensions.CustomResourceArgs,
        child,
      );
    }
    this.url = pulumi.output(routerUrl(stack.namespace));
    this.registerOutputs({ url: this.url, routerImage: this.image });
  }
}

/**
 * The registry host of an image repository, as Docker resolves it: the first path segment when
 * it holds '.' or ':', is `localhost` or has upper case, else Docker Hub
 * (splitDockerDomain in github.com/distribution/reference, normalize.go).
 */
export function registryAddress(repository: string): string {
  const slash = repository.indexOf("/");
  const first = slash === -1 ? "" : repository.slice(0, slash);
  const isHost =
    slash !== -1 && (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first);
  return !isHost || first === "index.docker.io" ? "docker.io" : first;
}

/**
 * `router.image` as given, or an image built from router/Dockerfile and pushed to
 * `router.imageRegistry` now, logged in as `router.imageRegistryUsername` when set.
 * parseStackConfig guarantees one of them, and the digest.
 */
function routerImage(
  name: string,
  stack: StackSpec,
  args: RouterServiceArgs,
  opts: pulumi.CustomResourceOptions,
): pulumi.Output<string> {
  const { image: prebuilt, imageRegistry, imageRegistryUsername } = stack.router;
  if (prebuilt) return pulumi.output(prebuilt);
  const image = new dockerBuild.Image(
    `${name}-image`,
    {
      context: { location: REPO_ROOT },
      dockerfile: { location: path.join(REPO_ROOT, "router/Dockerfile") },
      platforms: ["linux/amd64"],
      push: true,
      tags: [`${imageRegistry!}/${ROUTER_NAME}:${stack.environment}`],
      // docker-build logs in with these in memory, like `docker login`; without them it pushes
      // with the host's own Docker credentials.
      registries: imageRegistryUsername
        ? [
            {
              address: registryAddress(imageRegistry!),
              username: imageRegistryUsername,
              password: pulumi.secret(args.imageRegistryPassword),
            },
          ]
        : undefined,
    },
    opts,
  );
  // `ref` is `<tag>@sha256:<digest>`: the Deployment changes exactly when the image does.
  return image.ref;
}
