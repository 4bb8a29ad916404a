// Composition root: validate the stack config, then build the platform from components.
// How the parts fit, and the invariants each keeps: docs/architecture.md.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  HF_TOKEN_KEY,
  parseStackConfig,
  PROJECT,
  ROUTER_REGISTRY_PASSWORD_KEY,
  setSecretKeys,
} from "./components/spec";
import {
  Environment,
  ModelDeployment,
  loadProgramConfig,
  FleetMonitoring,
  RegistryAccess,
  readRegistryStack,
  RouterService,
} from "./components/resources";
import { routerConnectionLimit } from "./components/manifests";

const spec = loadProgramConfig(
  (raw, all) => parseStackConfig(raw, { stack: pulumi.getStack(), setSecrets: setSecretKeys(all) }),
  PROJECT,
);
// parseStackConfig has checked that it is set when the program builds with a registry login.
const routerImageRegistryPassword =
  spec.router.image === undefined && spec.router.imageRegistryUsername
    ? new pulumi.Config().requireSecret(ROUTER_REGISTRY_PASSWORD_KEY)
    : undefined;

const provider = new k8s.Provider("kubernetes", {
  context: spec.kubernetes.context,
  kubeconfig: spec.kubernetes.kubeconfig,
  enableServerSideApply: true,
});
const providers = { kubernetes: provider };

const environment = new Environment(spec.environment, { stack: spec }, { providers });

// The registry's database and schema belong to the registry stack; this stack owns only its
// environment's login roles and rows.
const registryDb = new RegistryAccess(spec.environment, {
  registry: spec.registry,
  adminPassword: new pulumi.Config().requireSecret("registryAdminPassword"),
  shared: readRegistryStack(spec.registry, spec.environment),
  environment: spec.environment,
  namespace: spec.namespace,
  kubernetesProvider: provider,
  routerConnectionLimit: routerConnectionLimit(spec),
  dependsOn: [environment.namespace],
});
const registry = {
  connectionString: registryDb.writerConnectionString,
  caCertificate: spec.registry.caCertificate,
  redisUrl: spec.redis.url,
  dependsOn: [registryDb.writerRole],
};

const deployments = spec.models.map(
  (model) =>
    new ModelDeployment(
      model.name,
      {
        stack: spec,
        model,
        registry,
        huggingFaceToken: new pulumi.Config().getSecret(HF_TOKEN_KEY),
        dependsOn: [environment.namespace],
      },
      { providers },
    ),
);

const router = new RouterService(
  "vllm-router",
  {
    stack: spec,
    registrySecretName: registryDb.routerSecretName,
    imageRegistryPassword: routerImageRegistryPassword,
    dependsOn: [environment.namespace],
  },
  { providers },
);

new FleetMonitoring(
  "vllm-fleet",
  { stack: spec, dependsOn: [environment.namespace] },
  { providers },
);

export const namespace = environment.namespaceName;
export const routerUrl = router.url;
/** The router image the Deployment runs, pinned by digest: what promotion copies to production. */
export const routerImage = router.image;
/** This environment's writer role URL (secret): how operators and scripts reach its rows. */
export const registryUrl = registryDb.writerConnectionString;
export const models = Object.fromEntries(
  deployments.map((d, i) => [
    spec.models[i].name,
    { endpoint: d.endpoint, serviceName: d.serviceName, registryKey: d.registryKey },
  ]),
);
