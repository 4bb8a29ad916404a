// The resources layer: what runs inside a Pulumi program. ComponentResources that apply the
// manifests layer's objects through the explicit Kubernetes provider, the registry's
// PostgreSQL resources and dynamic providers, and the readers of the running program's config
// and of the registry stack.
export { Environment } from "./environment";
export type { EnvironmentArgs } from "./environment";
export { ModelDeployment } from "./modelDeployment";
export type { ModelDeploymentArgs, RegistryConnection } from "./modelDeployment";
export { FleetMonitoring } from "./monitoring";
export type { FleetMonitoringArgs } from "./monitoring";
export { loadProgramConfig } from "./programConfig";
export { RegistryAccess, registryUrl } from "./registryDatabase";
export type { RegistryAccessArgs } from "./registryDatabase";
export { RegistryEntry, registryEntryProvider } from "./registryEntry";
export type { RegistryEntryInputs, RegistryEntryOutputs } from "./registryEntry";
export { MIGRATION_SET, registryMigrationsProvider } from "./registryMigrations";
export { ACCESS_ROLES, RegistrySchema } from "./registrySchema";
export type { RegistrySchemaArgs } from "./registrySchema";
export { checkRegistryStack, readRegistryStack, registryStackProblems } from "./registryStack";
export type { LoginKind, RegistryStackOutputs } from "./registryStack";
export { registryAddress, RouterService } from "./router";
export type { RouterServiceArgs } from "./router";
