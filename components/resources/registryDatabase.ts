// An environment's access to the shared registry: its login roles (a writer for the program's
// registry entries and the CLI, a read-only router role) and the Kubernetes Secret that hands
// the router its connection string. Each login role is a member of two NOLOGIN roles of the
// registry stack: the environment's group role, which row-level security checks, and the access
// role (writers or readers) that holds the table privileges. Those privileges are granted once,
// by the table's owner, in the registry stack (RegistrySchema): an admin that is not superuser
// owns nothing there, so a grant of its own would be a no-op. This stack grants nothing, owns
// no object of the database, and destroying it leaves the registry as it was.
import * as k8s from "@pulumi/kubernetes";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { buildRouterRegistrySecret } from "../manifests";
import type { Environment, RegistryServer } from "../spec";
import type { LoginKind, RegistryStackOutputs } from "./registryStack";

/** Login role names per environment, so stacks sharing one server do not share credentials. */
export function registryRoleNames(environment: Environment): Record<LoginKind, string> {
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

/** Who the postgresql provider connects as. */
export interface RegistryLogin {
  user: pulumi.Input<string>;
  password: pulumi.Input<string>;
  /** Database the provider connects to first (the provider's default is `postgres`). */
  database?: pulumi.Input<string>;
}

/** The postgresql provider for the registry server, connected as `login`. */
export function registryProvider(
  name: string,
  server: RegistryServer,
  login: RegistryLogin,
  parent: pulumi.Resource,
): postgresql.Provider {
  return new postgresql.Provider(
    name,
    {
      host: server.host,
      port: server.port,
      username: login.user,
      password: pulumi.secret(login.password),
      database: login.database,
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
  /** The registry stack's outputs: the database, the environment's group role, the access roles. */
  shared: pulumi.Input<RegistryStackOutputs>;
  /** Stack environment; names the roles and picks the group role. */
  environment: Environment;
  /** Namespace of the router's Secret (the stack's). */
  namespace: string;
  /** Kubernetes provider for the Secret. */
  kubernetesProvider: k8s.Provider;
  /** Connection limit of the router role: every router pod at once (routerConnectionLimit). */
  routerConnectionLimit: number;
  /** Objects (e.g. the Namespace) that must exist before the Secret. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * An environment's login roles and router Secret on the shared registry. Outputs the writer's
 * connection string (a secret) for registry entries and the CLI.
 */
export class RegistryAccess extends pulumi.ComponentResource {
  /** Writer role URL of the registry database (secret): for RegistryEntry and the CLI. */
  readonly writerConnectionString: pulumi.Output<string>;
  /** Name of the Secret whose `DATABASE_URL` key is the router's (read-only) URL. */
  readonly routerSecretName: pulumi.Output<string>;
  /** The writer's login role; registry entries wait for it. */
  readonly writerRole: postgresql.Role;

  constructor(name: string, args: RegistryAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vllm:registry:RegistryAccess", name, {}, opts);
    const { registry, environment } = args;
    const shared = pulumi.output(args.shared);
    const login = { user: registry.adminUser, password: args.adminPassword };
    const pg = {
      parent: this,
      provider: registryProvider(`${name}-postgresql`, registry, login, this),
    };

    const loginRole = (kind: LoginKind, extra: { connectionLimit?: number }) => {
      const password = generatedPassword(`${name}-${kind}-password`, this);
      const role = new postgresql.Role(
        `${name}-${kind}-role`,
        {
          name: registryRoleNames(environment)[kind],
          login: true,
          password,
          // Membership is all this stack gives: the environment's group role confines the role
          // to the environment's rows, the access role carries the privileges.
          roles: [shared.environmentRoles[environment], shared.accessRoles[kind]],
          ...extra,
        },
        pg,
      );
      return { role, url: secretRegistryUrl(registry, role.name, password, shared.database) };
    };
    const writer = loginRole("writer", {});
    const router = loginRole("router", { connectionLimit: args.routerConnectionLimit });
    this.writerConnectionString = writer.url;
    this.writerRole = writer.role;

    const secret = new k8s.core.v1.Secret(
      `${name}-router-secret`,
      buildRouterRegistrySecret(
        { environment, namespace: args.namespace },
        router.url,
      ) as k8s.core.v1.SecretArgs,
      {
        parent: this,
        provider: args.kubernetesProvider,
        dependsOn: [router.role, ...(args.dependsOn ?? [])],
      },
    );
    this.routerSecretName = secret.metadata.name;

    this.registerOutputs({
      writerConnectionString: this.writerConnectionString,
      routerSecretName: this.routerSecretName,
    });
  }
}
