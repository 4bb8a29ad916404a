// The vLLM simulator speaks vLLM's API surface: endpoints, response and SSE formats, metric
// names, pacing and faults.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { startSimulator, Simulator } from "../scripts/simulator";
import { EXIT, EXIT_HELP } from "../scripts/lib/cli";
import { freePort } from "./support/services";

const json = { "content-type": "application/json" };

describe("vLLM simulator", () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({
      port: 0,
      model: "qwen",
      servedModelName: "Qwen/Qwen2.5",
      ttftMs: 30,
      tokensPerSecond: 100,
    });
  });
  after(() => sim.close());

  const post = (p: string, body: unknown) =>
    fetch(`${sim.url}${p}`, { method: "POST", headers: json, body: JSON.stringify(body) });

  it("serves /health and /v1/models with the served model name", async () => {
    assert.equal((await fetch(`${sim.url}/health`)).status, 200);
    const models = (await (await fetch(`${sim.url}/v1/models`)).json()) as {
      object: string;
      data: { id: string; object: string; root: string }[];
    };
    assert.equal(models.object, "list");
    assert.deepEqual(
      models.data.map((m) => [m.id, m.object, m.root]),
      [["Qwen/Qwen2.5", "model", "qwen"]],
    );
  });

  it("answers chat and text completions in vLLM's format, with usage", async () => {
    const chat = (await (
      await post("/v1/chat/completions", {
        model: "Qwen/Qwen2.5",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 3,
      })
    ).json()) as {
      object: string;
      id: string;
      choices: { message: { role: string; content: string }; finish_reason: string }[];
      usage: { completion_tokens: number };
    };
    assert.equal(chat.object, "chat.completion");
    assert.match(chat.id, /^chatcmpl-/);
    assert.deepEqual(chat.choices[0].message, {
      ...chat.choices[0].message,
      role: "assistant",
      content: "The quick brown",
    });
    assert.equal(chat.choices[0].finish_reason, "length");
    assert.equal(chat.usage.completion_tokens, 3);
    const text = (await (
      await post("/v1/completions", { model: "Qwen/Qwen2.5", prompt: "x", max_tokens: 2 })
    ).json()) as { object: string; choices: { text: string }[] };
    assert.equal(text.object, "text_completion");
    assert.equal(text.choices[0].text, "The quick");
  });

  it("streams SSE chunks paced by ttft and token rate, ending with data: [DONE]", async () => {
    const started = Date.now();
    const res = await post("/v1/chat/completions", {
      model: "Qwen/Qwen2.5",
      messages: [],
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const events = (await res.text()).split("\n\n").filter(Boolean);
    const elapsed = Date.now() - started;
    assert.equal(events.at(-1), "data: [DONE]");
    const chunks = events.slice(0, -1).map(
      (e) =>
        JSON.parse(e.replace(/^data: /, "")) as {
          object: string;
          choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[];
          usage?: { completion_tokens: number };
        },
    );
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    assert.equal(
      chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""),
      "The quick brown fox jumps",
    );
    assert.equal(chunks.at(-2)?.choices[0].finish_reason, "length");
    assert.equal(chunks.at(-1)?.usage?.completion_tokens, 5);
    assert.ok(elapsed >= 30 + 4 * 10 - 5, `took ${elapsed} ms: ttft 30 ms + 4 tokens at 100/s`);
  });

  it("answers vLLM's 404 for an unknown model and 400 for bad JSON", async () => {
    const res = await post("/v1/completions", { model: "qwen", prompt: "x" });
    assert.equal(res.status, 404);
    assert.match(
      ((await res.json()) as { error: { message: string } }).error.message,
      /does not exist/,
    );
    const bad = await fetch(`${sim.url}/v1/completions`, {
      method: "POST",
      headers: json,
      body: "{",
    });
    assert.equal(bad.status, 400);
  });

  it("exports vLLM's metric names labelled model_name and engine", async () => {
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    for (const name of [
      'vllm:num_requests_running{model_name="Qwen/Qwen2.5",engine="0"} 0',
      'vllm:num_requests_waiting{model_name="Qwen/Qwen2.5",engine="0"}',
      'vllm:gpu_cache_usage_perc{model_name="Qwen/Qwen2.5",engine="0"}',
      'vllm:kv_cache_usage_perc{model_name="Qwen/Qwen2.5",engine="0"}',
      'vllm:time_to_first_token_seconds_bucket{model_name="Qwen/Qwen2.5",engine="0",le="+Inf"}',
      'vllm:e2e_request_latency_seconds_count{model_name="Qwen/Qwen2.5",engine="0"}',
      'vllm:prompt_tokens_total{model_name="Qwen/Qwen2.5",engine="0"}',
      'vllm:generation_tokens_total{model_name="Qwen/Qwen2.5",engine="0"} 10',
    ]) {
      assert.ok(text.includes(name), `missing ${name}`);
    }
  });

  it("injects faults: 500, drop mid-stream, refused connections, and recovers", async () => {
    await sim.setFault("500");
    assert.equal(
      (await post("/v1/completions", { model: "Qwen/Qwen2.5", prompt: "x" })).status,
      500,
    );
    await sim.setFault("drop-mid-stream");
    const res = await post("/v1/completions", {
      model: "Qwen/Qwen2.5",
      prompt: "x",
      stream: true,
      max_tokens: 10,
    });
    await assert.rejects(res.text(), "the stream is cut, not ended");
    await sim.setFault("refuse");
    await assert.rejects(fetch(`${sim.url}/health`));
    await sim.setFault(undefined);
    assert.equal((await fetch(`${sim.url}/health`)).status, 200);
  });

  it("runs as `npm run sim` with --help and rejects bad flags", async function () {
    this.timeout(30000);
    const root = path.resolve(__dirname, "..");
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            require.resolve("ts-node/dist/bin"),
            "--transpile-only",
            "scripts/simulator.ts",
            ...args,
          ],
          { cwd: root },
        );
        let out = "";
        child.stdout.on("data", (d) => {
          out += d;
          if (out.includes("listening on")) child.kill("SIGTERM");
        });
        child.stderr.on("data", (d) => (out += d));
        child.once("exit", (code) => resolve({ code, out }));
      });
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /--ttft-ms/);
    assert.ok(help.out.includes(EXIT_HELP), help.out);
    const bad = await run(["--model", "m", "--fault", "explode"]);
    assert.equal(bad.code, EXIT.usage);
    assert.match(bad.out, /--fault/);
    const badEngine = await run(["--model", "m", "--max-num-seqs", "0"]);
    assert.equal(badEngine.code, EXIT.usage);
    assert.match(badEngine.out, /--max-num-seqs must be an integer > 0, got 0/);
    const taken = await startSimulator({ port: 0, model: "m", ttftMs: 0, tokensPerSecond: 0 });
    try {
      const busy = await run(["--model", "m", "--port", String(new URL(taken.url).port)]);
      assert.equal(busy.code, EXIT.startFailed, busy.out);
      assert.match(busy.out, /simulator failed: .*EADDRINUSE/);
    } finally {
      await taken.close();
    }
    const port = await freePort();
    const ok = await run(["--model", "m", "--port", String(port)]);
    assert.match(ok.out, new RegExp(`listening on http://127.0.0.1:${port}`));
    assert.equal(ok.code, 0);
    // Any engine flag turns the engine model on.
    const engine = await run(["--model", "m", "--port", "0", "--step-ms", "0"]);
    assert.match(engine.out, /listening on http:\/\/127\.0\.0\.1:\d+ \(engine model\)/);
    assert.equal(engine.code, 0);
  });
});
