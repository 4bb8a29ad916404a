// Registry schema against a real PostgreSQL: migrations up/down/up, constraints, the NOTIFY trigger.
import assert from "node:assert/strict";
import { Client } from "pg";
import {
  LATEST_VERSION,
  MIGRATIONS,
  REGISTRY_CHANNEL,
  currentVersion,
  migrate,
  getEntry,
  listEntries,
  recordHealthCheck,
  setStatus,
  upsertEntry,
  RegistryInputError,
} from "@vllm-fleet/registry";
import { createTestDatabase } from "./support/services";

const base = {
  modelName: "llama-2-7b",
  environment: "development" as const,
  endpoint: "llama-2-7b-development.system.svc.cluster.local:8000",
  namespace: "system",
};

async function tables(db: Client): Promise<string[]> {
  const res = await db.query<{ tablename: string }>(
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
  );
  return res.rows.map((r) => r.tablename);
}

describe("registry migrations", () => {
  let db: Client;
  let url: string;

  before(async () => {
    url = await createTestDatabase("reg_mig");
    db = new Client({ connectionString: url });
    await db.connect();
  });
  after(() => db.end());

  it("migrates up, down to empty and up again, recording versions", async () => {
    const up = await migrate(db);
    assert.deepEqual(
      up.steps.map((s) => s.version),
      MIGRATIONS.map((m) => m.version),
    );
    assert.equal(await currentVersion(db), LATEST_VERSION);
    assert.ok((await tables(db)).includes("model_registry_entries"));

    const again = await migrate(db);
    assert.deepEqual(again.steps, [], "up twice is a no-op");

    const oneBack = await migrate(db, { direction: "down" });
    assert.deepEqual(oneBack, {
      from: LATEST_VERSION,
      to: LATEST_VERSION - 1,
      steps: [{ direction: "down", version: LATEST_VERSION, name: MIGRATIONS.at(-1)!.name }],
    });

    const down = await migrate(db, { direction: "down", target: 0 });
    assert.equal(down.to, 0);
    assert.deepEqual(await tables(db), ["model_registry_migrations"]);
    const fns = await db.query(`SELECT proname FROM pg_proc WHERE proname LIKE 'model_registry%'`);
    assert.equal(fns.rowCount, 0, "down drops the trigger functions too");

    const reup = await migrate(db);
    assert.equal(reup.to, LATEST_VERSION);
    const recorded = await db.query(
      `SELECT version FROM model_registry_migrations ORDER BY version`,
    );
    assert.deepEqual(
      recorded.rows.map((r) => r.version),
      MIGRATIONS.map((m) => m.version),
    );
  });

  it("serializes concurrent migrators with the advisory lock", async () => {
    const url = await createTestDatabase("reg_lock");
    const clients = [new Client({ connectionString: url }), new Client({ connectionString: url })];
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const results = await Promise.all(clients.map((c) => migrate(c)));
      const applied = results.flatMap((r) => r.steps.map((s) => s.version)).sort();
      assert.deepEqual(
        applied,
        MIGRATIONS.map((m) => m.version).sort(),
        "each version applied once",
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it("rejects an unknown target", async () => {
    await assert.rejects(migrate(db, { target: LATEST_VERSION + 1 }), /target .* is invalid/);
  });

  describe("constraints", () => {
    before(() => migrate(db));
    beforeEach(() => db.query(`DELETE FROM model_registry_entries`));

    const rejects = (sql: string, params: unknown[], pattern: RegExp) =>
      assert.rejects(db.query(sql, params), pattern);
    const insert = `INSERT INTO model_registry_entries
      (model_name, deployment_environment, endpoint, namespace, served_model_name, status, disabled_reason)
      VALUES ($1, $2, $3, 'system', $1, $4, $5)`;

    it("accepts dotted names and rejects bad names, environments, endpoints and statuses", async () => {
      await db.query(insert, [
        "qwen2.5-7b",
        "staging",
        "q.system.svc.cluster.local:8000",
        "ready",
        null,
      ]);
      await rejects(insert, ["Llama", "staging", "a:1", "ready", null], /model_name_format/);
      await rejects(insert, ["a".repeat(64), "staging", "a:1", "ready", null], /model_name_format/);
      await rejects(insert, ["m", "prod", "a:1", "ready", null], /deployment_environment_valid/);
      await rejects(insert, ["m", "staging", "http://a:1", "ready", null], /endpoint_format/);
      await rejects(insert, ["m", "staging", "a", "ready", null], /endpoint_format/);
      await rejects(insert, ["m", "staging", "a:1", "broken", null], /status_valid/);
      await rejects(insert, ["m", "staging", "a:1", "disabled", null], /disabled_needs_reason/);
    });

    it("keeps one row per model and environment", async () => {
      await db.query(insert, ["m", "staging", "a:1", "ready", null]);
      await db.query(insert, ["m", "production", "a:1", "ready", null]);
      await rejects(insert, ["m", "staging", "b:2", "ready", null], /model_environment_key/);
    });

    it("maintains updated_at on update", async () => {
      const created = await upsertEntry(db, base);
      await new Promise((r) => setTimeout(r, 20));
      const updated = await setStatus(db, "development", base.modelName, "disabled", "maintenance");
      assert.equal(updated!.createdAt, created.createdAt);
      assert.ok(updated!.updatedAt > created.updatedAt);
    });
  });

  describe("queries", () => {
    before(() => migrate(db));
    beforeEach(() => db.query(`DELETE FROM model_registry_entries`));

    it("upserts, reads, lists and toggles status", async () => {
      const created = await upsertEntry(db, {
        ...base,
        fallbacks: ["mistral-7b"],
        revision: "abc",
        managedBy: "dev",
      });
      assert.equal(created.status, "ready");
      assert.equal(created.servedModelName, base.modelName);
      assert.deepEqual(created.fallbacks, ["mistral-7b"]);
      assert.deepEqual(await getEntry(db, "development", base.modelName), created);

      const replaced = await upsertEntry(db, {
        ...base,
        endpoint: "other:9000",
        servedModelName: "meta/llama",
      });
      assert.equal(replaced.id, created.id);
      assert.equal(replaced.endpoint, "other:9000");
      assert.deepEqual(replaced.fallbacks, []);

      await upsertEntry(db, {
        ...base,
        environment: "staging",
        status: "disabled",
        disabledReason: "off",
      });
      assert.equal((await listEntries(db)).length, 2);
      assert.deepEqual(
        (await listEntries(db, { status: "disabled" })).map((e) => e.environment),
        ["staging"],
      );
      assert.equal((await listEntries(db, { environment: "production" })).length, 0);

      const disabled = await setStatus(
        db,
        "development",
        base.modelName,
        "disabled",
        "bad release",
      );
      assert.equal(disabled!.disabledReason, "bad release");
      const enabled = await setStatus(db, "development", base.modelName, "ready");
      assert.equal(enabled!.disabledReason, null, "enabling clears the reason");
      assert.equal(await setStatus(db, "production", "nope", "ready"), undefined);

      assert.equal(await recordHealthCheck(db, "development", base.modelName), true);
      assert.ok((await getEntry(db, "development", base.modelName))!.lastHealthCheckAt);
    });

    it("validates input before touching the database, naming the field", async () => {
      await assert.rejects(
        upsertEntry(db, { ...base, modelName: "Bad_Name" }),
        (e: unknown) =>
          e instanceof RegistryInputError && /modelName 'Bad_Name' is invalid/.test(e.message),
      );
      await assert.rejects(
        upsertEntry(db, { ...base, endpoint: "http://x" }),
        /endpoint 'http:\/\/x' is invalid/,
      );
      await assert.rejects(
        upsertEntry(db, { ...base, status: "disabled" }),
        /disabledReason is required/,
      );
      await assert.rejects(
        setStatus(db, "development", base.modelName, "disabled"),
        /reason is required/,
      );
    });
  });

  describe("change notifications", () => {
    let listener: Client;
    const received: { environment: string; model: string }[] = [];

    before(async () => {
      await migrate(db);
      listener = new Client({ connectionString: url });
      await listener.connect();
      listener.on("notification", (n) => received.push(JSON.parse(n.payload!)));
      await listener.query(`LISTEN ${REGISTRY_CHANNEL}`);
    });
    after(() => listener.end());

    async function next(count: number) {
      const deadline = Date.now() + 5000;
      while (received.length < count && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      return received.splice(0, received.length);
    }

    it("notifies {environment, model} on insert, update and delete", async () => {
      await upsertEntry(db, { ...base, environment: "staging" });
      assert.deepEqual(await next(1), [{ environment: "staging", model: base.modelName }]);
      await setStatus(db, "staging", base.modelName, "disabled", "x");
      assert.deepEqual(await next(1), [{ environment: "staging", model: base.modelName }]);
      await db.query(`UPDATE model_registry_entries SET deployment_environment = 'production'`);
      assert.deepEqual(
        (await next(2)).map((n) => n.environment).sort(),
        ["production", "staging"],
        "moving a row notifies both keys",
      );
      await db.query(`DELETE FROM model_registry_entries`);
      assert.deepEqual(await next(1), [{ environment: "production", model: base.modelName }]);
    });
  });
});

describe("registry migrations beside golang-migrate", () => {
  it("leaves another tool's schema_migrations table alone", async () => {
    const db = new Client({ connectionString: await createTestDatabase("reg_gm") });
    await db.connect();
    try {
      await db.query(
        `CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)`,
      );
      await db.query(`INSERT INTO schema_migrations VALUES (20240101, false)`);
      assert.equal((await migrate(db)).to, LATEST_VERSION);
      const other = await db.query(`SELECT version, dirty FROM schema_migrations`);
      assert.deepEqual(other.rows, [{ version: "20240101", dirty: false }]);
    } finally {
      await db.end();
    }
  });
});
