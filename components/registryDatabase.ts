// The registry's PostgreSQL side: the database, an admin role (program and CLI) and a router
// role that can only SELECT the registry table, generated passwords, the schema migrations,
// and the Kubernetes Secret that hands the router its connection string.
import * as k8s from "@pulumi/kubernetes";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { REGISTRY_TABLE } from "../router/src/registry/types";
import type { StackSpec } from "./config";
import { Environment, routerLabels } from "./naming";
import { RegistryMigrations } from "./registryMigrations";

// Explicit privilege lists: `ALL` diffs forever in @pulumi/postgresql, and says too much.
/** The admin role creates and owns the schema objects (it runs the migrations). */
export const ADMIN_DATABASE_PRIVILEGES = ["CONNECT", "CREATE", "TEMPORARY"];
export const ADMIN_SCHEMA_PRIVILEGES = ["CREATE", "USAGE"];
/** The router role reads the registry table and nothing else. */
export const ROUTER_DATABASE_PRIVILEGES = ["CONNECT"];
export const ROUTER_SCHEMA_PRIVILEGES = ["USAGE"];
export const ROUTER_TABLE_PRIVILEGES = ["SELECT"];

/** Name and key of the Kubernetes Secret holding the router's connection string. */
export const ROUTER_SECRET_NAME = "vllm-router-registry";
export const ROUTER_SECRET_KEY = "DATABASE_URL";

/** Role names per environment, so stacks sharing one server do not share credentials. */
export function registryRoleNames(environment: Environment): { admin: string; router: string } {
  return { admin: `vllm_registry_admin_${environment}`, router: `vllm_router_${environment}` };
}

export interface RegistryUrlParts {
  user: string;
  password: string;
  host: string;
  port: number;
  database: string;
  sslmode: string;
}

/** A `postgresql://` URL with user and password percent-encoded. */
export function registryUrl(p: RegistryUrlParts): string {
  return `postgresql://${encodeURIComponent(p.user)}:${encodeURIComponent(p.password)}@${p.host}:${p.port}/${encodeURIComponent(p.database)}?sslmode=${p.sslmode}`;
}

export interface RegistryDatabaseArgs {
  /** Validated `registry` stack settings: host, port, database, adminUser, sslmode, manageDatabase. */
  registry: StackSpec["registry"];
  /** Password of `registry.adminUser` (the `registryAdminPassword` config secret). */
  adminPassword: pulumi.Input<string>;
  /** Stack environment; names the roles. */
  environment: Environment;
  /** Namespace of the router's Secret. */
  namespace: pulumi.Input<string>;
  /** Kubernetes provider for the Secret. */
  kubernetesProvider: k8s.Provider;
  /** Objects (e.g. the Namespace) that must exist before the Secret. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * The registry database, its roles and schema, and the router's Secret. Outputs the admin
 * connection string (a secret) for registry entries and the CLI.
 */
export class RegistryDatabase extends pulumi.ComponentResource {
  /** Admin role URL of the registry database (secret): for RegistryEntry and the CLI. */
  readonly adminConnectionString: pulumi.Output<string>;
  /** Name of the Secret whose `DATABASE_URL` key is the router's (read-only) URL. */
  readonly routerSecretName: pulumi.Output<string>;
  /** The schema migrations; registry entries depend on them. */
  readonly migrations: RegistryMigrations;

  constructor(name: string, args: RegistryDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vllm:registry:RegistryDatabase", name, {}, opts);
    const { registry, environment } = args;
    const roles = registryRoleNames(environment);

    const provider = new postgresql.Provider(
      `${name}-postgresql`,
      {
        host: registry.host,
        port: registry.port,
        username: registry.adminUser,
        password: pulumi.secret(args.adminPassword),
        sslmode: registry.sslmode,
        // A path: the provider reads the file itself, from the project directory (its cwd).
        sslrootcert: registry.sslrootcert,
        // Managed services (RDS, Cloud SQL) do not give out superuser.
        superuser: false,
        connectTimeout: 15,
      },
      { parent: this },
    );
    const pg = { parent: this, provider };

    const password = (role: string) =>
      new random.RandomPassword(
        `${name}-${role}-password`,
        // Alphanumeric: safe in URLs and in every client's connection-string parser.
        { length: 32, special: false },
        { parent: this },
      ).result;
    const adminPassword = password("admin");
    const routerPassword = password("router");

    const adminRole = new postgresql.Role(
      `${name}-admin-role`,
      { name: roles.admin, login: true, password: adminPassword },
      pg,
    );
    const routerRole = new postgresql.Role(
      `${name}-router-role`,
      { name: roles.router, login: true, password: routerPassword, connectionLimit: 100 },
      pg,
    );

    const database = registry.manageDatabase
      ? new postgresql.Database(
          `${name}-database`,
          { name: registry.database, owner: adminRole.name },
          { ...pg, protect: environment === "production" },
        ).name
      : pulumi.output(registry.database);

    const grant = (
      suffix: string,
      grantArgs: Omit<postgresql.GrantArgs, "database">,
      deps: pulumi.Resource[] = [],
    ) =>
      new postgresql.Grant(
        `${name}-${suffix}`,
        { database, ...grantArgs },
        { ...pg, dependsOn: deps },
      );
    const adminGrants = [
      grant("admin-database", {
        role: adminRole.name,
        objectType: "database",
        privileges: ADMIN_DATABASE_PRIVILEGES,
      }),
      grant("admin-schema", {
        role: adminRole.name,
        objectType: "schema",
        schema: "public",
        privileges: ADMIN_SCHEMA_PRIVILEGES,
      }),
    ];

    const url = (user: pulumi.Input<string>, secret: pulumi.Input<string>) =>
      pulumi.secret(
        pulumi.all([user, secret, database]).apply(([u, p, d]) =>
          registryUrl({
            user: u,
            password: p,
            host: registry.host,
            port: registry.port,
            database: d,
            sslmode: registry.sslmode,
          }),
        ),
      );
    this.adminConnectionString = url(adminRole.name, adminPassword);

    this.migrations = new RegistryMigrations(
      `${name}-migrations`,
      { connectionString: this.adminConnectionString, caCertificate: registry.caCertificate },
      { parent: this, dependsOn: adminGrants },
    );

    const routerGrants = [
      grant("router-database", {
        role: routerRole.name,
        objectType: "database",
        privileges: ROUTER_DATABASE_PRIVILEGES,
      }),
      grant("router-schema", {
        role: routerRole.name,
        objectType: "schema",
        schema: "public",
        privileges: ROUTER_SCHEMA_PRIVILEGES,
      }),
      grant(
        "router-table",
        {
          role: routerRole.name,
          objectType: "table",
          schema: "public",
          objects: [REGISTRY_TABLE],
          privileges: ROUTER_TABLE_PRIVILEGES,
        },
        [this.migrations],
      ),
    ];

    const secret = new k8s.core.v1.Secret(
      `${name}-router-secret`,
      {
        metadata: {
          name: ROUTER_SECRET_NAME,
          namespace: args.namespace,
          labels: routerLabels(environment),
        },
        type: "Opaque",
        stringData: { [ROUTER_SECRET_KEY]: url(routerRole.name, routerPassword) },
      },
      {
        parent: this,
        provider: args.kubernetesProvider,
        dependsOn: [...routerGrants, ...(args.dependsOn ?? [])],
      },
    );
    this.routerSecretName = secret.metadata.name;

    this.registerOutputs({
      adminConnectionString: this.adminConnectionString,
      routerSecretName: this.routerSecretName,
    });
  }
}
