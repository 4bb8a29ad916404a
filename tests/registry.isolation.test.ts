// PostgreSQL keeps the environments of one registry apart, and destroying an environment stack
// leaves the registry intact. Every role, grant and database comes from what the programs
// declare under mocks (the registry stack and the development, staging and production stacks),
// turned into the SQL the postgresql provider runs for it
// (cyrilgdn/terraform-provider-postgresql, postgresql/resource_postgresql_role.go,
// resource_postgresql_grant.go: createGrantQuery / createRevokeQuery, resource_postgresql_database.go).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Client } from "pg";
import { RegistryEntryInputs, registryEntryProvider } from "../components/registryEntry";
import { registryMigrationsProvider } from "../components/registryMigrations";
import {
  LATEST_VERSION,
  REGISTRY_CHANNEL,
  currentVersion,
  environmentRole,
} from "../router/src/registry/migrations";
import { listEntries, setStatus, upsertEntry } from "../router/src/registry/queries";
import type { EntryInput, Environment } from "../router/src/registry/types";
import { runHost, serializeToFile } from "./support/dynamicProviderHost";
import { PROJECT } from "../components/config";
import { loadStackConfig } from "../components/stackFile";
import { MockedResource, runProgram } from "./support/program";
import { postgresUrl, redisUrl } from "./support/services";

const T = {
  role: "postgresql:index/role:Role",
  grant: "postgresql:index/grant:Grant",
  database: "postgresql:index/database:Database",
  migrations: "pulumi-nodejs:dynamic/vllm-registry:RegistryMigrations",
  entry: "pulumi-nodejs:dynamic/vllm-registry:RegistryEntry",
};
const ENVS = ["development", "staging", "production"] as const;

/** The row a registry entry resource writes. */
function entryInput(e: RegistryEntryInputs): EntryInput {
  return {
    modelName: e.modelName,
    environment: e.environment,
    endpoint: e.endpoint,
    namespace: e.namespace,
    servedModelName: e.servedModelName,
    managedBy: e.managedBy,
  };
}

const q = (ident: string) => `"${ident.replace(/"/g, '""')}"`;

