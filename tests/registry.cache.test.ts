// Registry cache and connections against real Redis/PostgreSQL, including dead and silent servers.
import assert from "node:assert/strict";
import {
  CACHE_TTL_SECONDS,
  cacheTtlSeconds,
  decodeEntry,
  encodeEntry,
  invalidateCache,
  registryKey,
  RegistryUnavailableError,
  connectClient,
  connectRedis,
  createRedis,
  migrate,
  upsertEntry,
} from "@vllm-fleet/registry";
import { createTestDatabase, freePort, redisUrl, silentServer } from "./support/services";

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - start };
}

describe("registry cache", () => {
  it("names keys model_registry:{env}:{model} and jitters the TTL around 120 s", () => {
    assert.equal(registryKey("development", "llama-2-7b"), "model_registry:development:llama-2-7b");
    assert.equal(
      cacheTtlSeconds(() => 0),
      108,
    );
    assert.equal(
      cacheTtlSeconds(() => 0.5),
      CACHE_TTL_SECONDS,
    );
    assert.equal(
      cacheTtlSeconds(() => 0.999999),
      132,
    );
  });

  it("round-trips a real row through Redis and treats garbage as a miss", async () => {
    const db = await connectClient(await createTestDatabase("reg_cache"));
    try {
      await migrate(db);
      const entry = await upsertEntry(db, {
        modelName: "qwen2.5-7b",
        environment: "staging",
        endpoint: "qwen2.5-7b-staging.system.svc.cluster.local:8000",
        namespace: "system",
        fallbacks: ["llama-2-7b"],
        metadata: { owner: "ml" },
      });
      const redis = await connectRedis(await redisUrl());
      try {
        const key = registryKey(entry.environment, entry.modelName);
        await redis.set(key, encodeEntry(entry), "EX", cacheTtlSeconds());
        assert.deepEqual(decodeEntry(await redis.get(key)), entry);
      } finally {
        redis.disconnect();
      }
    } finally {
      await db.end();
    }
    assert.equal(decodeEntry(null), undefined);
    assert.equal(decodeEntry("{not json"), undefined);
    assert.equal(decodeEntry(JSON.stringify({ modelName: "x" })), undefined);
  });

  it("invalidates: deletes the key, reports an absent key, skips without a URL", async () => {
    const url = await redisUrl();
    const redis = await connectRedis(url);
    try {
      const key = registryKey("production", "inv-test");
      await redis.set(key, "x");
      assert.deepEqual(await invalidateCache(url, "production", "inv-test"), {
        key,
        result: "deleted",
      });
      assert.equal(await redis.exists(key), 0);
      assert.equal((await invalidateCache(url, "production", "inv-test")).result, "absent");
      assert.equal((await invalidateCache(undefined, "production", "inv-test")).result, "skipped");
    } finally {
      redis.disconnect();
    }
  });

  it("fails fast, without throwing, when Redis is down or silent", async () => {
    const deadUrl = `redis://127.0.0.1:${await freePort()}`;
    const dead = await timed(() => invalidateCache(deadUrl, "staging", "m"));
    assert.equal(dead.value.result, "failed");
    assert.ok(dead.ms < 1300, `dead Redis took ${dead.ms} ms`);

    const silent = await silentServer();
    try {
      const hung = await timed(() =>
        invalidateCache(`redis://127.0.0.1:${silent.port}`, "staging", "m"),
      );
      assert.equal(hung.value.result, "failed");
      assert.ok(hung.ms < 1300, `silent Redis took ${hung.ms} ms (must never be the 10 s default)`);

      const redis = createRedis(`redis://127.0.0.1:${silent.port}`);
      const cmd = await timed(() =>
        redis.get("k").then(
          () => "answered",
          (e: Error) => e.message,
        ),
      );
      redis.disconnect();
      assert.notEqual(cmd.value, "answered");
      assert.ok(cmd.ms < 1200, `a command on a silent Redis took ${cmd.ms} ms`);
    } finally {
      silent.close();
    }
  });

  it("bounds PostgreSQL connects and never puts the password in the error", async () => {
    const silent = await silentServer();
    try {
      const url = `postgresql://admin:s3cret-pw@127.0.0.1:${silent.port}/registry`;
      const start = Date.now();
      await assert.rejects(connectClient(url, { connectionTimeoutMillis: 300 }), (e: unknown) => {
        assert.ok(e instanceof RegistryUnavailableError);
        assert.match(
          e.message,
          /cannot reach the registry database at postgresql:\/\/admin:\*\*\*@127\.0\.0\.1/,
        );
        assert.doesNotMatch(e.message, /s3cret-pw/);
        return true;
      });
      assert.ok(Date.now() - start < 2000);
    } finally {
      silent.close();
    }
    const port = await freePort();
    await assert.rejects(connectClient(`postgresql://u:pw@127.0.0.1:${port}/x`), /ECONNREFUSED/);
  });
});
