// The router process against hostile input and a hostile cache: names that cannot be models,
// uploads that stall mid-body, more body bytes than the router will hold, and Redis values a
// registry writer could not have written. Real sockets, PostgreSQL, Redis and simulators.
import * as assert from "node:assert/strict";
import * as http from "node:http";
import * as net from "node:net";
import type Redis from "ioredis";
import { Client } from "pg";
import { readRouterConfig } from "../router/src/config";
import { registryKey, connectRedis, getEntry } from "@vllm-fleet/registry";
import { startSimulator, Simulator } from "../scripts/simulator";
import { createTestDatabase, redisUrl } from "./support/services";
import { RouterProcess, seedRegistry, startRouter } from "./support/router";

const ENV = "production";
const MAX_BODY = 32 * 1024;
const BUDGET = 64 * 1024;
const BODY_TIMEOUT_MS = 1500;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The router closed the connection after answering. */
  closed: boolean;
}

/**
 * Sends the head of a POST declaring `declared` bytes and then `sent` bytes of body, and
 * waits for the answer without ever finishing the body.
 */
function stalledUpload(url: string, declared: number, sent: number): Promise<Answer> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), "127.0.0.1");
    let raw = "";
    let closed = false;
    socket.on("data", (d) => (raw += d.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      closed = true;
      const [head, body = ""] = raw.split("\r\n\r\n");
      if (!head) return reject(new Error("the connection closed without an answer"));
      const [statusLine, ...lines] = head.split("\r\n");
      const headers: http.IncomingHttpHeaders = {};
      for (const l of lines)
        headers[l.slice(0, l.indexOf(":")).toLowerCase()] = l.slice(l.indexOf(":") + 1).trim();
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body, closed });
    });
    socket.write(
      `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n\r\n`,
    );
    socket.write(`{"model":"alpha","prompt":"${"x".repeat(Math.max(0, sent - 30))}`);
  });
}

