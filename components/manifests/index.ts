// The manifests layer: pure builders from a StackSpec to Kubernetes objects as plain data, the
// same for `pulumi up` (components/resources), `npm run render` and the policy tests, and the
// offline checks on them (schemas, metric names). No Pulumi SDK (eslint.config.mjs): values
// known only at deploy time are builder parameters.
export { ALERT_THRESHOLDS, buildPrometheusRule, LISTEN_STALE_SECONDS, RUNBOOKS } from "./alerts";
export { buildDashboard, buildDashboardConfigMap, PICKED_POD_LABEL } from "./dashboard";
export type { Panel } from "./dashboard";
export {
  buildEnvironmentObjects,
  buildLimitRange,
  buildNamespace,
  buildResourceQuota,
} from "./environmentManifests";
export type { Manifest, SecretManifest } from "./manifest";
export { schemaProblems } from "./manifestSchema";
export { ALLOWED_SERIES, HISTOGRAMS, seriesIn, VLLM_METRICS } from "./metricNames";
export {
  ACCELERATOR_ANNOTATION,
  buildHuggingFaceTokenSecret,
  buildModelCacheClaim,
  buildModelDeployment,
  buildModelObjects,
  buildModelPodsService,
  buildModelService,
  huggingFaceSecretName,
  modelRegistration,
  POD_DISCOVERY_COMPONENT,
  probeBudget,
  releaseRevision,
} from "./modelManifests";
export { renderStack } from "./renderStack";
export {
  buildRouterAutoscaler,
  buildRouterDeployment,
  buildRouterDisruptionBudget,
  buildRouterNetworkPolicy,
  buildRouterObjects,
  buildRouterRedisSecret,
  buildRouterRegistryCa,
  buildRouterService,
  buildRouterServiceMonitor,
  buildRouterRegistrySecret,
  routerConnectionLimit,
  routingEnv,
  ROUTER_DRAIN_SECONDS,
  ROUTER_NAME,
  ROUTER_PRESTOP_SECONDS,
  ROUTER_REGISTRY_SECRET_NAME,
  ROUTER_SERVICE_PORT,
  ROUTER_SHUTDOWN_DELAY_SECONDS,
  routerMetadata,
  routerUrl,
} from "./routerManifests";
export type { RouterWiring } from "./routerManifests";
