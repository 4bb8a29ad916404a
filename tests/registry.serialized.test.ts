// The registry provider as the Pulumi engine runs it (tests/support/dynamicProviderHost.ts),
// driving a real PostgreSQL. The serialized text must hold no credentials.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import {
  RegistryEntryInputs,
  registryEntryProvider,
  MIGRATION_SET,
  registryMigrationsProvider,
} from "../components/resources";
import {
  LATEST_VERSION,
  currentVersion,
  environmentRole,
  migrate,
  getEntry,
} from "@vllm-fleet/registry";
import { runHost, serializeToFile } from "./support/dynamicProviderHost";
import { createTestDatabase, redisUrl } from "./support/services";

describe("registry provider, serialized", () => {
  let admin: Client;
  let url: string;
  const password = `pw-${randomBytes(9).toString("hex")}`;
  const role = `reg_ser_${randomBytes(4).toString("hex")}`;
  const group = environmentRole("staging");
  let createdGroup = false;

  before(async () => {
    const dbUrl = await createTestDatabase("reg_ser");
    admin = new Client({ connectionString: dbUrl });
    await admin.connect();
    await migrate(admin);
    // A role with a password of its own, so the test can look for that password in the text.
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await admin.query(`GRANT SELECT, INSERT, UPDATE ON model_registry_entries TO ${role}`);
    await admin.query(`GRANT USAGE ON SEQUENCE model_registry_entries_id_seq TO ${role}`);
    // Row-level security: only members of staging's group role touch staging rows.
    const exists = await admin.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [group]);
    if (!exists.rowCount) {
      await admin.query(`CREATE ROLE ${group} NOLOGIN`);
      createdGroup = true;
    }
    await admin.query(`GRANT ${group} TO ${role}`);
    const u = new URL(dbUrl);
    u.username = role;
    u.password = password;
    url = u.toString();
  });
  after(async () => {
    // Roles are server-wide: drop this test's (its grants live only in this database).
    await admin.query(`DROP OWNED BY ${role}`);
    await admin.query(`DROP ROLE ${role}`);
    if (createdGroup) await admin.query(`DROP ROLE ${group}`);
    await admin.end();
  });

  it("creates and deletes from a fresh node process, with no password in the text", async () => {
    const inputs: RegistryEntryInputs = {
      connectionString: url,
      redisUrl: await redisUrl(),
      environment: "staging",
      modelName: "serialized-7b",
      endpoint: "serialized-7b-staging.llm.svc.cluster.local:8000",
      namespace: "llm",
      servedModelName: "org/serialized-7b",
      fallbacks: [],
      enabled: true,
      managedBy: "staging",
    };
    // Use the provider in this process first: whatever it might cache must not leak into the text.
    const local = await registryEntryProvider.create!(inputs);
    await registryEntryProvider.delete!(local.id, local.outs);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reg-provider-"));
    try {
      const file = await serializeToFile(registryEntryProvider, dir);
      const text = fs.readFileSync(file, "utf8");
      assert.ok(!text.includes(password), "serialized provider contains the password");
      assert.ok(!text.includes(url), "serialized provider contains the connection string");
      const { steps, output } = await runHost({
        PROVIDER_FILE: file,
        INPUTS: JSON.stringify(inputs),
        STEPS: "create,delete",
      });
      assert.deepEqual(
        steps.map((s) => [s.step, s.id, (s.outs as { status?: string } | undefined)?.status]),
        [
          ["create", "staging/serialized-7b", "ready"],
          ["delete", undefined, undefined],
        ],
      );
      assert.ok(!output.includes(password));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const row = await getEntry(admin, "staging", "serialized-7b");
    assert.equal(row!.status, "disabled");
    assert.equal(row!.disabledReason, "removed from stack staging");
    assert.equal(row!.servedModelName, "org/serialized-7b");
  });

  it("migrates a fresh database from a fresh node process (RegistryMigrations)", async () => {
    const fresh = await createTestDatabase("reg_ser_mig");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reg-migrations-"));
    try {
      const file = await serializeToFile(registryMigrationsProvider, dir);
      const { steps } = await runHost({
        PROVIDER_FILE: file,
        INPUTS: JSON.stringify({ connectionString: fresh, migrations: MIGRATION_SET }),
        STEPS: "create",
      });
      assert.deepEqual(steps, [
        {
          step: "create",
          id: "model_registry_entries",
          outs: { migrations: MIGRATION_SET, version: LATEST_VERSION, applied: MIGRATION_SET },
        },
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const db = new Client({ connectionString: fresh });
    await db.connect();
    try {
      assert.equal(await currentVersion(db), LATEST_VERSION);
    } finally {
      await db.end();
    }
  });
});
