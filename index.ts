// Composition root: validate the stack config, then build the platform from components.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  HF_TOKEN_KEY,
  parseStackConfig,
  readStackConfig,
  setSecretKeys,
  StackConfigError,
} from "./components/config";
import { Environment } from "./components/environment";
import { ModelDeployment } from "./components/modelDeployment";
import { FleetMonitoring } from "./components/monitoring";
import { RegistryDatabase } from "./components/registryDatabase";
import { RouterService } from "./components/router";

function loadSpec() {
  try {
    const all = pulumi.runtime.allConfig();
    return parseStackConfig(readStackConfig(all), setSecretKeys(all));
  } catch (e) {
    // RunError prints the message without a stack trace; nothing has been created yet.
    if (e instanceof StackConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
}

const spec = loadSpec();

const provider = new k8s.Provider("kubernetes", {
  context: spec.kubernetes.context,
  kubeconfig: spec.kubernetes.kubeconfig,
  enableServerSideApply: true,
});
const providers = { kubernetes: provider };

const environment = new Environment(spec.environment, { stack: spec }, { providers });

const registryDb = new RegistryDatabase(spec.environment, {
  registry: spec.registry,
  adminPassword: new pulumi.Config().requireSecret("registryAdminPassword"),
  environment: spec.environment,
  namespace: spec.namespace,
  kubernetesProvider: provider,
  dependsOn: [environment.namespace],
});
const registry = {
  connectionString: registryDb.adminConnectionString,
  caCertificate: spec.registry.caCertificate,
  redisUrl: spec.redis.url,
  dependsOn: [registryDb.migrations],
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
export const models = Object.fromEntries(
  deployments.map((d, i) => [
    spec.models[i].name,
    { endpoint: d.endpoint, serviceName: d.serviceName, registryKey: d.registryKey },
  ]),
);
