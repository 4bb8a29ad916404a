// A registry on a real PostgreSQL as the programs create it on a managed server whose admin is
// not superuser (RDS, Cloud SQL: NOSUPERUSER CREATEDB CREATEROLE): every role, database and
// grant the registry stack and the given environment stacks declare under mocks, run as the SQL
// the postgresql provider sends for it, as the user of the provider it was declared with
// (postgresqlProvider.ts): the admin for roles and the database, the owner role for the grants;
// the migrations as the owner role. Row-level security is then what production has.
import assert from "node:assert/strict";
import { Client } from "pg";
import { ENVIRONMENTS } from "../../components/spec";
import { rawStackFile } from "./stackFiles";
import { registryMigrationsProvider } from "../../components/resources";
import { environmentRole, LATEST_VERSION, type Environment } from "@vllm-fleet/registry";
import { plain, providerOf, ProviderSession, q } from "./postgresqlProvider";
import { MOCK_ADMIN_PASSWORD, MockedResource, runProgram } from "./program";
import { postgresUrl } from "./services";

export const T = {
  role: "postgresql:index/role:Role",
  grant: "postgresql:index/grant:Grant",
  database: "postgresql:index/database:Database",
  migrations: "pulumi-nodejs:dynamic/vllm-registry:RegistryMigrations",
  entry: "pulumi-nodejs:dynamic/vllm-registry:RegistryEntry",
};

export const writerRole = (env: Environment) => `vllm_registry_writer_${env}`;
export const routerRole = (env: Environment) => `vllm_router_${env}`;

export interface AppliedGrant {
  grant: MockedResource;
  /** The user the grant's provider applied it as. */
  user: string;
  /** The privileges the provider read back. */
  read: string[];
}

export interface RegistryServer {
  server: URL;
  database: string;
  /** The managed service's admin user (password MOCK_ADMIN_PASSWORD). */
  adminUser: string;
  /** The server's bootstrap superuser, on its default database. */
  superuser: Client;
  /** What each stack (`registry`, or an environment) declared. */
  declared: Record<string, MockedResource[]>;
  registryOutputs: Record<string, unknown>;
  applied: AppliedGrant[];
  /** Provider sessions to end on close (push ad hoc ones too). */
  sessions: ProviderSession[];
  ofType(stack: string, type: string): MockedResource[];
  /** URL of a declared role, with its declared password, on the registry database. */
  roleUrl(role: string): string;
  /** A session of the provider `r` was declared with, in `stack`. */
  sessionFor(stack: string, r: MockedResource): ProviderSession;
  close(): Promise<void>;
}

export interface RegistryServerOptions {
  /** Makes the database and admin names unique. */
  suffix: string;
  /** Environment stacks to provision after the registry stack. */
  environments: readonly Environment[];
  /** Further admins (NOSUPERUSER CREATEDB CREATEROLE, MOCK_ADMIN_PASSWORD) to create. */
  otherAdmins?: string[];
  /** Further roles a test may create, dropped on close. */
  extraRoles?: string[];
}

/** Provisions the registry stack, then each environment stack's login roles. */
export async function startRegistryServer(o: RegistryServerOptions): Promise<RegistryServer> {
  const database = `reg_${o.suffix}`;
  const adminUser = `reg_admin_${o.suffix}`;
  const admins = [adminUser, ...(o.otherAdmins ?? [])];
  const server = new URL(await postgresUrl());
  const superuser = new Client({ connectionString: server.toString() });
  await superuser.connect();
  const declared: Record<string, MockedResource[]> = {};
  const applied: AppliedGrant[] = [];
  const sessions: ProviderSession[] = [];
  const ofType = (stack: string, type: string) => declared[stack].filter((r) => r.type === type);
  const roleUrl = (role: string) => {
    const declaredRole = Object.values(declared)
      .flat()
      .find((r) => r.type === T.role && r.inputs.name === role)!;
    const u = new URL(server.toString());
    u.username = role;
    u.password = plain(declaredRole.inputs.password);
    u.pathname = `/${database}`;
    return u.toString();
  };
  const sessionFor = (stack: string, r: MockedResource) => {
    const session = new ProviderSession(server, providerOf(declared[stack], r).inputs);
    sessions.push(session);
    return session;
  };

  async function dropRoles() {
    const names = [
      "vllm_registry_owner",
      "vllm_registry_writers",
      "vllm_registry_readers",
      ...ENVIRONMENTS.flatMap((e) => [writerRole(e), routerRole(e), environmentRole(e)]),
      ...(o.extraRoles ?? []),
      ...admins,
    ];
    for (const name of names) {
      const exists = await superuser.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [name]);
      if (!exists.rowCount) continue;
      await superuser.query(`DROP OWNED BY ${q(name)}`);
      await superuser.query(`DROP ROLE ${q(name)}`);
    }
  }

  /** Creates what `stack` declares in the engine's order: roles, databases, migrations, grants. */
  async function provision(stack: string, migrate?: () => Promise<void>) {
    for (const r of ofType(stack, T.role)) await sessionFor(stack, r).createRole(r.inputs);
    for (const d of ofType(stack, T.database)) await sessionFor(stack, d).createDatabase(d.inputs);
    await migrate?.();
    for (const grant of ofType(stack, T.grant)) {
      const session = sessionFor(stack, grant);
      applied.push({ grant, user: session.user, read: await session.grant(grant.inputs) });
    }
  }

  await dropRoles(); // leftovers of an interrupted run on a server this run did not start
  for (const name of admins)
    await superuser.query(
      `CREATE ROLE ${q(name)} LOGIN NOSUPERUSER CREATEDB CREATEROLE PASSWORD '${MOCK_ADMIN_PASSWORD}'`,
    );

  // The registry stack: roles and database as the admin, migrations and grants as the owner.
  const registry = await runProgram("ci", {
    project: "vllm-registry",
    overrides: { database, adminUser },
  });
  declared.registry = registry.resources;
  await provision("registry", async () => {
    const [migrations] = ofType("registry", T.migrations);
    const migrated = await registryMigrationsProvider.create!({
      connectionString: roleUrl("vllm_registry_owner"),
      migrations: migrations.inputs.migrations,
    });
    assert.equal(migrated.outs.version, LATEST_VERSION, "the owner role (not superuser) migrates");
  });

  // Each environment stack, reading the registry stack's outputs: its login roles as the admin.
  for (const env of o.environments) {
    const base = rawStackFile(env).registry as object;
    declared[env] = (
      await runProgram(env, { overrides: { registry: { ...base, database, adminUser } } })
    ).resources;
    await provision(env);
  }

  return {
    server,
    database,
    adminUser,
    superuser,
    declared,
    registryOutputs: registry.outputs,
    applied,
    sessions,
    ofType,
    roleUrl,
    sessionFor,
    async close() {
      for (const s of sessions) await s.end();
      await superuser.query(`DROP DATABASE IF EXISTS ${q(database)} WITH (FORCE)`);
      await dropRoles();
      await superuser.end();
    },
  };
}
