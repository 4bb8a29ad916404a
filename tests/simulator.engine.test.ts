// The simulator's engine model behaves like a vLLM engine where routing can see it: prefix-cache
// hits make time to first token follow uncached tokens, a conversation's next turn reuses the
// earlier turn's blocks, the cache evicts least recently used blocks but never a running
// request's, sequences beyond --max-num-seqs queue, and /metrics says so under vLLM's names.
// The engine is stepped on a virtual clock here, so times are exact, not measured.
import * as assert from "node:assert/strict";
import { VLLM_METRICS } from "../components/manifests";
import { startSimulator, Simulator } from "../scripts/simulator";
import { Engine, EngineParameters, EngineRequest, Step } from "../scripts/simulator/engine";
import { BlockPool, blockHash, extendBlockHashes } from "../scripts/simulator/kvcache";
import { engineParameters } from "../scripts/simulator/server";
import { chatTemplate, GENERATED, promptTokens, tokenize } from "../scripts/simulator/tokens";
import { eventually } from "./support/router";

/** An engine on a virtual clock: 1 ms a prefill token, 10 ms a step, 1 ms a decoding sequence. */
function virtual(params: Partial<EngineParameters> = {}) {
  let now = 0;
  const engine = new Engine(
    { stepMs: 10, prefillTokensPerSecond: 1000, decodeMsPerSeq: 1, ...params },
    () => now,
  );
  const step = (): Step | undefined => {
    const s = engine.schedule();
    if (s) {
      now += s.ms;
      engine.finish(s);
    }
    return s;
  };
  const drain = () => {
    while (step());
  };
  return { engine, step, drain, now: () => now };
}

