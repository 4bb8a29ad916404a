// RegistryDatabase under Pulumi mocks (what it declares), and its privilege lists applied to a
// real PostgreSQL (what they allow): the admin role can migrate, the router role only reads.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { Client } from "pg";
import {
  ADMIN_DATABASE_PRIVILEGES,
  ADMIN_SCHEMA_PRIVILEGES,
  ROUTER_DATABASE_PRIVILEGES,
  ROUTER_SCHEMA_PRIVILEGES,
  ROUTER_TABLE_PRIVILEGES,
  RegistryDatabase,
  registryUrl,
} from "../components/registryDatabase";
import { MIGRATION_SET } from "../components/registryMigrations";
import { LATEST_VERSION, REGISTRY_CHANNEL, migrate } from "../router/src/registry/migrations";
import { upsertEntry } from "../router/src/registry/queries";
import { postgresUrl } from "./support/services";

interface Created {
  type: string;
  name: string;
  inputs: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  provider?: string;
}

const value = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));

/** Mocks see secret inputs in the engine's wire form; fails unless `v` is one. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function secretValue(v: unknown): any {
  const wire = v as Record<string, unknown>;
  assert.equal(
    wire?.[pulumi.runtime.specialSigKey],
    pulumi.runtime.specialSecretSig,
    "not a secret",
  );
  return wire.value;
}

const ADMIN_PASSWORD = "stack-admin-secret-7c1";
const registry = {
  host: "registry.db.internal",
  port: 5432,
  database: "model_registry",
  adminUser: "postgres",
  sslmode: "verify-full" as const,
  sslrootcert: "certs/registry-ca.pem",
  caCertificate: "-----BEGIN CERTIFICATE-----\nregistry CA\n-----END CERTIFICATE-----\n",
  manageDatabase: true,
};

async function declare(
  manageDatabase: boolean,
): Promise<{ created: Created[]; db: RegistryDatabase }> {
  const created: Created[] = [];
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        created.push({
          type: args.type,
          name: args.name,
          inputs: args.inputs,
          provider: args.provider,
        });
        const state =
          args.type === "random:index/randomPassword:RandomPassword"
            ? {
                ...args.inputs,
                result: `generated${args.name.length}x${randomBytes(4).toString("hex")}`,
              }
            : args.inputs;
        return { id: `${args.name}-id`, state };
      },
      call: (args) => args.inputs,
    },
    "vllm-fleet",
    "staging",
    false,
  );
  const kubernetesProvider = new k8s.Provider("k8s", {});
  const db = new RegistryDatabase("registry", {
    registry: { ...registry, manageDatabase },
    adminPassword: pulumi.secret(ADMIN_PASSWORD),
    environment: "staging",
    namespace: "llm",
    kubernetesProvider,
  });
  await value(db.routerSecretName);
  await value(db.adminConnectionString);
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return { created, db };
}

describe("registry database component (mocks)", () => {
  let created: Created[];
  let db: RegistryDatabase;
  const ofType = (t: string) => created.filter((r) => r.type === t);

  before(async () => {
    ({ created, db } = await declare(true));
  });

  it("configures the postgresql provider from stack config, without superuser", () => {
    const [p] = ofType("pulumi:providers:postgresql");
    assert.equal(secretValue(p.inputs.password), ADMIN_PASSWORD);
    assert.deepEqual(
      [p.inputs.host, p.inputs.port, p.inputs.username, p.inputs.sslmode, p.inputs.superuser],
      ["registry.db.internal", "5432", "postgres", "verify-full", "false"],
    );
    for (const r of created.filter((r) => r.type.startsWith("postgresql:")))
      assert.match(r.provider ?? "", /pulumi:providers:postgresql::registry-postgresql::/);
  });

  it("creates the database owned by the admin role, and two roles with generated passwords", () => {
    const [database] = ofType("postgresql:index/database:Database");
    assert.deepEqual(
      [database.inputs.name, database.inputs.owner],
      ["model_registry", "vllm_registry_admin_staging"],
    );
    const roles = ofType("postgresql:index/role:Role")
      .map((r) => r.inputs.name)
      .sort();
    assert.deepEqual(roles, ["vllm_registry_admin_staging", "vllm_router_staging"]);
    const passwords = ofType("random:index/randomPassword:RandomPassword");
    assert.equal(passwords.length, 2);
    for (const p of passwords) assert.ok(p.inputs.length >= 32);
  });

  it("grants explicit privilege lists only: the router gets SELECT on the registry table", () => {
    const grants = ofType("postgresql:index/grant:Grant");
    for (const g of grants) assert.ok(!g.inputs.privileges.includes("ALL"), `${g.name} grants ALL`);
    const byName = Object.fromEntries(grants.map((g) => [g.name, g.inputs]));
    assert.deepEqual(byName["registry-router-table"], {
      database: "model_registry",
      role: "vllm_router_staging",
      objectType: "table",
      schema: "public",
      objects: ["model_registry_entries"],
      privileges: ["SELECT"],
    });
    assert.deepEqual(byName["registry-router-database"].privileges, ROUTER_DATABASE_PRIVILEGES);
    assert.deepEqual(byName["registry-router-schema"].privileges, ROUTER_SCHEMA_PRIVILEGES);
    assert.deepEqual(byName["registry-admin-database"].privileges, ADMIN_DATABASE_PRIVILEGES);
    assert.deepEqual(byName["registry-admin-schema"].privileges, ADMIN_SCHEMA_PRIVILEGES);
  });

  it("runs the shipped migrations with the admin role", () => {
    const [m] = ofType("pulumi-nodejs:dynamic/vllm-registry:RegistryMigrations");
    assert.deepEqual(m.inputs.migrations, MIGRATION_SET);
    assert.match(
      secretValue(m.inputs.connectionString),
      /^postgresql:\/\/vllm_registry_admin_staging:generated/,
    );
    assert.ok(!m.inputs.__provider.includes("generated"), "no password in the serialized provider");
  });

  // The Terraform provider's sslrootcert is "The SSL server root certificate file path"
  // (cyrilgdn/terraform-provider-postgresql postgresql/provider.go), read by the plugin, whose
  // working directory is the project's (pulumi/pulumi sdk/go/common/resource/plugin/
  // provider_plugin.go: newPlugin(ctx, ctx.Pwd, ...)). The dynamic provider is serialized and
  // runs elsewhere, so it gets the PEM text itself.
  it("gives the CA to the provider as the config's path and to the migrations as PEM text", () => {
    const [p] = ofType("pulumi:providers:postgresql");
    assert.equal(p.inputs.sslrootcert, "certs/registry-ca.pem");
    const [m] = ofType("pulumi-nodejs:dynamic/vllm-registry:RegistryMigrations");
    assert.equal(m.inputs.caCertificate, registry.caCertificate);
  });

  it("hands the router a read-only URL in a Secret, and keeps every URL secret", async () => {
    const [secret] = ofType("kubernetes:core/v1:Secret");
    assert.match(secret.provider ?? "", /pulumi:providers:kubernetes::k8s::/);
    assert.equal(secret.inputs.metadata.namespace, "llm");
    assert.equal(await value(db.routerSecretName), "vllm-router-registry");
    assert.match(
      secretValue(secret.inputs.stringData).DATABASE_URL,
      /^postgresql:\/\/vllm_router_staging:generated\w+@registry\.db\.internal:5432\/model_registry\?sslmode=verify-full$/,
    );
    assert.equal(await pulumi.isSecret(db.adminConnectionString), true);
    const text = JSON.stringify(
      created.filter((r) => r.type !== "pulumi:providers:postgresql").map((r) => r.inputs),
    );
    assert.ok(!text.includes(ADMIN_PASSWORD), "the stack admin password only goes to the provider");
  });

  it("uses an existing database when manageDatabase is false", async () => {
    const { created: existing } = await declare(false);
    assert.equal(existing.filter((r) => r.type === "postgresql:index/database:Database").length, 0);
    const grants = existing.filter((r) => r.type === "postgresql:index/grant:Grant");
    assert.ok(grants.length === 5 && grants.every((g) => g.inputs.database === "model_registry"));
  });

  it("builds URLs with encoded credentials", () => {
    assert.equal(
      registryUrl({
        user: "a@b",
        password: "p/w:x",
        host: "h",
        port: 1,
        database: "d",
        sslmode: "require",
      }),
      "postgresql://a%40b:p%2Fw%3Ax@h:1/d?sslmode=require",
    );
  });
});

describe("registry roles (real PostgreSQL)", () => {
  const suffix = randomBytes(4).toString("hex");
  const admin = `reg_admin_${suffix}`;
  const router = `reg_router_${suffix}`;
  const database = `reg_roles_${suffix}`;
  let server: Client;
  let asAdmin: Client;
  let asRouter: Client;

  const urlFor = (base: string, user: string, db: string) => {
    const u = new URL(base);
    u.username = user;
    u.password = `pw${suffix}`;
    u.pathname = `/${db}`;
    return u.toString();
  };

  before(async () => {
    const base = await postgresUrl();
    server = new Client({ connectionString: base });
    await server.connect();
    // What RegistryDatabase declares, with the same privilege lists.
    await server.query(`CREATE ROLE ${admin} LOGIN PASSWORD 'pw${suffix}'`);
    await server.query(`CREATE ROLE ${router} LOGIN PASSWORD 'pw${suffix}'`);
    await server.query(`CREATE DATABASE ${database} OWNER ${admin}`);
    await server.query(`REVOKE ALL ON DATABASE ${database} FROM PUBLIC`);
    await server.query(
      `GRANT ${ADMIN_DATABASE_PRIVILEGES.join(", ")} ON DATABASE ${database} TO ${admin}`,
    );
    await server.query(
      `GRANT ${ROUTER_DATABASE_PRIVILEGES.join(", ")} ON DATABASE ${database} TO ${router}`,
    );
    asAdmin = new Client({ connectionString: urlFor(base, admin, database) });
    await asAdmin.connect();
    await asAdmin.query(`GRANT ${ADMIN_SCHEMA_PRIVILEGES.join(", ")} ON SCHEMA public TO ${admin}`);
    await asAdmin.query(
      `GRANT ${ROUTER_SCHEMA_PRIVILEGES.join(", ")} ON SCHEMA public TO ${router}`,
    );
    assert.equal(
      (await migrate(asAdmin)).to,
      LATEST_VERSION,
      "the admin role (not a superuser) migrates",
    );
    await asAdmin.query(
      `GRANT ${ROUTER_TABLE_PRIVILEGES.join(", ")} ON model_registry_entries TO ${router}`,
    );
    await upsertEntry(asAdmin, {
      modelName: "llama-2-7b",
      environment: "staging",
      endpoint: "llama-2-7b-staging.llm.svc.cluster.local:8000",
      namespace: "llm",
    });
    asRouter = new Client({ connectionString: urlFor(base, router, database) });
    await asRouter.connect();
  });

  after(async () => {
    await asRouter?.end();
    await asAdmin?.end();
    await server.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await server.query(`DROP ROLE IF EXISTS ${router}`);
    await server.query(`DROP ROLE IF EXISTS ${admin}`);
    await server.end();
  });

  it("the router role reads and listens", async () => {
    const rows = await asRouter.query(`SELECT model_name FROM model_registry_entries`);
    assert.deepEqual(rows.rows, [{ model_name: "llama-2-7b" }]);
    await asRouter.query(`LISTEN ${REGISTRY_CHANNEL}`);
  });

  it("the router role cannot write, truncate or create", async () => {
    const denied = /permission denied/;
    await assert.rejects(
      asRouter.query(
        `INSERT INTO model_registry_entries (model_name, deployment_environment, endpoint, served_model_name) VALUES ('x', 'staging', 'x:1', 'x')`,
      ),
      denied,
    );
    await assert.rejects(
      asRouter.query(`UPDATE model_registry_entries SET status = 'ready'`),
      denied,
    );
    await assert.rejects(asRouter.query(`DELETE FROM model_registry_entries`), denied);
    await assert.rejects(asRouter.query(`TRUNCATE model_registry_entries`), denied);
    await assert.rejects(asRouter.query(`CREATE TABLE public.intruder (id int)`), denied);
    await assert.rejects(asRouter.query(`SELECT * FROM model_registry_migrations`), denied);
  });
});
