// The router end to end: a built router process, real PostgreSQL and Redis, vLLM simulators,
// and the official openai client as the caller.
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import OpenAI from "openai";
import { Pool } from "pg";
import { setStatus } from "@vllm-fleet/registry";
import { startSimulator, Simulator } from "../scripts/simulator";
import { createTestDatabase, redisUrl } from "./support/services";
import { eventually, RouterProcess, seedRegistry, startRouter } from "./support/router";

const ENV = "staging";
const KEY = "sk-test-plaintext-key-0001";
const HASHED_KEY = "sk-test-hashed-key-0002";
const PROMPT = "a secret prompt that must never be logged";

describe("router end to end", function () {
  this.timeout(60000);
  let db: string;
  let pool: Pool;
  let router: RouterProcess;
  let alpha: Simulator;
  let beta: Simulator;
  let slow: Simulator;
  let firehose: Simulator;
  let sleepy: Simulator;
  let client: OpenAI;

  before(async function () {
    this.timeout(120000);
    db = await createTestDatabase("router");
    pool = new Pool({ connectionString: db, max: 2 });
    alpha = await startSimulator({
      port: 0,
      model: "alpha",
      servedModelName: "org/alpha-served",
      ttftMs: 5,
      tokensPerSecond: 0,
    });
    beta = await startSimulator({ port: 0, model: "beta", ttftMs: 5, tokensPerSecond: 0 });
    slow = await startSimulator({ port: 0, model: "slow", ttftMs: 5, tokensPerSecond: 20 });
    firehose = await startSimulator({
      port: 0,
      model: "firehose",
      ttftMs: 0,
      tokensPerSecond: 0,
      maxModelLen: 200_000,
    });
    sleepy = await startSimulator({ port: 0, model: "sleepy", ttftMs: 4000, tokensPerSecond: 0 });
    const down = await startSimulator({
      port: 0,
      model: "down",
      ttftMs: 5,
      tokensPerSecond: 0,
      fault: "refuse",
    });
    const base = { environment: ENV, namespace: "llm-staging" } as const;
    await seedRegistry(db, [
      {
        ...base,
        modelName: "alpha",
        endpoint: alpha.endpoint,
        servedModelName: "org/alpha-served",
      },
      { ...base, modelName: "beta", endpoint: beta.endpoint },
      { ...base, modelName: "slow", endpoint: slow.endpoint },
      { ...base, modelName: "firehose", endpoint: firehose.endpoint },
      { ...base, modelName: "sleepy", endpoint: sleepy.endpoint },
      { ...base, modelName: "down", endpoint: down.endpoint, fallbacks: ["gone", "beta"] },
      {
        ...base,
        modelName: "retired",
        endpoint: beta.endpoint,
        status: "disabled",
        disabledReason: "replaced by beta",
      },
      { ...base, environment: "production", modelName: "prod-only", endpoint: beta.endpoint },
    ]);
    const keys = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "router-keys-")), "keys");
    const hash = createHash("sha256").update(HASHED_KEY).digest("hex");
    fs.writeFileSync(keys, `# test keys\n${KEY}\nsha256:${hash}\n`);
    router = await startRouter({
      DATABASE_URL: db,
      REDIS_URL: await redisUrl(),
      ROUTER_ENVIRONMENT: ENV,
      ROUTER_API_KEYS_FILE: keys,
      ROUTER_MAX_BODY_BYTES: "65536",
      ROUTER_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: "1000",
    });
    client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });

  after(async () => {
    await router?.stop();
    await Promise.all([
      alpha?.close(),
      beta?.close(),
      slow?.close(),
      firehose?.close(),
      sleepy?.close(),
    ]);
    await pool?.end();
  });

  const post = (p: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${router.url}${p}`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
      body,
    });

  it("answers chat completions, rewriting the model to the served name", async () => {
    const res = await client.chat.completions.create({
      model: "alpha",
      messages: [{ role: "user", content: PROMPT }],
      max_tokens: 5,
    });
    assert.equal(res.object, "chat.completion");
    assert.equal(res.model, "org/alpha-served");
    assert.equal(res.choices[0].message.content, "The quick brown fox jumps");
    assert.equal(res.usage?.completion_tokens, 5);
  });

  it("answers text completions", async () => {
    const res = await client.completions.create({ model: "beta", prompt: "Say", max_tokens: 3 });
    assert.equal(res.object, "text_completion");
    assert.equal(res.choices[0].text, "The quick brown");
  });

  it("streams chat completions chunk by chunk, ending with [DONE]", async () => {
    const stream = await client.chat.completions.create({
      model: "alpha",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    const parts: string[] = [];
    let finish: string | null = null;
    let usage = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) parts.push(chunk.choices[0].delta.content);
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage?.completion_tokens ?? usage;
    }
    assert.deepEqual(parts, ["The", " quick", " brown", " fox"]);
    assert.equal(finish, "length");
    assert.equal(usage, 4);
    const raw = await (
      await post(
        "/v1/completions",
        JSON.stringify({ model: "beta", prompt: "x", max_tokens: 2, stream: true }),
      )
    ).text();
    assert.match(raw, /^data: \{.*"object":"text_completion"/);
    assert.ok(raw.endsWith("data: [DONE]\n\n"), raw);
  });

  it("lists the ready models of its environment only", async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ["alpha", "beta", "down", "firehose", "sleepy", "slow"]);
  });

  it("answers 404 model_not_found for unknown models", async () => {
    for (const model of ["no-such-model", "prod-only"]) {
      await assert.rejects(
        client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] }),
        (err: unknown) => err instanceof OpenAI.NotFoundError && err.code === "model_not_found",
      );
    }
  });

  it("answers 403 model_disabled with the reason, and serves the model again once re-enabled", async () => {
    await assert.rejects(
      client.completions.create({ model: "retired", prompt: "x" }),
      (err: unknown) =>
        err instanceof OpenAI.PermissionDeniedError &&
        err.code === "model_disabled" &&
        err.message.includes("replaced by beta"),
    );
    // Warm every cache layer, then disable: the NOTIFY must win over memory and Redis.
    await client.completions.create({ model: "beta", prompt: "x", max_tokens: 1 });
    await setStatus(pool, ENV, "beta", "disabled", "maintenance window");
    await eventually(
      "beta to be denied",
      async () =>
        (await post("/v1/completions", JSON.stringify({ model: "beta", prompt: "x" }))).status ===
        403,
      2000,
    );
    const denied = await post("/v1/completions", JSON.stringify({ model: "beta", prompt: "x" }));
    assert.match(
      ((await denied.json()) as { error: { message: string } }).error.message,
      /maintenance window/,
    );
    await setStatus(pool, ENV, "beta", "ready");
    await eventually(
      "beta to be served again",
      async () =>
        (
          await post(
            "/v1/completions",
            JSON.stringify({ model: "beta", prompt: "x", max_tokens: 1 }),
          )
        ).status === 200,
      2000,
    );
  });

  it("falls back to the next ready model before the first byte when a model server is down", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: "down", messages: [{ role: "user", content: "hi" }], max_tokens: 2 })
      .withResponse();
    assert.equal(response.headers.get("x-vllm-router-model"), "beta");
    assert.equal(data.model, "beta");
    const metrics = await (await fetch(`${router.metricsUrl}/metrics`)).text();
    assert.match(
      metrics,
      /router_upstream_errors_total\{model="down",reason="connection_refused"\} [1-9]/,
    );
  });

  it("gives up on a model server that sends nothing within the first-byte timeout (503)", async () => {
    const started = Date.now();
    const res = await post("/v1/completions", JSON.stringify({ model: "sleepy", prompt: "x" }));
    assert.equal(res.status, 503);
    assert.ok(Date.now() - started < 3000, "answered at the timeout, not when the model finished");
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "upstream_unavailable");
    assert.match(body.error.message, /sleepy: timeout/);
    assert.ok(Number(res.headers.get("retry-after")) > 0);
  });

  it("ends a stream with an SSE error event when the model server drops it midway", async () => {
    await alpha.setFault("drop-mid-stream");
    try {
      const stream = await client.chat.completions.create({
        model: "alpha",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 10,
        stream: true,
      });
      const parts: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) parts.push(chunk.choices[0]?.delta.content ?? "");
        })(),
        (err: unknown) => err instanceof OpenAI.APIError && /failed mid-stream/.test(err.message),
      );
      assert.ok(parts.join("").startsWith("The quick"), "chunks before the failure arrive");
    } finally {
      await alpha.setFault(undefined);
    }
  });

  it("aborts the upstream request when the client goes away", async () => {
    const before = slow.stats().aborted;
    const abort = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "slow", messages: [{ role: "user", content: "hi" }], max_tokens: 200, stream: true },
      { signal: abort.signal },
    );
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) break; // leaving the loop aborts the response
    }
    abort.abort();
    await eventually(
      "the simulator to see the abort",
      async () => slow.stats().aborted === before + 1 && slow.stats().running === 0,
      3000,
    );
  });

  it("passes backpressure through: a stalled reader stalls the model server, and nothing is lost", async () => {
    // ~25 MB of SSE with no pacing: more than every socket buffer on the way can hold.
    const tokens = 150_000;
    const res = await post(
      "/v1/completions",
      JSON.stringify({ model: "firehose", prompt: "x", max_tokens: tokens, stream: true }),
    );
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value, { stream: true });
    await eventually(
      "the model server to wait for the reader",
      async () => firehose.stats().stalled > 0,
      5000,
    );
    // Were the router ignoring backpressure it would read the whole answer into memory and
    // the model server would finish; instead it stays blocked until the client reads on.
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(firehose.stats().running, 1, "the model server is still held back by the reader");
    for (let r = await reader.read(); !r.done; r = await reader.read())
      text += decoder.decode(r.value, { stream: true });
    assert.ok(text.endsWith("data: [DONE]\n\n"));
    assert.equal(text.split('"finish_reason":null').length - 1, tokens, "every token arrived");
  });

  it("rejects malformed JSON, a missing model and non-object bodies with 400", async () => {
    const cases: [string, string][] = [
      ['{"model": "alpha", ', "invalid_json"],
      ['{"messages": []}', "missing_model"],
      ['{"model": 42}', "missing_model"],
      ["[1, 2]", "invalid_request"],
    ];
    for (const [body, code] of cases) {
      const res = await post("/v1/chat/completions", body);
      assert.equal(res.status, 400, body);
      const json = (await res.json()) as { error: { code: string; type: string; message: string } };
      assert.equal(json.error.code, code);
      assert.equal(json.error.type, "invalid_request_error");
    }
  });

  it("rejects bodies over the limit with 413, declared or chunked", async () => {
    const big = JSON.stringify({ model: "alpha", prompt: "x".repeat(100_000) });
    const declared = await post("/v1/completions", big);
    assert.equal(declared.status, 413);
    assert.equal(
      ((await declared.json()) as { error: { code: string } }).error.code,
      "request_too_large",
    );
    const chunked = await fetch(`${router.url}/v1/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode("x".repeat(10_000)));
          c.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    assert.equal(chunked.status, 413);
  });

  it("answers 404 for paths it does not forward, and 405 for wrong methods", async () => {
    const res = await post("/v1/fine_tuning/jobs", "{}");
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "unknown_path");
    const get = await fetch(`${router.url}/v1/chat/completions`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    assert.equal(get.status, 405);
  });

  it("requires a valid API key (plaintext or sha256 entries in the keys file)", async () => {
    for (const apiKey of ["sk-wrong", `${KEY}x`]) {
      const bad = new OpenAI({ baseURL: `${router.url}/v1`, apiKey, maxRetries: 0 });
      await assert.rejects(
        bad.models.list(),
        (err: unknown) =>
          err instanceof OpenAI.AuthenticationError && err.code === "invalid_api_key",
      );
    }
    const missing = await post("/v1/chat/completions", "{}", { authorization: "" });
    assert.equal(missing.status, 401);
    const hashed = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: HASHED_KEY, maxRetries: 0 });
    const res = await hashed.completions.create({ model: "alpha", prompt: "x", max_tokens: 1 });
    assert.equal(res.choices.length, 1);
  });

  it("serves embeddings", async () => {
    const res = await client.embeddings.create({ model: "beta", input: ["a", "bb"] });
    assert.equal(res.data.length, 2);
  });

  it("exports the router metrics and health endpoints", async () => {
    assert.equal((await fetch(`${router.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${router.url}/readyz`)).status, 200);
    const text = await (await fetch(`${router.metricsUrl}/metrics`)).text();
    for (const name of [
      `router_requests_total{model="alpha",status="200",environment="${ENV}"}`,
      `router_request_duration_seconds_bucket{le="0.005",model="alpha",environment="${ENV}"}`,
      `router_time_to_first_byte_seconds_count{model="alpha",environment="${ENV}"}`,
      'router_registry_lookups_total{source="memory"}',
      'router_registry_lookups_total{source="negative"}',
      "router_inflight_requests 0",
      "router_degraded 0",
      `router_registry_entry_ready{model="alpha",environment="${ENV}"} 1`,
      `router_registry_entry_ready{model="retired",environment="${ENV}"} 0`,
      "process_resident_memory_bytes",
    ]) {
      assert.ok(text.includes(name), `missing ${name}`);
    }
  });

  it("logs JSON without keys, prompts or passwords", async () => {
    // Request lines are written in blocks, at the latest after LOG_FLUSH_INTERVAL_MS.
    await eventually(
      "a request log line",
      async () =>
        router.logs().some((l) => l.msg === "request" && l.model === "alpha" && l.status === 200),
      5000,
    );
    const all = router.output.join("\n");
    const password = new URL(db).password;
    for (const secret of [KEY, HASHED_KEY, PROMPT, password])
      assert.ok(!all.includes(secret), "a secret reached the logs");
  });
});