const ttft = (r: EngineRequest) => r.firstTokenAt! - r.arrivedAt;
/** `n` distinct tokens tagged `tag`. */
const prompt = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}`);

describe("simulator tokens and chat template", () => {
  it("tokenizes deterministically, about 4 characters a token, ChatML markers as one token", () => {
    const text = "The quick brown fox jumps over the lazy dog, 12345 times.";
    assert.deepEqual(tokenize(text), tokenize(text));
    assert.deepEqual(tokenize("<|im_start|>user\nhi"), ["<|im_start|>", "user", "\n", "hi"]);
    assert.equal(tokenize(text).join(""), text, "tokens cover the text");
    const n = tokenize(text).length;
    assert.ok(n >= text.length / 6 && n <= text.length / 3, `${n} tokens`);
  });

  it("renders a conversation so the next turn's tokens start with the earlier turn's", () => {
    const turn1 = [
      { role: "system", content: "You are terse." },
      { role: "user", content: [{ type: "text", text: "Name a fox." }] },
    ];
    const reply = GENERATED.slice(0, 5).join("");
    const turn2 = [
      ...turn1,
      { role: "assistant", content: reply },
      { role: "user", content: "More." },
    ];
    assert.match(chatTemplate(turn1), /^<\|im_start\|>system\nYou are terse\.<\|im_end\|>\n/);
    assert.match(chatTemplate(turn1), /<\|im_start\|>assistant\n$/, "generation prompt");
    const t1 = promptTokens({ messages: turn1 });
    const t2 = promptTokens({ messages: turn2 });
    assert.deepEqual(t2.slice(0, t1.length), t1);
    // What the engine generated re-tokenizes to the same tokens in the next turn.
    assert.deepEqual(t2.slice(t1.length, t1.length + 5), [...GENERATED.slice(0, 5)]);
    assert.deepEqual(promptTokens({ prompt: [1, 2, 3] }), ["#1", "#2", "#3"], "token ids");
  });
});

describe("simulator KV cache (vLLM's BlockPool)", () => {
  it("chain-hashes full blocks: equal hashes only for equal prefixes", () => {
    const a = extendBlockHashes([], ["a", "b", "c", "d", "e"], 2);
    assert.equal(a.length, 2, "only full blocks");
    assert.equal(a[1], blockHash(a[0], ["c", "d"]));
    const b = extendBlockHashes([], ["x", "y", "c", "d"], 2);
    assert.notEqual(b[1], a[1], "same tokens after another prefix hash differently");
  });

  it("counts held blocks as usage, cached free ones as free, and evicts least recently freed first", () => {
    const pool = new BlockPool(4);
    const [x, y] = pool.allocate(2);
    pool.register(x, "x");
    pool.register(y, "y");
    assert.equal(pool.usage, 0.5);
    pool.release([x, y]); // y freed first: the tail goes first
    assert.equal(pool.usage, 0);
    assert.equal(pool.lookup(["x", "y"], 2).length, 2, "still cached");
    pool.allocate(3);
    assert.deepEqual(pool.lookup(["x", "y"], 2), [x], "y was evicted, x kept");
    assert.equal(pool.evictions, 1);
  });
});

describe("simulator engine model (virtual clock)", () => {
  it("serves a repeated prompt from the prefix cache: counters in tokens, TTFT of the uncached rest", () => {
    const { engine, drain } = virtual();
    const p = prompt("sys", 200);
    const first = engine.submit(p, 1);
    drain();
    const second = engine.submit(p, 1);
    drain();
    // 200 tokens: 12 full blocks of 16 are cached; the last block is recomputed (vLLM always
    // computes the last prompt token to sample from).
    assert.equal(first.cachedTokens, 0);
    assert.equal(second.cachedTokens, 192);
    assert.equal(ttft(first), 10 + 200, "step + 200 uncached tokens at 1 ms");
    assert.equal(ttft(second), 10 + 8, "step + 8 uncached tokens");
    const s = engine.stats();
    assert.equal(s.prefixCacheQueries, 400);
    assert.equal(s.prefixCacheHits, 192);
  });

  it("reuses an earlier turn's blocks, its generated tokens included, in the next turn", () => {
    const { engine, drain } = virtual();
    const turn1 = [
      { role: "system", content: "You are a careful assistant. ".repeat(30) },
      { role: "user", content: "Tell me about foxes." },
    ];
    const t1 = promptTokens({ messages: turn1 });
    const r1 = engine.submit(t1, 40);
    drain();
    const reply = GENERATED.slice(0, 10).join("").repeat(4);
    const t2 = promptTokens({
      messages: [
        ...turn1,
        { role: "assistant", content: reply },
        { role: "user", content: "And?" },
      ],
    });
    const r2 = engine.submit(t2, 1);
    drain();
    assert.equal(r1.generated, 40);
    // Turn 1 left its prompt and 39 computed output tokens in full blocks.
    assert.equal(r2.cachedTokens, Math.floor((t1.length + 39) / 16) * 16);
    assert.ok(r2.cachedTokens! > t1.length, "the reply's blocks too");
    assert.equal(ttft(r2), 10 + (t2.length - r2.cachedTokens!));
  });

  it("evicts the least recently used blocks at capacity", () => {
    // 8 blocks of 4 tokens; a 9-token prompt holds 3 blocks and leaves 2 full ones cached.
    const { engine, drain } = virtual({ blockSize: 4, numGpuBlocks: 8 });
    const run = (p: string[]) => {
      const r = engine.submit(p, 1);
      drain();
      return r.cachedTokens;
    };
    const [a, b, c, d] = ["a", "b", "c", "d"].map((t) => prompt(t, 9));
    run(a);
    run(b);
    run(c);
    assert.equal(run(a), 8, "a is cached, and now the most recently used");
    run(d); // needs 3 blocks: 2 empty, then evicts b's tail (least recently freed)
    assert.equal(engine.stats().evictions, 1);
    assert.equal(run(a), 8, "a survived");
    assert.equal(run(b), 4, "b lost its second block");
  });

  it("never evicts a running request's blocks", () => {
    // 16 blocks of 4 tokens: the long request holds 3 to 8 of them while others churn through.
    const { engine, drain, step } = virtual({ blockSize: 4, numGpuBlocks: 16 });
    const pinned = engine.submit(prompt("p", 9), 20);
    step();
    for (let i = 0; i < 10; i++) engine.submit(prompt(`churn${i}-`, 9), 1);
    for (let i = 0; i < 5; i++) step();
    assert.ok(engine.stats().evictions > 5, `${engine.stats().evictions} evictions`);
    assert.ok(pinned.generated < 20, "still running");
    const again = engine.submit(prompt("p", 9), 1);
    step();
    assert.equal(again.cachedTokens, 8, "the running request's blocks were not evicted");
    drain();
    assert.equal(pinned.generated, 20);
  });

  it("queues beyond maxNumSeqs in FIFO order; time to first token grows with the queue", () => {
    const { engine, step, drain } = virtual({ maxNumSeqs: 2 });
    const requests = ["a", "b", "c", "d", "e"].map((t) => engine.submit(prompt(t, 32), 8));
    step();
    assert.deepEqual(
      [engine.stats().running, engine.stats().waiting],
      [2, 3],
      "two run, three wait",
    );
    drain();
    const times = requests.map(ttft);
    for (let i = 1; i < times.length; i++) assert.ok(times[i] >= times[i - 1], `${times}`);
    assert.ok(times[4] > 3 * times[0], `${times}`);
    assert.deepEqual([engine.stats().running, engine.stats().waiting], [0, 0]);
  });

  it("charges a step for prefill tokens and decoding sequences: a busy engine slows every sequence", () => {
    const { engine, step, drain } = virtual();
    const solo = engine.submit(prompt("solo", 16), 3);
    step();
    assert.equal(step()!.ms, 10 + 1, "one decoding sequence");
    drain();
    assert.equal(solo.generated, 3);
    const batch = Array.from({ length: 8 }, (_, i) => engine.submit(prompt(`b${i}`, 16), 3));
    assert.equal(step()!.ms, 10 + 8 * 16, "eight prompts prefilled together");
    assert.equal(step()!.ms, 10 + 8, "eight decoding sequences");
    drain();
    assert.ok(batch.every((r) => r.generated === 3));
  });

  it("chunks a long prompt by maxNumBatchedTokens while running sequences keep decoding", () => {
    const { engine, step, drain } = virtual({ maxNumBatchedTokens: 64 });
    const running = engine.submit(prompt("r", 8), 100);
    step();
    const long = engine.submit(prompt("long", 200), 1);
    const before = running.generated;
    let steps = 0;
    while (long.generated === 0) {
      step();
      steps++;
    }
    // 63 prompt tokens a step beside the one decode: 200 tokens take 4 steps.
    assert.equal(steps, 4);
    assert.equal(running.generated - before, 4, "a token every step");
    running.abort();
    drain();
    assert.equal(engine.stats().kvCacheUsage, 0);
  });

  it("preempts the last admitted sequence when blocks run out, and recomputes it later", () => {
    // 6 blocks of 4 tokens; two sequences growing to 20 tokens need 5 blocks each.
    const { engine, drain } = virtual({ blockSize: 4, numGpuBlocks: 6 });
    const a = engine.submit(prompt("a", 8), 12);
    const b = engine.submit(prompt("b", 8), 12);
    drain();
    assert.ok(engine.stats().preemptions > 0);
    assert.deepEqual([a.generated, b.generated], [12, 12]);
    assert.equal(engine.stats().prefixCacheQueries, 16, "a recomputation is not a new query");
    assert.equal(engine.stats().kvCacheUsage, 0);
  });

  it("reports KV-cache usage in [0, 1]: held blocks only, none when idle", () => {
    const { engine, step, drain } = virtual({ blockSize: 16, numGpuBlocks: 64 });
    const requests = Array.from({ length: 6 }, (_, i) => engine.submit(prompt(`u${i}`, 150), 20));
    let peak = 0;
    while (step()) {
      const u = engine.stats().kvCacheUsage;
      assert.ok(u >= 0 && u <= 1, `usage ${u}`);
      peak = Math.max(peak, u);
    }
    drain();
    assert.ok(peak > 0.5, `peak ${peak}`);
    assert.ok(requests.every((r) => r.generated === 20));
    assert.equal(engine.stats().kvCacheUsage, 0, "cached blocks no request holds are free");
  });

  it("rejects parameters vLLM would not start with", () => {
    assert.throws(() => new Engine({ maxNumSeqs: 0 }), /engine maxNumSeqs must be an integer > 0/);
    assert.throws(() => new Engine({ prefillTokensPerSecond: 0 }), /must be a number > 0/);
    assert.throws(() => new Engine({ stepMs: -1 }), /must be a number >= 0/);
    // kv_cache_utils.check_enough_kv_cache_memory: one max-length sequence must fit.
    assert.throws(
      () => engineParameters({ numGpuBlocks: 100 }, 8192),
      /max model len 8192 needs 512 KV-cache blocks of 16 tokens, more than the 100 blocks/,
    );
    assert.equal(engineParameters({}, 65536).numGpuBlocks, 4096, "sized for max_model_len");
    assert.equal(engineParameters({}, 2048).numGpuBlocks, 2048);
    // A sequence larger than the cache could only preempt itself forever.
    assert.throws(
      () => new Engine({ blockSize: 4, numGpuBlocks: 4 }).submit(prompt("x", 10), 7),
      /a sequence of 10 \+ 7 tokens needs 5 KV-cache blocks; the cache has 4/,
    );
  });
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses Prometheus' text exposition format 0.0.4 strictly: HELP and TYPE before a family's
 * samples, valid names and label syntax, numeric values, histograms with cumulative buckets
 * ending at +Inf = _count. Returns each family's type and samples.
 */
function parseExposition(text: string): Map<string, { type: string; samples: Sample[] }> {
  const families = new Map<string, { type: string; samples: Sample[] }>();
  const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
  const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
  let current: string | undefined;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = new RegExp(`^# (HELP|TYPE) (${NAME}) (.+)$`).exec(line);
    if (meta) {
      if (meta[1] === "TYPE") {
        assert.ok(!families.has(meta[2]), `TYPE twice for ${meta[2]}`);
        assert.match(meta[3], /^(counter|gauge|histogram|summary|untyped)$/);
        families.set(meta[2], { type: meta[3], samples: [] });
        current = meta[2];
      }
      continue;
    }
    const m = SAMPLE.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const [, name, body = "", value] = m;
    const labels: Record<string, string> = {};
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const l = LABEL.exec(body);
      assert.ok(l, `bad labels in: ${line}`);
      labels[l[1]] = l[2];
    }
    const family = families.get(current ?? "");
    const suffixes = family?.type === "histogram" ? ["_bucket", "_sum", "_count"] : [""];
    assert.ok(
      family && suffixes.some((s) => name === `${current}${s}`),
      `${name} outside its family's TYPE`,
    );
    assert.ok(!Number.isNaN(Number(value)) || /^[+-]Inf$/.test(value), `value of ${line}`);
    family.samples.push({ name, labels, value: Number(value) });
  }
  for (const [name, f] of families) {
    if (f.type !== "histogram") continue;
    const buckets = f.samples.filter((s) => s.name.endsWith("_bucket"));
    buckets.forEach((b, i) => assert.ok(i === 0 || b.value >= buckets[i - 1].value, name));
    assert.equal(buckets.at(-1)?.labels.le, "+Inf", name);
    assert.equal(buckets.at(-1)?.value, f.samples.find((s) => s.name === `${name}_count`)?.value);
  }
  return families;
}

