// The RegistryEntry dynamic provider called directly against real PostgreSQL and Redis:
// check/diff stay offline, create/update/delete write, invalidate and notify, read shows drift.
import assert from "node:assert/strict";
import type Redis from "ioredis";
import { Client } from "pg";
import * as pulumi from "@pulumi/pulumi";
import {
  RegistryEntry,
  RegistryEntryInputs,
  RegistryEntryOutputs,
  registryEntryProvider as provider,
} from "../components/resources";
import {
  checkedRegistration,
  connectRedis,
  ModelRegistration,
  REGISTRY_CHANNEL,
  migrate,
  getEntry,
  registrationEntry,
  RegistryInputError,
  registryKey,
} from "@vllm-fleet/registry";
import { createTestDatabase, freePort, redisUrl } from "./support/services";

describe("registry provider", () => {
  let db: Client;
  let listener: Client;
  let redis: Redis;
  let inputs: RegistryEntryInputs;
  const notes: string[] = [];
  const key = registryKey("production", "llama-2-7b");

  async function notified(): Promise<string[]> {
    const deadline = Date.now() + 3000;
    while (notes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return notes.splice(0);
  }

  before(async () => {
    const url = await createTestDatabase("reg_prov");
    db = new Client({ connectionString: url });
    listener = new Client({ connectionString: url });
    await Promise.all([db.connect(), listener.connect()]);
    await migrate(db);
    listener.on("notification", (n) => notes.push(n.payload!));
    await listener.query(`LISTEN ${REGISTRY_CHANNEL}`);
    redis = await connectRedis(await redisUrl());
    inputs = {
      connectionString: url,
      redisUrl: await redisUrl(),
      environment: "production",
      modelName: "llama-2-7b",
      endpoint: "llama-2-7b-production.llm.svc.cluster.local:8000",
      namespace: "llm",
      servedModelName: "meta-llama/Llama-2-7b-chat-hf",
      fallbacks: ["mistral-7b"],
      revision: "sha256:abc/0123",
      enabled: true,
      managedBy: "production",
    };
  });
  after(async () => {
    redis.disconnect();
    await Promise.all([db.end(), listener.end()]);
  });

  describe("offline methods (they run in preview)", () => {
    const offline = () => ({
      ...inputs,
      connectionString: "postgresql://nobody:secret@127.0.0.1:1/none",
    });

    it("check accepts valid inputs and names the field of each problem", async () => {
      assert.deepEqual((await provider.check!(offline(), offline())).failures, []);
      const bad = {
        ...offline(),
        modelName: "Llama_2",
        environment: "prod",
        endpoint: "http://x",
        fallbacks: ["Bad Name"],
        connectionString: "mysql://x",
        managedBy: "",
      } as unknown as RegistryEntryInputs;
      const failures = (await provider.check!(offline(), bad)).failures!;
      assert.deepEqual(failures.map((f) => f.property).sort(), [
        "connectionString",
        "endpoint",
        "environment",
        "fallbacks",
        "managedBy",
        "modelName",
      ]);
      assert.match(
        failures.find((f) => f.property === "environment")!.reason,
        /use one of development, staging, production/,
      );
    });

    it("check leaves values unknown in preview alone", async () => {
      const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
      const news = { ...offline(), endpoint: unknown, connectionString: unknown };
      assert.deepEqual((await provider.check!(offline(), news)).failures, []);
    });

    it("diff reports updates, replaces only on identity", async () => {
      const olds = {
        ...offline(),
        entryId: 1,
        status: "ready",
        updatedAt: "",
        cacheInvalidation: "",
      } as RegistryEntryOutputs;
      assert.equal((await provider.diff!("id", olds, offline())).changes, false);
      const rotated = await provider.diff!("id", olds, {
        ...offline(),
        connectionString: "postgresql://other",
      });
      assert.deepEqual(
        [rotated.changes, rotated.replaces],
        [true, []],
        "new credentials update the state in place, so delete and refresh can reach the row",
      );
      const moved = await provider.diff!("id", olds, {
        ...offline(),
        endpoint: "x:1",
        enabled: false,
      });
      assert.deepEqual([moved.changes, moved.replaces], [true, []]);
      const renamed = await provider.diff!("id", olds, { ...offline(), modelName: "llama-3-8b" });
      assert.deepEqual(renamed.replaces, ["modelName"]);
      assert.deepEqual(
        (await provider.diff!("id", olds, { ...offline(), fallbacks: [] })).changes,
        true,
      );
    });
  });

  describe("writes", () => {
    let outs: RegistryEntryOutputs;

    it("create upserts a ready row, deletes the cache key and notifies", async () => {
      await redis.set(key, "stale");
      notes.splice(0);
      const created = await provider.create!(inputs);
      outs = created.outs;
      assert.equal(created.id, "production/llama-2-7b");
      assert.equal(outs.status, "ready");
      assert.equal(outs.cacheInvalidation, "deleted");
      assert.equal(await redis.exists(key), 0);
      assert.deepEqual(
        (await notified()).map((n) => JSON.parse(n)),
        [{ environment: "production", model: "llama-2-7b" }],
      );
      const row = await getEntry(db, "production", "llama-2-7b");
      assert.deepEqual(
        [
          row!.endpoint,
          row!.servedModelName,
          row!.fallbacks,
          row!.revision,
          row!.managedBy,
          row!.id,
        ],
        [
          inputs.endpoint,
          inputs.servedModelName,
          ["mistral-7b"],
          "sha256:abc/0123",
          "production",
          outs.entryId,
        ],
      );
    });

    it("update returns every output and disables a model whose config says enabled: false", async () => {
      await redis.set(key, "stale");
      notes.splice(0);
      const news = { ...inputs, enabled: false, fallbacks: [] };
      const updated = (await provider.update!("production/llama-2-7b", outs, news))
        .outs as RegistryEntryOutputs;
      for (const k of Object.keys(outs)) assert.ok(k in updated, `update dropped output ${k}`);
      assert.equal(updated.status, "disabled");
      assert.equal(updated.entryId, outs.entryId);
      assert.equal(await redis.exists(key), 0);
      assert.equal((await notified()).length, 1);
      const row = await getEntry(db, "production", "llama-2-7b");
      assert.equal(row!.disabledReason, "disabled in the config of stack production");
      assert.deepEqual(row!.fallbacks, []);
      outs = (await provider.update!("production/llama-2-7b", updated, inputs))
        .outs as RegistryEntryOutputs;
      assert.equal((await getEntry(db, "production", "llama-2-7b"))!.disabledReason, null);
    });

    it("read returns the live row, so refresh shows drift", async () => {
      await db.query(
        `UPDATE model_registry_entries SET endpoint = 'hand-edited:9000', status = 'disabled', disabled_reason = 'ops'`,
      );
      const read = await provider.read!("production/llama-2-7b", outs);
      const live = read.props as RegistryEntryOutputs;
      assert.equal(read.id, "production/llama-2-7b");
      assert.deepEqual(
        [live.endpoint, live.enabled, live.disabledReason, live.status],
        ["hand-edited:9000", false, "ops", "disabled"],
      );
      assert.equal(live.connectionString, inputs.connectionString, "read keeps what delete needs");
      const drift = await provider.diff!("production/llama-2-7b", live, inputs);
      assert.equal(drift.changes, true, "the next up puts the row back");
      outs = (await provider.update!("production/llama-2-7b", live, inputs))
        .outs as RegistryEntryOutputs;
      assert.equal((await getEntry(db, "production", "llama-2-7b"))!.endpoint, inputs.endpoint);
    });

    it("delete disables the row with a reason, deletes the key and notifies", async () => {
      await redis.set(key, "stale");
      notes.splice(0);
      await provider.delete!("production/llama-2-7b", outs);
      const row = await getEntry(db, "production", "llama-2-7b");
      assert.deepEqual(
        [row!.status, row!.disabledReason],
        ["disabled", "removed from stack production"],
      );
      assert.equal(await redis.exists(key), 0);
      assert.equal((await notified()).length, 1);
    });

    it("read of a row deleted by hand drops the resource", async () => {
      await db.query(`DELETE FROM model_registry_entries`);
      assert.equal((await provider.read!("production/llama-2-7b", outs)).id, undefined);
    });

    it("a Redis outage does not fail the write, and is reported", async () => {
      const down = { ...inputs, redisUrl: `redis://127.0.0.1:${await freePort()}` };
      const created = await provider.create!(down);
      assert.equal(created.outs.status, "ready");
      assert.match(created.outs.cacheInvalidation, /^failed: /);
    });

    it("an unreachable database fails the write with a clear error and no password", async () => {
      const dead = {
        ...inputs,
        connectionString: `postgresql://admin:hunter22@127.0.0.1:${await freePort()}/r`,
      };
      await assert.rejects(provider.create!(dead), (e: Error) => {
        assert.match(
          e.message,
          /cannot reach the registry database at postgresql:\/\/admin:\*\*\*@/,
        );
        assert.doesNotMatch(e.message, /hunter22/);
        return true;
      });
    });
  });
});

describe("model registration (registry/src/registration.ts)", () => {
  const registration: ModelRegistration = {
    environment: "staging",
    modelName: "m",
    endpoint: "m-staging.llm.svc.cluster.local:8000",
    namespace: "llm",
    servedModelName: "org/m",
    enabled: true,
    managedBy: "staging",
  };

  it("maps to a row: enabled is ready, disabled has the given or the manager's reason, no revision is null, no fallbacks is []", () => {
    const ready = registrationEntry({ ...registration, revision: "", disabledReason: "ignored" });
    assert.deepEqual(
      [ready.status, ready.disabledReason, ready.revision, ready.fallbacks],
      ["ready", null, null, []],
    );
    const off = registrationEntry({ ...registration, enabled: false, fallbacks: ["n"] });
    assert.deepEqual(
      [off.status, off.disabledReason, off.fallbacks],
      ["disabled", "disabled in the config of stack staging", ["n"]],
    );
    assert.equal(
      registrationEntry({ ...registration, enabled: false, disabledReason: "drill" })
        .disabledReason,
      "drill",
    );
  });

  it("checkedRegistration, the local platform's check, refuses with every problem naming its property", () => {
    assert.equal(checkedRegistration(registration), registration);
    assert.throws(
      () =>
        checkedRegistration({
          ...registration,
          servedModelName: "org/m\x1b[2K",
          fallbacks: ["m"],
          managedBy: "",
        }),
      (e: unknown) => {
        assert.ok(e instanceof RegistryInputError);
        assert.deepEqual(
          e.problems.map((p) => p.split(/[ '[:]/)[0]),
          ["servedModelName", "fallbacks", "managedBy"],
        );
        return true;
      },
    );
  });
});

describe("RegistryEntry resource (mocks)", () => {
  it("declares a vllm-registry:RegistryEntry whose credentials stay secret and out of the provider", async () => {
    const created: { type: string; inputs: Record<string, unknown> }[] = [];
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          created.push({ type: args.type, inputs: args.inputs });
          return { id: `${args.name}-id`, state: { ...args.inputs, status: "ready", entryId: 7 } };
        },
        call: (args) => args.inputs,
      },
      "vllm-fleet",
      "production",
      false,
    );
    const password = "entry-secret-5d2";
    const entry = new RegistryEntry("llama-2-7b-registry", {
      connectionString: pulumi.secret(`postgresql://admin:${password}@db:5432/model_registry`),
      environment: "production",
      modelName: "llama-2-7b",
      endpoint: "llama-2-7b-production.llm.svc.cluster.local:8000",
      namespace: "llm",
      servedModelName: "llama-2-7b",
      fallbacks: [],
      enabled: true,
      managedBy: "production",
    });
    assert.equal(await new Promise((r) => entry.status.apply(r)), "ready");
    const [r] = created;
    assert.equal(r.type, "pulumi-nodejs:dynamic/vllm-registry:RegistryEntry");
    const wire = r.inputs.connectionString as Record<string, unknown>;
    assert.equal(wire[pulumi.runtime.specialSigKey], pulumi.runtime.specialSecretSig);
    assert.ok(!String(r.inputs.__provider).includes(password));
    assert.equal(r.inputs.modelName, "llama-2-7b");
  });
});
