// The router's model resolver against real PostgreSQL and Redis: bounded caches, input that
// cannot be a model name, which PostgreSQL failures count as an outage, and Redis values
// treated as untrusted (the registry's own rules, the TTL, a disable that outranks the cache).
import * as assert from "node:assert/strict";
import type Redis from "ioredis";
import { Client, Pool } from "pg";
import { BoundedMap } from "../router/src/boundedMap";
import { RouterError } from "../router/src/errors";
import { createLogger } from "../router/src/logger";
import { RouterMetrics } from "../router/src/metrics";
import {
  CACHE_TTL_MAX_SECONDS,
  MAX_CACHED_VALUE_BYTES,
  registryKey,
  connectRedis,
  isConnectionFailure,
  migrate,
  getEntry,
  setStatus,
  upsertEntry,
  type RegistryEntry,
} from "@vllm-fleet/registry";
import { ModelResolver, ResolverOptions } from "../router/src/resolver";
import { eventually } from "./support/router";
import { createTestDatabase, freePort, redisUrl, silentServer } from "./support/services";

const ENV = "staging";

/**
 * pg-pool's end() resolves before its clients' sockets close; a server stopped right after
 * (the suite's last hook) then errors them, which is nothing to report here.
 */
function quiet(pool: Pool): Pool {
  pool.on("error", () => undefined);
  return pool;
}

/** A real pool that counts the queries it is asked to run (what "never reaches PostgreSQL" means). */
function countingPool(url: string): Pool & { queries: number } {
  const pool = quiet(new Pool({ connectionString: url, max: 4 })) as Pool & { queries: number };
  pool.queries = 0;
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    pool.queries++;
    return query(...args);
  };
  return pool;
}

