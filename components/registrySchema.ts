// What every environment shares on one registry server, owned by the registry stack alone: the
// database, the role that owns the schema (it runs the migrations), the migrations, and a
// NOLOGIN group role per environment that row-level security checks. Environment stacks only
// add login roles to their group and grant them privileges (RegistryAccess).
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { environmentRole } from "../router/src/registry/migrations";
import type { RegistryServer } from "./config";
import { ENVIRONMENTS, Environment } from "./naming";
import { generatedPassword, registryProvider, secretRegistryUrl } from "./registryDatabase";
import { RegistryMigrations } from "./registryMigrations";

/** Owner of the database and of the registry's schema objects; used by the migrations only. */
export const REGISTRY_OWNER_ROLE = "vllm_registry_owner";
/** The owner creates the schema's objects in `public`. */
export const OWNER_SCHEMA_PRIVILEGES = ["CREATE", "USAGE"];

export interface RegistrySchemaArgs {
  /** The registry's PostgreSQL server (the registry stack's config). */
  server: RegistryServer;
  /** Password of `server.adminUser` (the `adminPassword` config secret). */
  adminPassword: pulumi.Input<string>;
}

/** The shared registry database, its owner, group roles and schema migrations. */
export class RegistrySchema extends pulumi.ComponentResource {
  /** Name of the registry database. */
  readonly database: pulumi.Output<string>;
  /** Schema version after the migrations. */
  readonly schemaVersion: pulumi.Output<number>;
  /** The group role per environment. */
  readonly environmentRoles: pulumi.Output<Record<Environment, string>>;

  constructor(name: string, args: RegistrySchemaArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vllm:registry:RegistrySchema", name, {}, opts);
    const { server } = args;
    const provider = registryProvider(name, server, args.adminPassword, this);
    // Every environment depends on these: `pulumi destroy` or a deleted line must never drop
    // them (the provider's Database delete terminates connections and drops the database; its
    // Role delete runs REASSIGN OWNED and DROP OWNED).
    const kept = { parent: this, provider, protect: true, retainOnDelete: true };

    const ownerPassword = generatedPassword(`${name}-owner-password`, this);
    const owner = new postgresql.Role(
      `${name}-owner-role`,
      { name: REGISTRY_OWNER_ROLE, login: true, password: ownerPassword },
      kept,
    );
    const groups = ENVIRONMENTS.map(
      (environment) =>
        new postgresql.Role(
          `${name}-${environment}-role`,
          { name: environmentRole(environment), login: false },
          kept,
        ),
    );
    const database = new postgresql.Database(
      `${name}-database`,
      { name: server.database, owner: owner.name },
      kept,
    );
    const schemaGrant = new postgresql.Grant(
      `${name}-owner-schema`,
      {
        database: database.name,
        role: owner.name,
        objectType: "schema",
        schema: "public",
        privileges: OWNER_SCHEMA_PRIVILEGES,
      },
      { parent: this, provider },
    );
    const migrations = new RegistryMigrations(
      `${name}-migrations`,
      {
        connectionString: secretRegistryUrl(server, owner.name, ownerPassword, database.name),
        caCertificate: server.caCertificate,
      },
      { parent: this, dependsOn: [schemaGrant, ...groups] },
    );

    this.database = database.name;
    this.schemaVersion = migrations.version;
    this.environmentRoles = pulumi.all(
      Object.fromEntries(ENVIRONMENTS.map((environment, i) => [environment, groups[i].name])),
    ) as pulumi.Output<Record<Environment, string>>;
    this.registerOutputs({
      database: this.database,
      schemaVersion: this.schemaVersion,
      environmentRoles: this.environmentRoles,
    });
  }
}