function metric(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

describe("router body limits config", () => {
  const base = { DATABASE_URL: "postgresql://u@127.0.0.1:5432/r", ROUTER_ENVIRONMENT: "staging" };

  it("defaults to a 30 s body deadline and a 64 MiB in-flight budget", () => {
    const c = readRouterConfig(base);
    assert.equal(c.bodyTimeoutMs, 30000);
    assert.equal(c.maxInflightBodyBytes, 64 * 1024 * 1024);
  });

  it("refuses a budget smaller than one body, naming both variables", () => {
    assert.throws(
      () =>
        readRouterConfig({
          ...base,
          ROUTER_MAX_BODY_BYTES: "65536",
          ROUTER_MAX_INFLIGHT_BODY_BYTES: "4096",
          ROUTER_BODY_TIMEOUT_MS: "0",
        }),
      (e: Error) =>
        /ROUTER_MAX_INFLIGHT_BODY_BYTES \(4096\) must be at least ROUTER_MAX_BODY_BYTES \(65536\)/.test(
          e.message,
        ) && /ROUTER_BODY_TIMEOUT_MS must be an integer between 100 and 600000/.test(e.message),
    );
  });
});

describe("router against hostile input and a hostile cache", function () {
  this.timeout(60000);
  let sim: Simulator;
  let router: RouterProcess;
  let redis: Redis;
  let db: string;
  /** A server prompts must never reach: what a planted Redis value points at. */
  let evil: http.Server;
  let evilHits = 0;
  let evilEndpoint: string;

  async function post(body: unknown): Promise<{
    status: number;
    json: { error?: { code: string; type: string; message: string } };
    headers: Headers;
  }> {
    const res = await fetch(`${router.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as never, headers: res.headers };
  }
  const metrics = async () => (await fetch(`${router.metricsUrl}/metrics`)).text();

  before(async function () {
    this.timeout(120000);
    sim = await startSimulator({ port: 0, model: "alpha", ttftMs: 1, tokensPerSecond: 0 });
    evil = http.createServer((req, res) => {
      evilHits++;
      req.resume();
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    evilEndpoint = `127.0.0.1:${(evil.address() as net.AddressInfo).port}`;
    db = await createTestDatabase("hostile");
    const base = { environment: ENV, namespace: "llm" } as const;
    await seedRegistry(db, [
      { ...base, modelName: "alpha", endpoint: sim.endpoint },
      {
        ...base,
        modelName: "retired",
        endpoint: sim.endpoint,
        servedModelName: "alpha",
        status: "disabled",
        disabledReason: "bad release",
      },
    ]);
    const url = await redisUrl();
    redis = await connectRedis(url);
    router = await startRouter({
      DATABASE_URL: db,
      REDIS_URL: url,
      ROUTER_ENVIRONMENT: ENV,
      // Every request reads Redis, so planted values are really looked at.
      ROUTER_REGISTRY_MEMORY_TTL_MS: "0",
      ROUTER_MAX_BODY_BYTES: String(MAX_BODY),
      ROUTER_MAX_INFLIGHT_BODY_BYTES: String(BUDGET),
      ROUTER_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
    });
  });
  after(async () => {
    await router?.stop();
    await sim?.close();
    evil?.close();
    redis?.disconnect();
  });

  describe("input that cannot be a model name", () => {
    it("answers a NUL in model with 400, never 503, and neither readiness nor degraded moves", async () => {
      const before = await metrics();
      const res = await post({ model: "alpha\u0000", prompt: "x" });
      assert.equal(res.status, 400);
      assert.equal(res.json.error?.code, "invalid_model");
      assert.equal(res.json.error?.type, "invalid_request_error");
      const ready = await fetch(`${router.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.equal(((await ready.json()) as { degraded: boolean }).degraded, false);
      const after = await metrics();
      assert.equal(metric(after, "router_degraded"), 0);
      const pgErrors = 'router_registry_errors_total{backend="postgres"}';
      assert.equal(metric(after, pgErrors), metric(before, pgErrors));
      assert.equal((await post({ model: "alpha", prompt: "x", max_tokens: 1 })).status, 200);
    });

    it("answers control characters, over-long names and wrong types with 400, other impossible names with 404", async () => {
      const cases: [unknown, number, string][] = [
        ["al\u001bpha", 400, "invalid_model"],
        ["alpha\u0085", 400, "invalid_model"],
        ["a".repeat(64), 400, "invalid_model"],
        ["m".repeat(30_000), 400, "invalid_model"],
        [42, 400, "missing_model"],
        [["alpha"], 400, "missing_model"],
        [{ name: "alpha" }, 400, "missing_model"],
        ["Alpha", 404, "model_not_found"],
        ["org/alpha", 404, "model_not_found"],
      ];
      const lookups = (t: string) =>
        ["redis", "postgres"].reduce(
          (n, s) => n + metric(t, `router_registry_lookups_total{source="${s}"}`),
          0,
        );
      const before = lookups(await metrics());
      for (const [model, status, code] of cases) {
        const res = await post({ model, prompt: "x" });
        assert.equal(res.status, status, JSON.stringify(model).slice(0, 40));
        assert.equal(res.json.error?.code, code);
        assert.ok(res.json.error!.message.length < 400, "the name is not echoed back at length");
      }
      assert.equal(lookups(await metrics()), before, "none of them reached Redis or PostgreSQL");
    });
  });

  describe("request bodies", () => {
    // RFC 9110 section 15.5.9: 408 when the request did not arrive in time, with "close".
    it("answers an upload that stalls mid-body with 408 after the read deadline and closes the connection", async () => {
      const started = Date.now();
      const res = await stalledUpload(router.url, 1000, 100);
      const ms = Date.now() - started;
      assert.equal(res.status, 408);
      assert.equal(res.headers.connection, "close");
      assert.equal(res.closed, true);
      assert.equal(JSON.parse(res.body).error.code, "request_timeout");
      assert.ok(ms >= BODY_TIMEOUT_MS - 100 && ms < BODY_TIMEOUT_MS + 2000, `${ms} ms`);
    });

    it("answers 503 with Retry-After once stalled uploads hold the in-flight byte budget, and recovers", async () => {
      // Two uploads hold 60,000 of the 65,536 budget bytes, then stall.
      const stalled = [
        stalledUpload(router.url, 31_000, 30_000),
        stalledUpload(router.url, 31_000, 30_000),
      ];
      await new Promise((r) => setTimeout(r, 300));
      const declared = await post({ model: "alpha", prompt: "y".repeat(10_000) });
      assert.equal(declared.status, 503);
      assert.equal(declared.json.error?.code, "server_busy");
      assert.equal(declared.json.error?.type, "server_error");
      assert.equal(declared.headers.get("retry-after"), "1");
      // Without a Content-Length the budget is counted as the bytes arrive.
      const chunked = await fetch(`${router.url}/v1/completions`, {
        method: "POST",
        body: new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode(`{"model":"alpha","prompt":"${"z".repeat(10_000)}`));
            c.enqueue(new TextEncoder().encode(`"}`));
            c.close();
          },
        }),
        duplex: "half",
      } as RequestInit);
      assert.equal(chunked.status, 503);
      await chunked.arrayBuffer();
      // Small requests still fit in what is left.
      assert.equal((await post({ model: "alpha", prompt: "x", max_tokens: 1 })).status, 200);
      // The per-request limit stays a 413.
      assert.equal((await post({ model: "alpha", prompt: "x".repeat(MAX_BODY) })).status, 413);
      for (const s of await Promise.all(stalled)) assert.equal(s.status, 408);
      // Their bytes are given back when they end.
      assert.equal(
        (await post({ model: "alpha", prompt: "y".repeat(10_000), max_tokens: 1 })).status,
        200,
      );
    });
  });

  describe("Redis values are untrusted", () => {
    const key = (model: string) => registryKey(ENV, model);

    it("never sends a prompt where a planted value points unless it carries the cache's TTL, and counts what it ignores", async () => {
      const row = (await (async () => {
        const c = new Client({ connectionString: db });
        await c.connect();
        try {
          return await getEntry(c, ENV, "alpha");
        } finally {
          await c.end();
        }
      })())!;
      const before = await metrics();
      const planted = [
        { ...row, endpoint: `http://${evilEndpoint}/v1` }, // not host:port
        { ...row, endpoint: evilEndpoint, environment: "staging" }, // another environment
        { ...row, endpoint: evilEndpoint, modelName: "beta" }, // another model
      ];
      for (const value of planted) {
        await redis.set(key("alpha"), JSON.stringify(value), "EX", 100);
        assert.equal((await post({ model: "alpha", prompt: "x", max_tokens: 1 })).status, 200);
      }
      // Valid in every field, but written without a TTL it would live forever.
      await redis.set(key("alpha"), JSON.stringify({ ...row, endpoint: evilEndpoint }));
      assert.equal((await post({ model: "alpha", prompt: "x", max_tokens: 1 })).status, 200);
      assert.equal(evilHits, 0, "no prompt reached the planted endpoint");
      const after = await metrics();
      const count = (t: string, reason: string) =>
        metric(t, `router_registry_cache_rejected_total{reason="${reason}"}`);
      assert.equal(count(after, "invalid") - count(before, "invalid"), planted.length);
      assert.equal(count(after, "no_ttl") - count(before, "no_ttl"), 1);
      const ttl = await redis.ttl(key("alpha"));
      assert.ok(
        ttl >= 100 && ttl <= 132,
        `the router's own read-through has the cache TTL (${ttl})`,
      );
    });

    it("keeps a model the database disabled disabled, whatever Redis says", async () => {
      const c = new Client({ connectionString: db });
      await c.connect();
      const retired = (await getEntry(c, ENV, "retired"))!;
      await c.end();
      for (let i = 0; i < 3; i++) {
        await redis.set(
          key("retired"),
          JSON.stringify({ ...retired, status: "ready", disabledReason: null }),
          "EX",
          100,
        );
        const res = await post({ model: "retired", prompt: "x", max_tokens: 1 });
        assert.equal(res.status, 403);
        assert.equal(res.json.error?.code, "model_disabled");
      }
      assert.ok(
        metric(
          await metrics(),
          'router_registry_cache_rejected_total{reason="overrides_disable"}',
        ) >= 3,
      );
    });
  });
});
