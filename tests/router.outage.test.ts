// The router while its registry backends fail: Redis stopped under load, PostgreSQL stopped
// with a warm cache. Each test owns the server it stops.
import * as assert from "node:assert/strict";
import { startSimulator, Simulator } from "../scripts/simulator";
import {
  createTestDatabase,
  startPostgres,
  startRedis,
  PostgresServer,
  RedisServer,
} from "./support/services";
import { eventually, RouterProcess, seedRegistry, startRouter } from "./support/router";

const ENV = "development";

async function complete(
  router: RouterProcess,
  model: string,
): Promise<{
  status: number;
  degraded: string | null;
  ms: number;
  body: string;
  retryAfter: string | null;
}> {
  const started = Date.now();
  const res = await fetch(`${router.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: "hello", max_tokens: 2 }),
  });
  const body = await res.text();
  return {
    status: res.status,
    degraded: res.headers.get("x-vllm-router-degraded"),
    ms: Date.now() - started,
    body,
    retryAfter: res.headers.get("retry-after"),
  };
}

function metric(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

describe("router with registry outages", function () {
  this.timeout(60000);
  let sim: Simulator;

  before(async () => {
    sim = await startSimulator({ port: 0, model: "live", ttftMs: 1, tokensPerSecond: 0 });
  });
  after(() => sim?.close());

  describe("Redis stopped mid-test", () => {
    let redis: RedisServer;
    let router: RouterProcess;

    before(async function () {
      this.timeout(120000);
      redis = await startRedis();
      const db = await createTestDatabase("outage");
      await seedRegistry(db, [
        { modelName: "live", environment: ENV, namespace: "llm", endpoint: sim.endpoint },
      ]);
      // No in-process caching, so every request really goes through Redis (or around it).
      router = await startRouter({
        DATABASE_URL: db,
        REDIS_URL: redis.url,
        ROUTER_ENVIRONMENT: ENV,
        ROUTER_REGISTRY_MEMORY_TTL_MS: "0",
      });
    });
    after(async () => {
      await router?.stop();
      await redis?.stop();
    });

    it("keeps answering from PostgreSQL, quickly, while Redis is down, and uses Redis again after", async () => {
      await complete(router, "live"); // read-through fills Redis
      const results: { status: number; ms: number }[] = [];
      let stopping = false;
      const workers = Array.from({ length: 4 }, async () => {
        while (!stopping) results.push(await complete(router, "live"));
      });
      await new Promise((r) => setTimeout(r, 500));
      const fromRedis = metric(
        await (await fetch(`${router.metricsUrl}/metrics`)).text(),
        'router_registry_lookups_total{source="redis"}',
      );
      await redis.stop();
      await new Promise((r) => setTimeout(r, 1500));
      stopping = true;
      await Promise.all(workers);
      assert.ok(fromRedis > 0, "lookups were served by Redis before the outage");
      assert.ok(results.length > 20, `only ${results.length} requests completed`);
      assert.deepEqual(
        results.filter((r) => r.status !== 200),
        [],
      );
      assert.ok(
        Math.max(...results.map((r) => r.ms)) < 1000,
        "no request waited on the dead Redis for long",
      );
      const during = await (await fetch(`${router.metricsUrl}/metrics`)).text();
      const fromPostgres = metric(during, 'router_registry_lookups_total{source="postgres"}');
      assert.ok(fromPostgres > 0, "PostgreSQL answered while Redis was down");
      assert.equal(metric(during, "router_degraded"), 0, "Redis alone down is not degraded");

      await redis.start();
      await eventually(
        "lookups from Redis again",
        async () => {
          await complete(router, "live");
          const now = await (await fetch(`${router.metricsUrl}/metrics`)).text();
          return metric(now, 'router_registry_lookups_total{source="redis"}') > fromRedis;
        },
        8000,
      );
    });
  });

  describe("started before the registry schema exists", () => {
    let router: RouterProcess;
    after(() => router?.stop());

    it("is not ready until the registry can be loaded, then serves without a restart", async () => {
      const db = await createTestDatabase("early");
      router = await startRouter(
        { DATABASE_URL: db, ROUTER_ENVIRONMENT: ENV },
        { waitReady: false },
      );
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await fetch(`${router.url}/readyz`)).status, 503);
      await seedRegistry(db, [
        { modelName: "live", environment: ENV, namespace: "llm", endpoint: sim.endpoint },
      ]);
      await eventually(
        "readiness",
        async () => (await fetch(`${router.url}/readyz`)).status === 200,
        5000,
      );
      await eventually(
        "the model to be served",
        async () => (await complete(router, "live")).status === 200,
        5000,
      );
    });
  });

  describe("PostgreSQL stopped with a warm cache", () => {
    let pg: PostgresServer;
    let router: RouterProcess;

    before(async function () {
      this.timeout(120000);
      pg = await startPostgres();
      await seedRegistry(pg.url, [
        { modelName: "live", environment: ENV, namespace: "llm", endpoint: sim.endpoint },
        {
          modelName: "off",
          environment: ENV,
          namespace: "llm",
          endpoint: sim.endpoint,
          status: "disabled",
          disabledReason: "bad weights",
        },
      ]);
      router = await startRouter({ DATABASE_URL: pg.url, ROUTER_ENVIRONMENT: ENV });
    });
    after(async () => {
      await router?.stop();
      await pg?.destroy().catch(() => undefined);
    });

    it("serves enabled models degraded, keeps disabled ones disabled, and recovers", async () => {
      assert.equal((await complete(router, "live")).status, 200);
      assert.equal((await complete(router, "off")).status, 403);
      await pg.stop();
      const seen: Awaited<ReturnType<typeof complete>>[] = [];
      await eventually(
        "a degraded answer",
        async () => {
          const r = await complete(router, "live");
          seen.push(r);
          return r.degraded === "1";
        },
        10000,
      );
      assert.deepEqual(
        seen.filter((r) => r.status !== 200),
        [],
        "enabled model kept working",
      );
      const live = await complete(router, "live");
      assert.equal(live.status, 200);
      assert.equal(live.degraded, "1");
      const off = await complete(router, "off");
      assert.equal(off.status, 403);
      assert.match(off.body, /bad weights/);
      assert.equal(off.degraded, "1");
      const unknown = await complete(router, "never-seen");
      assert.equal(unknown.status, 503);
      assert.equal(JSON.parse(unknown.body).error.code, "registry_unavailable");
      assert.ok(Number(unknown.retryAfter) > 0, "Retry-After is set");
      const ready = await fetch(`${router.url}/readyz`);
      assert.equal(ready.status, 200, "a warm cache keeps the router ready");
      assert.equal(
        metric(await (await fetch(`${router.metricsUrl}/metrics`)).text(), "router_degraded"),
        1,
      );
      const models = await fetch(`${router.url}/v1/models`);
      assert.equal(models.headers.get("x-vllm-router-degraded"), "1");
      assert.deepEqual(
        ((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id),
        ["live"],
      );

      await pg.start();
      await eventually(
        "recovery",
        async () => (await complete(router, "live")).degraded === null,
        15000,
      );
      assert.equal(
        metric(await (await fetch(`${router.metricsUrl}/metrics`)).text(), "router_degraded"),
        0,
      );
    });
  });
});