/** A mocked input as the program gave it, secret or not. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function plain(v: any): any {
  return v && v[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig ? v.value : v;
}

/** The provider's CREATE for a Role or Database, and the GRANT for a Grant (with the database it connects to). */
function createSql(r: MockedResource): { database?: string; sql: string[] } {
  const i = r.inputs;
  switch (r.type) {
    case T.role:
      return {
        sql: [
          `CREATE ROLE ${q(i.name)} ${i.login ? "LOGIN" : "NOLOGIN"}` +
            (i.password ? ` PASSWORD '${plain(i.password)}'` : "") +
            (i.connectionLimit ? ` CONNECTION LIMIT ${i.connectionLimit}` : ""),
          // grantRoles: the role's `roles` are granted to it.
          ...(i.roles ?? []).map((g: string) => `GRANT ${q(g)} TO ${q(i.name)}`),
        ],
      };
    case T.database:
      return { sql: [`CREATE DATABASE ${q(i.name)} OWNER ${q(i.owner)}`] };
    case T.grant:
      return { database: i.database, sql: [grantSql("GRANT", i)] };
    default:
      throw new Error(`no SQL for ${r.type}`);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function grantSql(verb: "GRANT" | "REVOKE", i: any): string {
  const what = i.privileges.join(",");
  const to = verb === "GRANT" ? "TO" : "FROM";
  switch (i.objectType) {
    case "database":
      return `${verb} ${what} ON DATABASE ${q(i.database)} ${to} ${q(i.role)}`;
    case "schema":
      return `${verb} ${what} ON SCHEMA ${q(i.schema)} ${to} ${q(i.role)}`;
    default:
      return `${verb} ${what} ON ${i.objectType.toUpperCase()} ${i.objects
        .map((o: string) => `${q(i.schema)}.${q(o)}`)
        .join(",")} ${to} ${q(i.role)}`;
  }
}

/** The provider's delete of a Grant: createRevokeQuery (ALL for database and schema, the listed privileges otherwise). */
function revokeSql(r: MockedResource): { database: string; sql: string } {
  const i = r.inputs;
  const all = ["database", "schema"].includes(i.objectType);
  return {
    database: i.database,
    sql: grantSql("REVOKE", { ...i, privileges: all ? ["ALL PRIVILEGES"] : i.privileges }),
  };
}

describe("registry isolation between environments (real PostgreSQL)", () => {
  const database = `reg_iso_${randomBytes(5).toString("hex")}`;
  let server: URL;
  let admin: Client; // the provider's admin user, on the default database
  let registryAdmin: Client; // the same user, on the registry database
  const declared: Record<string, MockedResource[]> = {};
  const clients: Client[] = [];
  const roleUrl = (role: string) => {
    const u = new URL(server.toString());
    u.username = role;
    u.password = plain(roleOf(role).inputs.password);
    u.pathname = `/${database}`;
    return u.toString();
  };
  const roleOf = (name: string) =>
    Object.values(declared)
      .flat()
      .find((r) => r.type === T.role && r.inputs.name === name)!;
  const connect = async (role: string) => {
    const c = new Client({ connectionString: roleUrl(role) });
    await c.connect();
    clients.push(c);
    return c;
  };
  const writer = (env: Environment) => `vllm_registry_writer_${env}`;
  const router = (env: Environment) => `vllm_router_${env}`;
  let entries: Record<Environment, RegistryEntryInputs[]>;

  async function run(c: Client, statements: string[]) {
    for (const sql of statements) await c.query(sql);
  }

  async function dropRoles() {
    const names = [
      "vllm_registry_owner",
      ...ENVS.flatMap((e) => [writer(e), router(e), environmentRole(e)]),
    ];
    for (const name of names) {
      const exists = await admin.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [name]);
      if (!exists.rowCount) continue;
      await admin.query(`DROP OWNED BY ${q(name)}`);
      await admin.query(`DROP ROLE ${q(name)}`);
    }
  }

  /** Creates what a stack declares, in the order the engine would (roles, database, grants). */
  async function provision(resources: MockedResource[]) {
    const order = [T.role, T.database, T.grant];
    for (const type of order)
      for (const r of resources.filter((x) => x.type === type)) {
        const { database: db, sql } = createSql(r);
        await run(db ? registryAdmin : admin, sql);
        if (r.type === T.database) {
          const u = new URL(server.toString());
          u.pathname = `/${database}`;
          registryAdmin = new Client({ connectionString: u.toString() });
          await registryAdmin.connect();
        }
      }
  }

  before(async function () {
    this.timeout(120000);
    server = new URL(await postgresUrl());
    admin = new Client({ connectionString: server.toString() });
    await admin.connect();
    await dropRoles(); // leftovers of an interrupted run on a server this run did not start

    // The registry stack: owner, group roles, database, schema grant, then its migrations.
    declared.registry = (
      await runProgram("ci", { project: "vllm-registry", overrides: { database } })
    ).resources;
    await provision(declared.registry);
    const [migrations] = declared.registry.filter((r) => r.type === T.migrations);
    const migrated = await registryMigrationsProvider.create!({
      connectionString: roleUrl("vllm_registry_owner"),
      migrations: migrations.inputs.migrations,
    });
    assert.equal(migrated.outs.version, LATEST_VERSION, "the owner role (not superuser) migrates");

    // Each environment stack, reading the registry stack's outputs, then its rows.
    const redis = await redisUrl();
    entries = {} as Record<Environment, RegistryEntryInputs[]>;
    for (const env of ENVS) {
      const base = JSON.parse(loadStackConfig(env)[`${PROJECT}:registry`]);
      declared[env] = (
        await runProgram(env, { overrides: { registry: { ...base, database } } })
      ).resources;
      await provision(declared[env]);
      entries[env] = declared[env]
        .filter((r) => r.type === T.entry)
        .map((r) => ({
          ...(r.inputs as RegistryEntryInputs),
          connectionString: roleUrl(writer(env)),
          redisUrl: redis,
        }));
      for (const e of entries[env]) await registryEntryProvider.create!(e);
    }
  });

  after(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await registryAdmin?.end();
    await admin.query(`DROP DATABASE IF EXISTS ${q(database)} WITH (FORCE)`);
    await dropRoles();
    await admin.end();
  });

  const rowsOf = async (c: Client) =>
    (await c.query(`SELECT deployment_environment AS env, model_name FROM model_registry_entries`))
      .rows;
  const production = () =>
    registryAdmin.query(
      `SELECT * FROM model_registry_entries WHERE deployment_environment = 'production' ORDER BY id`,
    );

  it("declares each environment's login roles as members of its group role only", () => {
    for (const env of ENVS) {
      const roles = declared[env].filter((r) => r.type === T.role);
      assert.deepEqual(
        roles.map((r) => r.inputs.roles),
        [[environmentRole(env)], [environmentRole(env)]],
      );
    }
  });

  it("staging's writer sees only staging rows", async () => {
    const c = await connect(writer("staging"));
    const rows = await rowsOf(c);
    assert.ok(rows.length >= 1);
    assert.deepEqual(
      rows.filter((r) => r.env !== "staging"),
      [],
    );
    assert.deepEqual(await listEntries(c, { environment: "production" }), []);
  });

  it("staging's writer cannot insert, update or delete production rows", async () => {
    const before = (await production()).rows;
    assert.ok(before.length >= 2, "production has rows");
    const c = await connect(writer("staging"));
    await assert.rejects(
      upsertEntry(c, {
        modelName: "intruder",
        environment: "production",
        endpoint: "intruder.evil.svc.cluster.local:8000",
        namespace: "llm-production",
      }),
      /new row violates row-level security policy/,
    );
    // ON CONFLICT over production's own row: the conflicting row is not staging's to update.
    await assert.rejects(
      upsertEntry(c, { ...entryInput(entries.production[0]), endpoint: "evil.example:1" }),
      /row-level security/,
    );
    const updated = await c.query(
      `UPDATE model_registry_entries SET endpoint = 'evil.example:1' WHERE deployment_environment = 'production'`,
    );
    assert.equal(updated.rowCount, 0);
    const deleted = await c.query(
      `DELETE FROM model_registry_entries WHERE deployment_environment = 'production'`,
    );
    assert.equal(deleted.rowCount, 0);
    assert.equal(
      await setStatus(c, "production", entries.production[0].modelName, "disabled", "x"),
      undefined,
    );
    // Nor move one of its own rows into production.
    await assert.rejects(
      c.query(
        `UPDATE model_registry_entries SET deployment_environment = 'production' WHERE deployment_environment = 'staging'`,
      ),
      /new row violates row-level security policy/,
    );
    assert.deepEqual((await production()).rows, before, "production rows unchanged");
  });

  it("no session setting or role switch takes a writer into another environment", async () => {
    const c = await connect(writer("staging"));
    await assert.rejects(
      c.query(`SET ROLE ${environmentRole("production")}`),
      /permission denied to set role/,
    );
    await assert.rejects(
      c.query(`GRANT ${environmentRole("production")} TO ${writer("staging")}`),
      /permission denied to grant role/,
    );
    // row_security = off makes a query that policies would filter fail, it does not bypass them.
    await c.query(`SET row_security = off`);
    await assert.rejects(rowsOf(c), /query would be affected by row-level security policy/);
    await c.query(`RESET row_security`);
    await assert.rejects(
      c.query(`ALTER TABLE model_registry_entries DISABLE ROW LEVEL SECURITY`),
      /must be owner of table/,
    );
  });

  it("staging's router reads only staging rows, cannot write, and hears staging's changes", async () => {
    const r = await connect(router("staging"));
    const rows = await rowsOf(r);
    assert.ok(rows.length >= 1 && rows.every((x) => x.env === "staging"));
    const denied = /permission denied/;
    await assert.rejects(
      r.query(
        `INSERT INTO model_registry_entries (model_name, deployment_environment, endpoint, served_model_name) VALUES ('x', 'staging', 'x:1', 'x')`,
      ),
      denied,
    );
    await assert.rejects(r.query(`UPDATE model_registry_entries SET status = 'ready'`), denied);
    await assert.rejects(r.query(`DELETE FROM model_registry_entries`), denied);
    await assert.rejects(r.query(`TRUNCATE model_registry_entries`), denied);
    await assert.rejects(r.query(`CREATE TABLE public.intruder (id int)`), denied);
    await assert.rejects(r.query(`SELECT * FROM model_registry_migrations`), denied);

    await r.query(`LISTEN ${REGISTRY_CHANNEL}`);
    const heard = new Promise<string>((resolve) =>
      r.once("notification", (n) => resolve(n.payload ?? "")),
    );
    const w = await connect(writer("staging"));
    const model = entries.staging[0].modelName;
    await setStatus(w, "staging", model, "disabled", "isolation test");
    assert.deepEqual(JSON.parse(await heard), { environment: "staging", model });
    await setStatus(w, "staging", model, "ready");
  });

  it("the serialized RegistryEntry provider with staging's writer URL cannot touch production's row", async () => {
    const before = (await production()).rows;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reg-isolation-"));
    try {
      const file = await serializeToFile(registryEntryProvider, dir);
      const hijack = { ...entries.production[0], connectionString: roleUrl(writer("staging")) };
      await assert.rejects(
        runHost({ PROVIDER_FILE: file, INPUTS: JSON.stringify(hijack), STEPS: "create" }),
        /new row violates row-level security policy/,
      );
      // delete (disable) with production's state but staging's credentials changes nothing.
      await runHost({
        PROVIDER_FILE: file,
        INPUTS: JSON.stringify({ ...hijack, entryId: 0, status: "ready" }),
        ID: `production/${hijack.modelName}`,
        STEPS: "delete",
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual((await production()).rows, before, "production rows unchanged");
  });

  it("destroying development leaves production's rows, the table and the database intact", async () => {
    const before = (await production()).rows;
    const staging = (
      await registryAdmin.query(
        `SELECT * FROM model_registry_entries WHERE deployment_environment = 'staging' ORDER BY id`,
      )
    ).rows;
    const dev = declared.development;
    const replayed = [T.entry, T.grant, T.database, T.role];
    for (const r of dev.filter((x) => /^(postgresql|pulumi-nodejs):/.test(x.type)))
      assert.ok(replayed.includes(r.type), `no delete replay for ${r.type} ${r.name}`);
    // The engine deletes dependents first: registry entries, grants, databases, then roles.
    for (const e of entries.development) await registryEntryProvider.delete!(e.modelName, e);
    for (const g of dev.filter((r) => r.type === T.grant)) {
      const { database: db, sql } = revokeSql(g);
      assert.equal(db, database);
      await registryAdmin.query(sql);
    }
    for (const d of dev.filter((r) => r.type === T.database)) {
      // resourcePostgreSQLDatabaseDelete: block and terminate connections, then drop it.
      await admin.query(`ALTER DATABASE ${q(d.inputs.name)} ALLOW_CONNECTIONS false`);
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
        [d.inputs.name],
      );
      await admin.query(`DROP DATABASE ${q(d.inputs.name)} WITH ( FORCE )`);
    }
    for (const role of dev.filter((r) => r.type === T.role).map((r) => r.inputs.name)) {
      // resourcePostgreSQLRoleDelete (skip_reassign_owned unset): REASSIGN OWNED and DROP OWNED
      // on the provider's database (postgres by default), then DROP ROLE. Run them on the
      // registry database too, as if the provider connected there.
      for (const c of [admin, registryAdmin]) {
        await c.query(`REASSIGN OWNED BY ${q(role)} TO CURRENT_USER`);
        await c.query(`DROP OWNED BY ${q(role)}`);
      }
      await admin.query(`DROP ROLE ${q(role)}`);
    }

    const owner = await connect("vllm_registry_owner");
    assert.equal(await currentVersion(owner), LATEST_VERSION, "the schema is intact");
    const devRows = await owner.query(
      `SELECT status, disabled_reason FROM model_registry_entries WHERE deployment_environment = 'development'`,
    );
    assert.ok(devRows.rows.length >= 1);
    for (const row of devRows.rows)
      assert.deepEqual(row, {
        status: "disabled",
        disabled_reason: "removed from stack development",
      });
    assert.deepEqual((await production()).rows, before, "production rows unchanged");
    const table = await registryAdmin.query(
      `SELECT tableowner FROM pg_tables WHERE tablename = 'model_registry_entries'`,
    );
    assert.deepEqual(table.rows, [{ tableowner: "vllm_registry_owner" }]);
    const groups = await admin.query(
      `SELECT rolname FROM pg_roles WHERE rolname LIKE 'vllm_registry_env_%' ORDER BY rolname`,
    );
    assert.deepEqual(
      groups.rows.map((r) => r.rolname),
      [
        "vllm_registry_env_development",
        "vllm_registry_env_production",
        "vllm_registry_env_staging",
      ],
    );
    // Production's router still reads its rows; staging's writer still writes its own.
    const prodRouter = await connect(router("production"));
    assert.equal((await rowsOf(prodRouter)).length, before.length);
    const w = await connect(writer("staging"));
    await upsertEntry(w, entryInput(entries.staging[0]));
    assert.equal(
      (
        await registryAdmin.query(
          `SELECT count(*)::int AS n FROM model_registry_entries WHERE deployment_environment = 'staging'`,
        )
      ).rows[0].n,
      staging.length,
    );
  });
});
