// RegistryAccess under Pulumi mocks: what an environment stack declares on the shared registry
// (what those declarations allow on a real PostgreSQL is tests/registry.isolation.test.ts).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { RegistryAccess, registryUrl, RegistrySchema } from "../components/resources";
import { registryStackOutputsFor } from "./support/program";

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
  stack: "acme/vllm-registry/shared",
};

/** Declares an environment's RegistryAccess, or what `program` declares instead, under mocks. */
async function declare(
  database = "model_registry",
  program?: (server: typeof registry) => void,
): Promise<{
  created: Created[];
  db: RegistryAccess;
}> {
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
  if (program) {
    program(registry);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    return { created, db: undefined as unknown as RegistryAccess };
  }
  const kubernetesProvider = new k8s.Provider("k8s", {});
  const db = new RegistryAccess("registry", {
    registry,
    adminPassword: pulumi.secret(ADMIN_PASSWORD),
    shared: { ...registryStackOutputsFor(registry), database },
    environment: "staging",
    namespace: "llm",
    kubernetesProvider,
    routerConnectionLimit: 156,
  });
  await value(db.routerSecretName);
  await value(db.writerConnectionString);
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return { created, db };
}

describe("registry access component (mocks)", () => {
  let created: Created[];
  let db: RegistryAccess;
  const ofType = (t: string) => created.filter((r) => r.type === t);

  before(async () => {
    ({ created, db } = await declare());
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

  it("creates no database, and two login roles in the environment's group and their access role, with generated passwords", () => {
    assert.equal(ofType("postgresql:index/database:Database").length, 0);
    const roles = ofType("postgresql:index/role:Role")
      .map((r) => [r.inputs.name, r.inputs.login, r.inputs.roles])
      .sort();
    assert.deepEqual(roles, [
      [
        "vllm_registry_writer_staging",
        true,
        ["vllm_registry_env_staging", "vllm_registry_writers"],
      ],
      ["vllm_router_staging", true, ["vllm_registry_env_staging", "vllm_registry_readers"]],
    ]);
    const passwords = ofType("random:index/randomPassword:RandomPassword");
    assert.equal(passwords.length, 2);
    for (const p of passwords) assert.ok(p.inputs.length >= 32);
  });

  // An admin that is not superuser owns nothing in the registry database, and the provider's
  // database grant borrows no owner (cyrilgdn/terraform-provider-postgresql
  // postgresql/resource_postgresql_grant.go getRolesToGrant): its grants there would be no-ops.
  it("grants nothing: the registry stack's owner granted the access roles", () => {
    assert.deepEqual(ofType("postgresql:index/grant:Grant"), []);
  });

  it("gives registry entries the writer's URL, as a secret", async () => {
    assert.equal(await pulumi.isSecret(db.writerConnectionString), true);
    assert.match(
      await value(db.writerConnectionString),
      /^postgresql:\/\/vllm_registry_writer_staging:generated\w+@registry\.db\.internal:5432\/model_registry\?sslmode=verify-full$/,
    );
  });

  // The Terraform provider's sslrootcert is "The SSL server root certificate file path"
  // (cyrilgdn/terraform-provider-postgresql postgresql/provider.go), read by the plugin, whose
  // working directory is the project's (pulumi/pulumi sdk/go/common/resource/plugin/
  // provider_plugin.go: newPlugin(ctx, ctx.Pwd, ...)). The dynamic provider is serialized and
  // runs elsewhere, so it gets the PEM text itself.
  it("gives the CA to the provider as the config's path; the stack runs no migrations", () => {
    const [p] = ofType("pulumi:providers:postgresql");
    assert.equal(p.inputs.sslrootcert, "certs/registry-ca.pem");
    assert.deepEqual(ofType("pulumi-nodejs:dynamic/vllm-registry:RegistryMigrations"), []);
  });

  it("the registry stack gives its migrations the CA as PEM text, its providers the path", async () => {
    const { created: schema } = await declare("model_registry", (server) => {
      new RegistrySchema("registry", { server, adminPassword: pulumi.secret(ADMIN_PASSWORD) });
    });
    const providers = schema.filter((r) => r.type === "pulumi:providers:postgresql");
    assert.equal(providers.length, 2);
    for (const p of providers) assert.equal(p.inputs.sslrootcert, "certs/registry-ca.pem");
    const [m] = schema.filter(
      (r) => r.type === "pulumi-nodejs:dynamic/vllm-registry:RegistryMigrations",
    );
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
    const text = JSON.stringify(
      created.filter((r) => r.type !== "pulumi:providers:postgresql").map((r) => r.inputs),
    );
    assert.ok(!text.includes(ADMIN_PASSWORD), "the stack admin password only goes to the provider");
  });

  it("uses the database the registry stack names", async () => {
    const { db: other } = await declare("registry_b");
    assert.match(await value(other.writerConnectionString), /:5432\/registry_b\?sslmode=/);
  });

  // Each grant is made by the table's owner, so it really happens (tests/registry.isolation.test.ts
  // replays them as the owner against PostgreSQL).
  it("the registry stack grants the access roles as the owner role, connected to the registry database", async () => {
    const { created: schema } = await declare("model_registry", (server) => {
      new RegistrySchema("registry", { server, adminPassword: pulumi.secret(ADMIN_PASSWORD) });
    });
    const [owner] = schema.filter(
      (r) => r.type === "pulumi:providers:postgresql" && r.name === "registry-owner-postgresql",
    );
    assert.deepEqual(
      [owner.inputs.username, owner.inputs.database, owner.inputs.superuser],
      ["vllm_registry_owner", "model_registry", "false"],
    );
    assert.match(
      secretValue(owner.inputs.password),
      /^generated/,
      "the owner's generated password",
    );
    const grants = schema.filter((r) => r.type === "postgresql:index/grant:Grant");
    for (const g of grants)
      assert.match(g.provider ?? "", /pulumi:providers:postgresql::registry-owner-postgresql::/);
    const byRole = (role: string) =>
      grants
        .filter((g) => g.inputs.role === role)
        .map((g) => [g.inputs.objectType, g.inputs.objects ?? [], g.inputs.privileges])
        .sort((a, b) => a[0].localeCompare(b[0]));
    assert.deepEqual(byRole("vllm_registry_readers"), [
      ["database", [], ["CONNECT"]],
      ["table", ["model_registry_entries"], ["SELECT"]],
    ]);
    assert.deepEqual(byRole("vllm_registry_writers"), [
      ["database", [], ["CONNECT"]],
      ["sequence", ["model_registry_entries_id_seq"], ["USAGE"]],
      ["table", ["model_registry_entries"], ["SELECT", "INSERT", "UPDATE", "DELETE"]],
    ]);
    assert.ok(grants.every((g) => !g.inputs.privileges.includes("ALL")));
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
