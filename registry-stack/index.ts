// The registry stack: one per registry server, shared by the development, staging and
// production stacks. It alone owns the database, the schema's owner role, the migrations and
// the environments' group roles; environment stacks read its outputs via a StackReference.
// Who owns what in PostgreSQL: docs/architecture.md.
import * as pulumi from "@pulumi/pulumi";
import { parseRegistryStackConfig, REGISTRY_PROJECT } from "../components/spec";
import { loadProgramConfig, RegistrySchema } from "../components/resources";
import type { RegistryStackOutputs } from "../components/resources";

const server = loadProgramConfig(parseRegistryStackConfig, REGISTRY_PROJECT);

const registry = new RegistrySchema("registry", {
  server,
  adminPassword: new pulumi.Config().requireSecret("adminPassword"),
});

// Typed against the contract environment stacks check (components/resources/registryStack.ts).
const outputs: { [K in keyof RegistryStackOutputs]: pulumi.Input<RegistryStackOutputs[K]> } = {
  host: server.host,
  port: server.port,
  database: registry.database,
  sslmode: server.sslmode,
  adminUser: server.adminUser,
  schemaVersion: registry.schemaVersion,
  environmentRoles: registry.environmentRoles,
  accessRoles: registry.accessRoles,
};
export const {
  host,
  port,
  database,
  sslmode,
  adminUser,
  schemaVersion,
  environmentRoles,
  accessRoles,
} = outputs;