function metric(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

/** `call` fails (throwing or rejecting) with a RouterError of `status` and `code`. */
async function rejectsWith(call: () => unknown, status: number, code: string) {
  await assert.rejects(
    async () => call(),
    (e: unknown) => e instanceof RouterError && e.status === status && e.code === code,
  );
}

describe("BoundedMap", () => {
  it("evicts the least recently used entry past the entry bound", () => {
    const m = new BoundedMap<string, number>(2, 1e6, () => 1);
    m.set("a", 1);
    m.set("b", 2);
    assert.equal(m.get("a"), 1); // a is now the most recently used
    m.set("c", 3);
    assert.deepEqual([m.has("a"), m.has("b"), m.has("c")], [true, false, true]);
    assert.equal(m.size, 2);
  });

  it("keeps its byte estimate within the byte bound and never stores what cannot fit", () => {
    const m = new BoundedMap<string, string>(100, 10, (k, v) => k.length + v.length);
    m.set("a", "1234"); // 5
    m.set("b", "1234"); // 10
    m.set("c", "1234"); // 15 > 10: a goes
    assert.deepEqual([m.has("a"), m.bytes], [false, 10]);
    m.set("d", "x".repeat(20));
    assert.deepEqual([m.has("d"), m.size, m.bytes], [false, 2, 10]);
    m.set("b", "1"); // replacing an entry replaces its size
    assert.equal(m.bytes, 7);
    m.delete("c");
    assert.deepEqual([m.size, m.bytes], [1, 2]);
  });
});

describe("model resolver", function () {
  this.timeout(30000);
  let url: string;
  let setup: Client;
  let redis: Redis;
  let alpha: RegistryEntry;
  const resolvers: ModelResolver[] = [];
  const pools: Pool[] = [];

  function resolver(
    o: Partial<ResolverOptions> = {},
  ): ModelResolver & { metrics: RouterMetrics; pool: Pool & { queries: number } } {
    const pool = countingPool(url);
    pools.push(pool);
    const metrics = new RouterMetrics();
    const r = new ModelResolver({
      pool,
      environment: ENV,
      metrics,
      logger: createLogger("silent"),
      ...o,
    });
    resolvers.push(r);
    return Object.assign(r, { metrics, pool });
  }

  before(async () => {
    url = await createTestDatabase("resolver");
    setup = new Client({ connectionString: url });
    await setup.connect();
    await migrate(setup);
    const base = { environment: ENV, namespace: "llm" } as const;
    alpha = await upsertEntry(setup, {
      ...base,
      modelName: "alpha",
      endpoint: "alpha-staging.llm.svc.cluster.local:8000",
      fallbacks: ["beta"],
    });
    await upsertEntry(setup, {
      ...base,
      modelName: "retired",
      endpoint: "retired-staging.llm.svc.cluster.local:8000",
      status: "disabled",
      disabledReason: "bad release",
    });
    redis = await connectRedis(await redisUrl());
  });
  after(async () => {
    resolvers.forEach((r) => r.close());
    await Promise.allSettled([...pools, setup].map((p) => p?.end()));
    redis?.disconnect();
  });

  describe("input that cannot be a model name", () => {
    it("is unknown without a lookup: NUL, control characters, over-long, uppercase, wrong type", async () => {
      const r = resolver({ redis });
      for (const name of [
        "alpha\u0000",
        "al\u001bpha",
        "a".repeat(64),
        "x".repeat(1024 * 1024),
        "Alpha",
        "",
        42 as unknown as string,
      ]) {
        const res = await r.resolve(name);
        assert.equal(res.entry, undefined, `${JSON.stringify(String(name).slice(0, 20))}`);
      }
      assert.equal(r.pool.queries, 0, "no query reached PostgreSQL");
      assert.equal(r.degraded, false);
      assert.equal(r.cacheSize.entries, 0, "nothing was cached for them");
      assert.equal((await r.resolve("alpha")).entry?.endpoint, alpha.endpoint);
    });

    // https://www.postgresql.org/docs/current/errcodes-appendix.html: 22021
    // character_not_in_repertoire is what PostgreSQL answers a NUL in a text parameter.
    it("classifies real PostgreSQL failures: SQL errors are not outages, connection failures are", async () => {
      const db = new Client({ connectionString: url });
      await db.connect();
      try {
        const nul = await db.query("SELECT $1::text", ["a\u0000b"]).catch((e: unknown) => e);
        assert.equal((nul as { code?: string }).code, "22021");
        assert.equal(isConnectionFailure(nul), false, "22021 (NUL in text) is not an outage");
        const syntax = await db.query("SELEC 1").catch((e: unknown) => e);
        assert.equal((syntax as { code?: string }).code, "42601");
        assert.equal(isConnectionFailure(syntax), false);
        await db.query("SET statement_timeout = 50");
        const timeout = await db.query("SELECT pg_sleep(1)").catch((e: unknown) => e);
        assert.equal((timeout as { code?: string }).code, "57014");
        assert.equal(isConnectionFailure(timeout), true, "a statement timeout is an outage");
      } finally {
        await db.end();
      }
      const refused = new Client({
        connectionString: `postgresql://u@127.0.0.1:${await freePort()}/x`,
      });
      const err = await refused.connect().catch((e: unknown) => e);
      assert.equal(isConnectionFailure(err), true, "connection refused is an outage");
    });

    it("answers a SQL error with 500 registry_error, leaving readiness and degraded mode alone", async () => {
      // A database without the registry table: every lookup is refused with 42P01.
      const empty = await createTestDatabase("resolver_empty");
      const pool = quiet(new Pool({ connectionString: empty, max: 1 }));
      pools.push(pool);
      const metrics = new RouterMetrics();
      const r = new ModelResolver({
        pool,
        environment: ENV,
        metrics,
        logger: createLogger("silent"),
      });
      resolvers.push(r);
      await rejectsWith(() => r.resolve("alpha"), 500, "registry_error");
      await rejectsWith(() => r.listAll(), 500, "registry_error");
      assert.equal(r.degraded, false);
      const text = await metrics.registry.metrics();
      assert.equal(metric(text, "router_degraded"), 0);
      assert.equal(metric(text, 'router_registry_errors_total{backend="postgres"}'), 2);
    });
  });

  describe("bounds", () => {
    it("holds at most the configured entries and bytes however many unknown names are sprayed", async () => {
      const r = resolver({ cacheMaxEntries: 50, cacheMaxBytes: 16 * 1024 });
      await r.resync();
      for (let i = 0; i < 400; i++) await r.resolve(`unknown-${i}-${"x".repeat(40)}`);
      const { entries, bytes } = r.cacheSize;
      // Three bounded maps: known models, unknown names, distrusted names.
      assert.ok(entries <= 3 * 50, `${entries} entries`);
      assert.ok(bytes <= 3 * 16 * 1024, `${bytes} bytes`);
      // Unknown names have their own bound: they never push a known model out.
      const queries = r.pool.queries;
      assert.equal((await r.resolve("alpha")).source, "memory");
      assert.equal(r.pool.queries, queries);
    });

    it("bounds concurrent distinct lookups: past the bound, 503 registry_busy at once", async () => {
      const silent = await silentServer();
      const pool = quiet(
        new Pool({
          connectionString: `postgresql://u:p@127.0.0.1:${silent.port}/x`,
          connectionTimeoutMillis: 2000,
          max: 10,
        }),
      );
      pools.push(pool);
      const r = new ModelResolver({
        pool,
        environment: ENV,
        metrics: new RouterMetrics(),
        logger: createLogger("silent"),
        maxPendingLookups: 2,
      });
      resolvers.push(r);
      try {
        const pending = [r.resolve("m-1"), r.resolve("m-2"), r.resolve("m-1")]; // m-1 coalesces
        const started = Date.now();
        await rejectsWith(() => r.resolve("m-3"), 503, "registry_busy");
        assert.ok(Date.now() - started < 100, "refused without waiting");
        await Promise.allSettled(pending);
      } finally {
        silent.close();
      }
    });
  });

  describe("Redis values are untrusted", () => {
    const key = (model: string) => registryKey(ENV, model);
    const ttl = 100;

    async function plant(model: string, value: unknown, seconds: number | null = ttl) {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      if (seconds === null) await redis.set(key(model), text);
      else await redis.set(key(model), text, "EX", seconds);
    }

    async function rejected(r: { metrics: RouterMetrics }, reason: string): Promise<number> {
      return metric(
        await r.metrics.registry.metrics(),
        `router_registry_cache_rejected_total{reason="${reason}"}`,
      );
    }

    // Values a registry writer could never have produced for key model_registry:staging:alpha;
    // each is ignored (PostgreSQL answers), counted and deleted.
    const evil = { endpoint: "evil.example.com:8000" };
    const invalid: [string, () => unknown][] = [
      [
        "endpoint with a scheme and path",
        () => ({ ...alpha, endpoint: "http://evil.example.com/x" }),
      ],
      // RFC 1123 labels: at most 63 characters.
      [
        "a host label longer than 63 characters",
        () => ({ ...alpha, endpoint: `${"a".repeat(64)}.example.com:8000` }),
      ],
      ["endpoint without a port", () => ({ ...alpha, endpoint: "evil.example.com" })],
      ["endpoint with a port past 65535", () => ({ ...alpha, endpoint: "evil:99999" })],
      ["status outside the enum", () => ({ ...alpha, ...evil, status: "enabled" })],
      ["another model than the key's", () => ({ ...alpha, ...evil, modelName: "beta" })],
      [
        "another environment than the key's",
        () => ({ ...alpha, ...evil, environment: "production" }),
      ],
      ["an invalid fallback", () => ({ ...alpha, ...evil, fallbacks: ["Not A Model"] })],
      [
        "disabled without a reason",
        () => ({ ...alpha, ...evil, status: "disabled", disabledReason: null }),
      ],
      ["not JSON", () => "{evil"],
      ["a JSON array", () => [alpha]],
      [
        "longer than any entry",
        () => ({ ...alpha, ...evil, metadata: { pad: "x".repeat(MAX_CACHED_VALUE_BYTES) } }),
      ],
    ];
    for (const [what, value] of invalid) {
      it(`ignores, counts and deletes a value with ${what}`, async () => {
        const r = resolver({ redis, memoryTtlMs: 0 });
        await r.resync(); // listening: only then is Redis read
        await plant("alpha", value());
        const res = await r.resolve("alpha");
        assert.equal(res.source, "postgres");
        assert.equal(res.entry?.endpoint, alpha.endpoint);
        assert.equal(await rejected(r, "invalid"), 1);
        // Deleted, then rewritten by the read-through from PostgreSQL.
        await eventually("the read-through to replace the value", async () => {
          const stored = await redis.get(key("alpha"));
          return stored !== null && JSON.parse(stored).endpoint === alpha.endpoint;
        });
      });
    }

    it("ignores a valid value without the cache's TTL (SET without EX) or with a longer one", async () => {
      for (const seconds of [null, CACHE_TTL_MAX_SECONDS + 60]) {
        const r = resolver({ redis, memoryTtlMs: 0 });
        await r.resync(); // listening: only then is Redis read
        await plant("alpha", { ...alpha, endpoint: "evil.example.com:8000" }, seconds);
        const res = await r.resolve("alpha");
        assert.equal(res.entry?.endpoint, alpha.endpoint, `TTL ${seconds}`);
        assert.equal(await rejected(r, "no_ttl"), 1);
      }
    });

    it("uses a valid value with its TTL, and writes every read-through with the 2-minute TTL (+jitter)", async () => {
      const r = resolver({ redis, memoryTtlMs: 0 });
      await r.resync(); // listening: only then is Redis read
      await redis.del(key("alpha"));
      assert.equal((await r.resolve("alpha")).source, "postgres");
      let remaining = -2;
      for (let i = 0; i < 20 && remaining === -2; i++) {
        await new Promise((res) => setTimeout(res, 25));
        remaining = await redis.ttl(key("alpha"));
      }
      assert.ok(remaining >= 100 && remaining <= CACHE_TTL_MAX_SECONDS, `TTL ${remaining}`);
      assert.equal((await r.resolve("alpha")).source, "redis");
      assert.equal(await rejected(r, "invalid"), 0);
    });

    it("never lets a cached value re-enable a model PostgreSQL disabled (resync, query or NOTIFY)", async () => {
      const retired = (await getEntry(setup, ENV, "retired"))!;
      const revived = { ...retired, status: "ready", disabledReason: null };
      // Learned by the full load (resync).
      const r = resolver({ redis, memoryTtlMs: 0 });
      await r.resync();
      await plant("retired", revived);
      assert.equal((await r.resolve("retired")).entry?.status, "disabled");
      assert.equal(await rejected(r, "overrides_disable"), 1);
      await eventually("the planted value to be replaced by the database's", async () => {
        const stored = await redis.get(key("retired"));
        return stored !== null && JSON.parse(stored).status === "disabled";
      });

      // Learned by NOTIFY: the change is reloaded from PostgreSQL (a lookup), and until then no
      // cached value may enable the model either.
      const n = resolver({ redis, memoryTtlMs: 0 });
      await n.resync();
      assert.equal((await n.resolve("alpha")).entry?.status, "ready");
      await setStatus(setup, ENV, "alpha", "disabled", "incident");
      try {
        n.invalidate("alpha");
        await plant("alpha", alpha); // a ready value, planted right after the change
        assert.equal((await n.resolve("alpha")).entry?.status, "disabled");
        await plant("alpha", alpha);
        assert.equal((await n.resolve("alpha")).entry?.status, "disabled");
      } finally {
        await setStatus(setup, ENV, "alpha", "ready");
        await redis.del(key("alpha"));
      }
      // Re-enabled in PostgreSQL: a valid ready value is a cache again.
      n.invalidate("alpha");
      await new Promise((res) => setTimeout(res, 200));
      await plant("alpha", alpha);
      assert.equal((await n.resolve("alpha")).source, "redis");
    });

    it("logs the first rejected value once, then only counts", async () => {
      const lines: string[] = [];
      const logger = createLogger("info");
      const write = (line: unknown) => lines.push(String(line));
      const r = resolver({
        redis,
        memoryTtlMs: 0,
        logger: Object.assign(Object.create(logger), {
          warn: (o: unknown, msg: string) => write(JSON.stringify({ ...(o as object), msg })),
        }),
      });
      await r.resync();
      for (let i = 0; i < 3; i++) {
        await plant("alpha", { ...alpha, endpoint: "http://secret-host.example.com/x" });
        await r.resolve("alpha");
      }
      assert.equal(await rejected(r, "invalid"), 3);
      assert.equal(lines.length, 1, lines.join("\n"));
      assert.match(lines[0], /model_registry:staging:alpha/);
    });
  });
});
