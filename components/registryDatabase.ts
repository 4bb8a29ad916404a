// An environment's access to the shared registry: its login roles (a writer for the program's
// registry entries and the CLI, a read-only router role), both members of the environment's
// group role so that row-level security confines them to its rows, their grants, and the
// Kubernetes Secret that hands the router its connection string. The database, the schema and
// the group roles belong to the registry stack (RegistrySchema); nothing here owns an object
// of the database, so destroying an environment stack leaves the registry as it was.
import * as k8s from "@pulumi/kubernetes";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { REGISTRY_TABLE } from "../router/src/registry/types";
import type { RegistryServer } from "./config";
import { Environment, routerLabels } from "./naming";
import type { RegistryStackOutputs } from "./registryStack";

/** The `id` bigserial's sequence: inserting a row draws from it. */
export const REGISTRY_SEQUENCE = `${REGISTRY_TABLE}_id_seq`;

// Explicit privilege lists: `ALL` diffs forever in @pulumi/postgresql, and says too much.
/** Both login roles connect and resolve names in `public`. */
export const LOGIN_DATABASE_PRIVILEGES = ["CONNECT"];
export const LOGIN_SCHEMA_PRIVILEGES = ["USAGE"];
/** Table and sequence privileges per login role; row-level security narrows them to the environment's rows. */
export const LOGIN_ROLE_PRIVILEGES = {
  writer: { table: ["SELECT", "INSERT", "UPDATE", "DELETE"], sequence: ["USAGE"] },
  router: { table: ["SELECT"], sequence: [] as string[] },
} as const;

/** Name and key of the Kubernetes Secret holding the router's connection string. */
export const ROUTER_SECRET_NAME = "vllm-router-registry";
export const ROUTER_SECRET_KEY = "DATABASE_URL";

/** Login role names per environment, so stacks sharing one server do not share credentials. */
export function registryRoleNames(environment: Environment): { writer: string; router: string } {
  return { writer: `vllm_registry_writer_${environment}`, router: `vllm_router_${environment}` };
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

/** A secret URL of `database` on `server` for a role and its password. */
export function secretRegistryUrl(
  server: RegistryServer,
  user: pulumi.Input<string>,
  password: pulumi.Input<string>,
  database: pulumi.Input<string>,
): pulumi.Output<string> {
  return pulumi.secret(
    pulumi.all([user, password, database]).apply(([u, p, d]) =>
      registryUrl({
        user: u,
        password: p,
        host: server.host,
        port: server.port,
        database: d,
        sslmode: server.sslmode,
      }),
    ),
  );
}

/** The postgresql provider for the registry server, connected as its admin user. */
export function registryProvider(
  name: string,
  server: RegistryServer,
  adminPassword: pulumi.Input<string>,
  parent: pulumi.Resource,
): postgresql.Provider {
  return new postgresql.Provider(
    `${name}-postgresql`,
    {
      host: server.host,
      port: server.port,
      username: server.adminUser,
      password: pulumi.secret(adminPassword),
      sslmode: server.sslmode,
      // A path: the provider reads the file itself, from the project directory (its cwd).
      sslrootcert: server.sslrootcert,
      // Managed services (RDS, Cloud SQL) do not give out superuser.
      superuser: false,
      connectTimeout: 15,
    },
    { parent },
  );
}

/** A generated password for a registry login role. */
export function generatedPassword(name: string, parent: pulumi.Resource): pulumi.Output<string> {
  return new random.RandomPassword(
    name,
    // Alphanumeric: safe in URLs and in every client's connection-string parser.
    { length: 32, special: false },
    { parent },
  ).result;
}

export interface RegistryAccessArgs {
  /** Validated `registry` stack settings: the server and its admin user. */
  registry: RegistryServer;
  /** Password of `registry.adminUser` (the `registryAdminPassword` config secret). */
  adminPassword: pulumi.Input<string>;
  /** The registry stack's outputs: the database and the environment's group role. */
  shared: pulumi.Input<RegistryStackOutputs>;
  /** Stack environment; names the roles and picks the group role. */
  environment: Environment;
  /** Namespace of the router's Secret. */
  namespace: pulumi.Input<string>;
  /** Kubernetes provider for the Secret. */
  kubernetesProvider: k8s.Provider;
  /** Objects (e.g. the Namespace) that must exist before the Secret. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * An environment's login roles, grants and router Secret on the shared registry. Outputs the
 * writer's connection string (a secret) for registry entries and the CLI.
 */
export class RegistryAccess extends pulumi.ComponentResource {
  /** Writer role URL of the registry database (secret): for RegistryEntry and the CLI. */
  readonly writerConnectionString: pulumi.Output<string>;
  /** Name of the Secret whose `DATABASE_URL` key is the router's (read-only) URL. */
  readonly routerSecretName: pulumi.Output<string>;
  /** The writer's grants; registry entries wait for them. */
  readonly writerGrants: postgresql.Grant[];

  constructor(name: string, args: RegistryAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vllm:registry:RegistryAccess", name, {}, opts);
    const { registry, environment } = args;
    const shared = pulumi.output(args.shared);
    const database = shared.database;
    const pg = {
      parent: this,
      provider: registryProvider(name, registry, args.adminPassword, this),
    };

    const login = (
      kind: keyof typeof LOGIN_ROLE_PRIVILEGES,
      extra: { connectionLimit?: number },
    ) => {
      const password = generatedPassword(`${name}-${kind}-password`, this);
      const role = new postgresql.Role(
        `${name}-${kind}-role`,
        {
          name: registryRoleNames(environment)[kind],
          login: true,
          password,
          // Membership in the environment's group role is what row-level security checks.
          roles: [shared.environmentRoles[environment]],
          ...extra,
        },
        pg,
      );
      const grant = (object: string, grantArgs: Omit<postgresql.GrantArgs, "database" | "role">) =>
        new postgresql.Grant(
          `${name}-${kind}-${object}`,
          { database, role: role.name, schema: "public", ...grantArgs },
          pg,
        );
      const privileges = LOGIN_ROLE_PRIVILEGES[kind];
      const grants = [
        grant("database", { objectType: "database", privileges: LOGIN_DATABASE_PRIVILEGES }),
        grant("schema", { objectType: "schema", privileges: LOGIN_SCHEMA_PRIVILEGES }),
        grant("table", {
          objectType: "table",
          objects: [REGISTRY_TABLE],
          privileges: [...privileges.table],
        }),
        ...(privileges.sequence.length
          ? [
              grant("sequence", {
                objectType: "sequence",
                objects: [REGISTRY_SEQUENCE],
                privileges: [...privileges.sequence],
              }),
            ]
          : []),
      ];
      return { url: secretRegistryUrl(registry, role.name, password, database), grants };
    };
    const writer = login("writer", {});
    const router = login("router", { connectionLimit: 100 });
    this.writerConnectionString = writer.url;
    this.writerGrants = writer.grants;

    const secret = new k8s.core.v1.Secret(
      `${name}-router-secret`,
      {
        metadata: {
          name: ROUTER_SECRET_NAME,
          namespace: args.namespace,
          labels: routerLabels(environment),
        },
        type: "Opaque",
        stringData: { [ROUTER_SECRET_KEY]: router.url },
      },
      {
        parent: this,
        provider: args.kubernetesProvider,
        dependsOn: [...router.grants, ...(args.dependsOn ?? [])],
      },
    );
    this.routerSecretName = secret.metadata.name;

    this.registerOutputs({
      writerConnectionString: this.writerConnectionString,
      routerSecretName: this.routerSecretName,
    });
  }
}
