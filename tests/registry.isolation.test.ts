// PostgreSQL keeps the environments of one registry apart, and destroying an environment stack
// leaves the registry intact, on a managed server whose admin is not superuser (RDS, Cloud SQL:
// NOSUPERUSER CREATEDB CREATEROLE). Every role, database and grant comes from what the programs
// declare under mocks (the registry stack and the development, staging and production stacks)
// and runs as the SQL the postgresql provider sends for it, as the user of the provider it was
// declared with (tests/support/postgresqlProvider.ts): the admin for roles and the database, the
// registry's owner role for the grants.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import {
  RegistryEntryInputs,
  registryEntryProvider,
  registryStackProblems,
} from "../components/resources";
import { parseStackConfig } from "../components/spec";
import { rawStackFile } from "./support/stackFiles";
import {
  LATEST_VERSION,
  REGISTRY_CHANNEL,
  currentVersion,
  environmentRole,
  migrate,
  listEntries,
  setStatus,
  upsertEntry,
  type EntryInput,
  type Environment,
} from "@vllm-fleet/registry";
import { runHost, serializeToFile } from "./support/dynamicProviderHost";
import { MOCK_ADMIN_PASSWORD, MockedResource } from "./support/program";
import {
  routerRole,
  RegistryServer,
  startRegistryServer,
  T,
  writerRole,
} from "./support/registryServer";
import { ProviderSession, q } from "./support/postgresqlProvider";
import { redisUrl } from "./support/services";

const ENVS = ["development", "staging", "production"] as const;
const TABLE = "public.model_registry_entries";
const SEQUENCE = "public.model_registry_entries_id_seq";

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

