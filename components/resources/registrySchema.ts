// What every environment shares on one registry server, owned by the registry stack alone: the
// database, the role that owns the schema (it runs the migrations), the migrations, a NOLOGIN
// group role per environment that row-level security checks, and the NOLOGIN access roles that
// hold the table privileges. Environment stacks only add login roles to those roles
// (RegistryAccess); they grant nothing.
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { environmentRole, REGISTRY_TABLE } from "@vllm-fleet/registry";
import type { RegistryServer } from "../spec";
import { ENVIRONMENTS, Environment } from "../spec";
import { generatedPassword, registryProvider, secretRegistryUrl } from "./registryDatabase";
import { RegistryMigrations } from "./registryMigrations";
import { LOGIN_KINDS, LoginKind } from "./registryStack";

/** Owner of the database and of the registry's schema objects; runs the migrations and grants. */
export const REGISTRY_OWNER_ROLE = "vllm_registry_owner";
/** The `id` bigserial's sequence: inserting a row draws from it. */
export const REGISTRY_SEQUENCE = `${REGISTRY_TABLE}_id_seq`;
/** The access role each kind of login role joins. */
export const ACCESS_ROLES: Record<LoginKind, string> = {
  writer: "vllm_registry_writers",
  router: "vllm_registry_readers",
};
// Explicit lists: `ALL` diffs forever in @pulumi/postgresql, and says too much. Row-level
// security narrows the table privileges to the environment's rows. CONNECT is PUBLIC's by
// default; granted anyway so that a server whose databases revoke it from PUBLIC works too.
// USAGE on `public` stays PUBLIC's (every PostgreSQL version grants it): only the schema's owner
// (the bootstrap superuser before PostgreSQL 15) could grant it for real.
/** Privileges of each access role, granted by the owner role. */
export const ACCESS_PRIVILEGES: Record<
  LoginKind,
  { database: string[]; table: string[]; sequence: string[] }
> = {
  writer: {
    database: ["CONNECT"],
    table: ["SELECT", "INSERT", "UPDATE", "DELETE"],
    sequence: ["USAGE"],
  },
  router: { database: ["CONNECT"], table: ["SELECT"], sequence: [] },
};

export interface RegistrySchemaArgs {
  /** The registry's PostgreSQL server (the registry stack's config). */
  server: RegistryServer;
  /** Password of `server.adminUser` (the `adminPassword` config secret). */
  adminPassword: pulumi.Input<string>;
}

/** The shared registry database, its owner, group and access roles, migrations and grants. */
export class RegistrySchema extends pulumi.ComponentResource {
  /** Name of the registry database. */
  readonly database: pulumi.Output<string>;
  /** Schema version after the migrations. */
  readonly schemaVersion: pulumi.Output<number>;
  /** The group role per environment. */
  readonly environmentRoles: pulumi.Output<Record<Environment, string>>;
  /** The access role per kind of login role. */
  readonly accessRoles: pulumi.Output<Record<LoginKind, string>>;

  constructor(name: string, args: RegistrySchemaArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vllm:registry:RegistrySchema", name, {}, opts);
    const { server } = args;
    const admin = registryProvider(
      `${name}-postgresql`,
      server,
      { user: server.adminUser, password: args.adminPassword },
      this,
    );
    // Every environment depends on these: `pulumi destroy` or a deleted line must never drop
    // them (the provider's Database delete terminates connections and drops the database; its
    // Role delete runs REASSIGN OWNED and DROP OWNED; a Grant delete revokes).
    const kept = { parent: this, provider: admin, protect: true, retainOnDelete: true };
    const role = (suffix: string, roleArgs: postgresql.RoleArgs) =>
      new postgresql.Role(`${name}-${suffix}-role`, roleArgs, kept);

    const ownerPassword = generatedPassword(`${name}-owner-password`, this);
    const owner = role("owner", {
      name: REGISTRY_OWNER_ROLE,
      login: true,
      password: ownerPassword,
    });
    const groups = ENVIRONMENTS.map((e) => role(e, { name: environmentRole(e), login: false }));
    const access = LOGIN_KINDS.map((kind) =>
      role(`${kind}-access`, { name: ACCESS_ROLES[kind], login: false }),
    );
    const database = new postgresql.Database(
      `${name}-database`,
      { name: server.database, owner: owner.name },
      kept,
    );
    const migrations = new RegistryMigrations(
      `${name}-migrations`,
      {
        connectionString: secretRegistryUrl(server, owner.name, ownerPassword, database.name),
        caCertificate: server.caCertificate,
      },
      { parent: this, dependsOn: groups },
    );

    // The owner grants, so every grant really happens. The provider grants as its own user and,
    // for a database, borrows no owner's membership (getRolesToGrant in
    // cyrilgdn/terraform-provider-postgresql postgresql/resource_postgresql_grant.go): an admin
    // that owns nothing gets "no privileges were granted" and a diff on every preview.
    const asOwner = registryProvider(
      `${name}-owner-postgresql`,
      server,
      { user: owner.name, password: ownerPassword, database: database.name },
      this,
    );
    LOGIN_KINDS.forEach((kind, i) => {
      const privileges = ACCESS_PRIVILEGES[kind];
      const grant = (object: string, grantArgs: Omit<postgresql.GrantArgs, "database" | "role">) =>
        new postgresql.Grant(
          `${name}-${kind}-access-${object}`,
          { database: database.name, role: access[i].name, ...grantArgs },
          // The table and its sequence exist once the migrations ran.
          { ...kept, provider: asOwner, dependsOn: [migrations] },
        );
      grant("database", { objectType: "database", privileges: privileges.database });
      grant("table", {
        objectType: "table",
        schema: "public",
        objects: [REGISTRY_TABLE],
        privileges: privileges.table,
      });
      if (privileges.sequence.length)
        grant("sequence", {
          objectType: "sequence",
          schema: "public",
          objects: [REGISTRY_SEQUENCE],
          privileges: privileges.sequence,
        });
    });

    this.database = database.name;
    this.schemaVersion = migrations.version;
    this.environmentRoles = pulumi.all(
      Object.fromEntries(ENVIRONMENTS.map((environment, i) => [environment, groups[i].name])),
    ) as pulumi.Output<Record<Environment, string>>;
    this.accessRoles = pulumi.all(
      Object.fromEntries(LOGIN_KINDS.map((kind, i) => [kind, access[i].name])),
    ) as pulumi.Output<Record<LoginKind, string>>;
    this.registerOutputs({
      database: this.database,
      schemaVersion: this.schemaVersion,
      environmentRoles: this.environmentRoles,
      accessRoles: this.accessRoles,
    });
  }
}
