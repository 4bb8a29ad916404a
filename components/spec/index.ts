// The spec layer: a stack's config, validated into a StackSpec, and the names every part agrees
// on. Plain data and checks only: no Pulumi SDK (eslint.config.mjs), so offline tools load it.
export { ACCELERATOR_VENDORS } from "./accelerators";
export {
  extraArgProblem,
  HF_TOKEN_KEY,
  MANAGED_VLLM_FLAGS,
  parseRegistryStackConfig,
  parseStackConfig,
  PROJECT,
  PROJECT_DIR,
  rawConfig,
  REGISTRY_PROJECT,
  ROUTER_REGISTRY_PASSWORD_KEY,
  SECRET_KEYS,
  setSecretKeys,
  StackConfigError,
} from "./config";
export type { ModelSpec, RegistryServer, Release, StackSpec } from "./config";
export {
  extendedResourceNameProblem,
  labelValueProblem,
  parseQuantity,
  qualifiedNameProblem,
} from "./kubeSyntax";
export {
  AFFINITY_LOAD_FACTOR,
  DNS_LABEL,
  ENVIRONMENTS,
  modelEndpoint,
  MODEL_SERVER_COMPONENT,
  modelLabels,
  modelSelector,
  podsServiceName,
  registryKey,
  routerLabels,
  routerSelector,
  ROUTING_ENV,
  ROUTING_MODES,
  serviceName,
  STACK_ENVIRONMENTS,
  stackEnvironment,
  VLLM_PORT,
} from "./naming";
export type { Environment, RoutingMode } from "./naming";
export { loadStackSpec, stackFileConfig } from "./stackFile";
export type { StackSource } from "./stackFile";