describe("registry isolation between environments (real PostgreSQL, admin not superuser)", () => {
  const suffix = `iso_${randomBytes(5).toString("hex")}`;
  // A second admin, as a stack configured with another admin would use.
  const otherAdmin = `reg_admin2_${suffix}`;
  let reg: RegistryServer;
  let server: URL;
  let database: string;
  let adminUser: string;
  let superuser: Client; // the server's bootstrap superuser: creates the admins, cleans up
  let observer: Client; // the same, on the registry database: the test's view, no provider's
  let declared: Record<string, MockedResource[]>;
  let registryOutputs: Record<string, unknown>;
  let sessions: ProviderSession[];
  const clients: Client[] = [];
  const connect = async (role: string) => {
    const c = new Client({ connectionString: reg.roleUrl(role) });
    await c.connect();
    clients.push(c);
    return c;
  };
  const writer = writerRole;
  const router = routerRole;
  let entries: Record<Environment, RegistryEntryInputs[]>;
  const ofType = (stack: string, type: string) => reg.ofType(stack, type);

  before(async function () {
    this.timeout(120000);
    reg = await startRegistryServer({
      suffix,
      environments: ENVS,
      otherAdmins: [otherAdmin],
      extraRoles: [`${writer("staging")}_b`],
    });
    ({ server, database, adminUser, superuser, declared, registryOutputs, sessions } = reg);
    const u = new URL(server.toString());
    u.pathname = `/${database}`;
    observer = new Client({ connectionString: u.toString() });
    await observer.connect();

    // Each environment's rows, as its writer role.
    const redis = await redisUrl();
    entries = {} as Record<Environment, RegistryEntryInputs[]>;
    for (const env of ENVS) {
      entries[env] = ofType(env, T.entry).map((r) => ({
        ...(r.inputs as RegistryEntryInputs),
        connectionString: reg.roleUrl(writer(env)),
        redisUrl: redis,
      }));
      for (const e of entries[env]) await registryEntryProvider.create!(e);
    }
  });

  after(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await observer?.end();
    await reg?.close();
  });

  const rowsOf = async (c: Client) =>
    (await c.query(`SELECT deployment_environment AS env, model_name FROM model_registry_entries`))
      .rows;
  const production = () =>
    observer.query(
      `SELECT * FROM model_registry_entries WHERE deployment_environment = 'production' ORDER BY id`,
    );

  it("declares each environment's login roles as members of its group role and their access role only", () => {
    for (const env of ENVS) {
      assert.deepEqual(
        ofType(env, T.role).map((r) => r.inputs.roles),
        [
          [environmentRole(env), "vllm_registry_writers"],
          [environmentRole(env), "vllm_registry_readers"],
        ],
      );
      assert.deepEqual(ofType(env, T.grant), [], "environment stacks grant nothing");
    }
  });

  // The registry stack's provider for grants connects as the table's owner, so PostgreSQL applies
  // each grant and the provider reads back exactly the declared list: no diff on the next preview.
  it("the owner's grants really happen: the provider reads back what each Grant declares", async () => {
    for (const { grant, user, read } of reg.applied) {
      assert.deepEqual(read, [...grant.inputs.privileges].sort(), `${grant.name} as ${user}`);
      assert.equal(user, "vllm_registry_owner", `${grant.name} is granted by the owner`);
    }
    assert.equal(reg.applied.length, 5);
    const { rows } = await observer.query(
      `SELECT datacl::text[] AS acl FROM pg_database WHERE datname = $1`,
      [database],
    );
    for (const access of ["vllm_registry_writers", "vllm_registry_readers"])
      assert.ok(rows[0].acl.includes(`${access}=c/vllm_registry_owner`), rows[0].acl.join(" "));
  });

  it("each login role holds exactly its privileges, through its access role", async () => {
    const held = async (role: string) => {
      const { rows } = await observer.query(
        `SELECT has_database_privilege($1, current_database(), 'CONNECT') AS connect,
           ARRAY(SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p
                 WHERE has_table_privilege($1, '${TABLE}', p)) AS entries,
           has_sequence_privilege($1, '${SEQUENCE}', 'USAGE') AS sequence,
           has_table_privilege($1, 'public.model_registry_migrations', 'SELECT') AS migrations,
           has_schema_privilege($1, 'public', 'CREATE') AS create`,
        [role],
      );
      return rows[0];
    };
    for (const env of ENVS) {
      assert.deepEqual(await held(writer(env)), {
        connect: true,
        entries: ["SELECT", "INSERT", "UPDATE", "DELETE"],
        sequence: true,
        migrations: false,
        create: false,
      });
      assert.deepEqual(await held(router(env)), {
        connect: true,
        entries: ["SELECT"],
        sequence: false,
        migrations: false,
        create: false,
      });
    }
  });

  it("an environment's writer cannot migrate: the registry stack's owner does", async () => {
    const c = await connect(writer("staging"));
    await assert.rejects(
      migrate(c),
      /role vllm_registry_writer_staging cannot migrate the registry: it has no CREATE privilege on schema public and the registry's tables belong to vllm_registry_owner/,
    );
  });

  // CONNECT is PUBLIC's on a new database; a hardened server revokes it. The access roles' own
  // CONNECT keeps the registry working there.
  it("login roles connect even where the database's CONNECT is revoked from PUBLIC", async () => {
    const owner = await connect("vllm_registry_owner");
    await owner.query(`REVOKE CONNECT ON DATABASE ${q(database)} FROM PUBLIC`);
    try {
      const r = await connect(router("staging"));
      assert.ok((await rowsOf(r)).length >= 1);
      await assert.rejects(
        new ProviderSession(server, {
          username: otherAdmin,
          password: MOCK_ADMIN_PASSWORD,
          database,
        })
          .client()
          .then((c) => c.end()),
        /permission denied for database/,
        "a role without CONNECT of its own is refused",
      );
    } finally {
      await owner.query(`GRANT CONNECT ON DATABASE ${q(database)} TO PUBLIC`);
    }
  });

  // Why the grants are the owner's: the provider's database grant borrows no owner
  // (getRolesToGrant returns none for objectType database), so an admin that is not superuser
  // grants as itself, holds only PUBLIC's CONNECT without grant option, and PostgreSQL grants
  // nothing; the provider reads [] back and shows a diff on every preview.
  it("an admin's own CONNECT grant is a no-op PostgreSQL only warns about", async () => {
    const session = new ProviderSession(server, {
      username: adminUser,
      password: MOCK_ADMIN_PASSWORD,
    });
    sessions.push(session);
    const read = await session.grant({
      database,
      role: writer("staging"),
      objectType: "database",
      privileges: ["CONNECT"],
    });
    assert.deepEqual(read, []);
    assert.ok(
      session.notices.some((n) => /no privileges were granted/.test(n)),
      session.notices.join("; "),
    );
  });

  it("the admin itself reads no rows: it owns nothing and holds no table privilege", async () => {
    const session = new ProviderSession(server, {
      username: adminUser,
      password: MOCK_ADMIN_PASSWORD,
      database,
    });
    sessions.push(session);
    const c = await session.client();
    await assert.rejects(rowsOf(c), /permission denied for table model_registry_entries/);
  });

  // PostgreSQL 16 restricted CREATEROLE: a CREATEROLE admin that is not superuser holds ADMIN
  // OPTION only on the roles it created (https://www.postgresql.org/docs/16/sql-createrole.html),
  // and adding a member needs it (https://www.postgresql.org/docs/16/sql-grant.html).
  it("an environment stack with another admin fails to add its login roles, as registry.adminUser's check says", async () => {
    const raw = rawStackFile("staging");
    const spec = parseStackConfig({
      ...raw,
      registry: { ...(raw.registry as object), database, adminUser: otherAdmin },
    });
    const problems = registryStackProblems(spec.registry, "staging", registryOutputs);
    assert.ok(
      problems.some((p) => p.startsWith(`registry.adminUser: is '${otherAdmin}' but `)),
      problems.join("\n"),
    );
    const [role] = ofType("staging", T.role);
    const session = new ProviderSession(server, {
      username: otherAdmin,
      password: MOCK_ADMIN_PASSWORD,
    });
    sessions.push(session);
    await assert.rejects(
      session.createRole({ ...role.inputs, name: `${writer("staging")}_b` }),
      /permission denied to grant role "vllm_registry_env_staging"/,
    );
    const left = await superuser.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [
      `${writer("staging")}_b`,
    ]);
    assert.equal(left.rowCount, 0, "the provider's transaction left nothing behind");
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
      const hijack = { ...entries.production[0], connectionString: reg.roleUrl(writer("staging")) };
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
      await observer.query(
        `SELECT * FROM model_registry_entries WHERE deployment_environment = 'staging' ORDER BY id`,
      )
    ).rows;
    const dev = declared.development;
    const replayed = [T.entry, T.role];
    for (const r of dev.filter((x) => /^(postgresql|pulumi-nodejs):/.test(x.type)))
      assert.ok(replayed.includes(r.type), `no delete replay for ${r.type} ${r.name}`);
    // The engine deletes dependents first: registry entries, then the login roles, as the admin
    // (resourcePostgreSQLRoleDelete borrows each role's membership for REASSIGN/DROP OWNED).
    for (const e of entries.development) await registryEntryProvider.delete!(e.modelName, e);
    for (const r of ofType("development", T.role))
      await reg.sessionFor("development", r).deleteRole(r.inputs);
    const gone = await superuser.query(`SELECT 1 FROM pg_roles WHERE rolname = ANY($1)`, [
      [writer("development"), router("development")],
    ]);
    assert.equal(gone.rowCount, 0, "development's login roles are dropped");

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
    const table = await observer.query(
      `SELECT tableowner FROM pg_tables WHERE tablename = 'model_registry_entries'`,
    );
    assert.deepEqual(table.rows, [{ tableowner: "vllm_registry_owner" }]);
    const groups = await superuser.query(
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
        await observer.query(
          `SELECT count(*)::int AS n FROM model_registry_entries WHERE deployment_environment = 'staging'`,
        )
      ).rows[0].n,
      staging.length,
    );
  });
});