describe("simulator engine model over HTTP", () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({
      port: 0,
      model: "m",
      // Slow prefill, fast decode: a cache hit is plain in time to first token.
      engine: { prefillTokensPerSecond: 2000, stepMs: 2, decodeMsPerSeq: 0.1, maxNumSeqs: 1 },
    });
  });
  after(() => sim.close());

  /** Streams a chat completion; resolves with its time to first token (ms) and token count. */
  async function chat(messages: object[], maxTokens: number) {
    const started = performance.now();
    const res = await fetch(`${sim.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages, max_tokens: maxTokens, stream: true }),
    });
    assert.equal(res.status, 200);
    let first: number | undefined;
    let text = "";
    for await (const chunk of res.body!) {
      text += Buffer.from(chunk).toString();
      if (first === undefined && text.includes('"content":"The"')) first = performance.now();
    }
    assert.ok(text.endsWith("data: [DONE]\n\n"));
    return { ttftMs: first! - started };
  }

  const metric = async (name: string) => {
    const families = parseExposition(await (await fetch(`${sim.url}/metrics`)).text());
    return families.get(name)!.samples[0].value;
  };

  it("answers a repeated long prompt from the prefix cache: hit counters and a faster first token", async () => {
    const messages = [
      { role: "system", content: "Answer in the style of a ship's log. ".repeat(60) },
    ];
    const tokens = promptTokens({ messages }).length;
    const cold = await chat(messages, 2);
    const warm = await chat(messages, 2);
    assert.equal(await metric("vllm:prefix_cache_queries_total"), 2 * tokens);
    assert.equal(await metric("vllm:prefix_cache_hits_total"), Math.floor((tokens - 1) / 16) * 16);
    // Cold: ~tokens/2 ms of prefill (>= 250 ms); warm: under 16 tokens (~10 ms).
    assert.ok(warm.ttftMs < cold.ttftMs / 3, `cold ${cold.ttftMs} ms, warm ${warm.ttftMs} ms`);
  });

  it("queues requests beyond max-num-seqs: the waiting gauge rises and later requests wait longer", async () => {
    const user = (i: number) => [{ role: "user", content: `question ${i}` }];
    const runs = [0, 1, 2].map((i) => chat(user(i), 60));
    await eventually(
      "a waiting request",
      async () => (await metric("vllm:num_requests_waiting")) > 0,
    );
    assert.equal(await metric("vllm:num_requests_running"), 1);
    const [a, , c] = await Promise.all(runs);
    // The third waits for two 60-token requests (~60 steps of 2 ms each).
    assert.ok(c.ttftMs > a.ttftMs + 100, `first ${a.ttftMs} ms, third ${c.ttftMs} ms`);
    assert.equal(await metric("vllm:num_requests_waiting"), 0);
  });

  it("exposes vLLM's metrics in a valid exposition: names, types, model_name and engine labels", async () => {
    const families = parseExposition(await (await fetch(`${sim.url}/metrics`)).text());
    const types: Record<string, string> = {
      "vllm:num_requests_running": "gauge",
      "vllm:num_requests_waiting": "gauge",
      "vllm:kv_cache_usage_perc": "gauge",
      "vllm:gpu_cache_usage_perc": "gauge",
      "vllm:prefix_cache_queries_total": "counter",
      "vllm:prefix_cache_hits_total": "counter",
      "vllm:num_preemptions_total": "counter",
      "vllm:prompt_tokens_total": "counter",
      "vllm:generation_tokens_total": "counter",
      "vllm:request_success_total": "counter",
      "vllm:time_to_first_token_seconds": "histogram",
      "vllm:e2e_request_latency_seconds": "histogram",
    };
    for (const [name, type] of Object.entries(types))
      assert.equal(families.get(name)?.type, type, name);
    for (const name of Object.values(VLLM_METRICS))
      assert.ok(families.has(name), `${name}, as dashboards read it`);
    for (const f of families.values()) {
      for (const s of f.samples)
        assert.deepEqual([s.labels.model_name, s.labels.engine], ["m", "0"]);
    }
    const usage = families.get("vllm:kv_cache_usage_perc")!.samples[0].value;
    assert.ok(usage >= 0 && usage <= 1);
    const success = families.get("vllm:request_success_total")!.samples;
    assert.deepEqual(
      success.map((s) => s.labels.finished_reason),
      ["stop", "length", "abort"],
    );
    assert.equal(success[1].value, 5, "every request so far ended at max_tokens");
    assert.equal(families.get("vllm:time_to_first_token_seconds")!.samples.at(-1)!.value, 5);
    assert.deepEqual(
      sim.stats().engine && [sim.stats().engine!.running, sim.stats().engine!.waiting],
      [0, 0],
    );
  });

  it("keeps prompt and output within max_model_len, rejecting a prompt that alone reaches it", async () => {
    const small = await startSimulator({ port: 0, model: "s", maxModelLen: 64, engine: {} });
    try {
      const post = (prompt: string) =>
        fetch(`${small.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "s", prompt, max_tokens: 100 }),
        });
      const words = (n: number) => Array<string>(n).fill("word").join(" ");
      const long = await post(words(64));
      assert.equal(long.status, 400);
      assert.match(
        ((await long.json()) as { error: { message: string } }).error.message,
        /maximum context length is 64 tokens\. However, your request has 64 input tokens/,
      );
      const ok = (await (await post(words(50))).json()) as {
        usage: { prompt_tokens: number; completion_tokens: number };
      };
      assert.deepEqual(ok.usage.prompt_tokens + ok.usage.completion_tokens, 64);
    } finally {
      await small.close();
    }
  });
});
