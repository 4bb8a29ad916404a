// The benchmark's own parts: its targets must catch misses, the bare proxy it measures the
// router against must really proxy, the throughput rounds must account requests and CPU per
// side, the routing benchmark's kube-proxy stand-in, replicas and workload must be what they
// claim, a short `--routing` run must print its table and JSON line, and the command must have
// --help and reject bad options with the usage exit code.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import * as http from "node:http";
import { target } from "../bench/load";
import {
  Child,
  startBareProxyProcess,
  startKubeProxyProcess,
  startReplicaProcess,
  startSimulatorProcess,
} from "../bench/processes";
import { counterSum } from "../bench/routing";
import { DEFAULT_FIGURES, missedTargets, ROUTING_FIGURES, TargetedFigures } from "../bench/targets";
import { buildWorkload } from "../bench/workload";
import { throughput } from "../bench/throughput";
import { freePort } from "./support/services";
import { EXIT, EXIT_HELP } from "../scripts/lib/cli";

const ROOT = path.resolve(__dirname, "..");

async function bench(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ["-r", "ts-node/register/transpile-only", "bench/index.ts", ...args],
      { cwd: ROOT },
    );
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}

describe("bench targets", () => {
  // One run's figures (seen on the 2-core development machine), all within their targets.
  const met: TargetedFigures = {
    added_p50_us: 214,
    added_p99_us: 963,
    router_vs_bare_proxy: 0.858,
    router_cpu_vs_bare_proxy: 1.338,
    propagation_p99_ms: 25,
    rss_mb_1000_streams: 95.8,
    rss_mb_memory_attacks: 120,
    ttft_p90_gain: 4.1,
    throughput_gain: 1.6,
    least_loaded_ttft_p90_gain: 1.1,
    affinity_two_routers: 0.95,
    added_p50_us_delta: 12,
    added_p99_vs_bare_proxy: 1.2,
  };

  it("passes a run whose figures are within every target", () => {
    assert.deepEqual(missedTargets(met), []);
  });

  it("names each figure past its bound, upper and lower bounds alike", () => {
    assert.deepEqual(missedTargets({ ...met, added_p99_us: 2001, router_vs_bare_proxy: 0.49 }), [
      "added_p99_us",
      "router_vs_bare_proxy",
    ]);
    assert.deepEqual(missedTargets({ ...met, router_cpu_vs_bare_proxy: 2.01 }), [
      "router_cpu_vs_bare_proxy",
    ]);
  });

  it("bounds the router's RSS under the memory attacks, and checks only that row with --memory-only", () => {
    assert.deepEqual(missedTargets({ ...met, rss_mb_memory_attacks: 257 }), [
      "rss_mb_memory_attacks",
    ]);
    assert.deepEqual(missedTargets({ rss_mb_memory_attacks: 120 }, ["rss_mb_memory_attacks"]), []);
    assert.deepEqual(missedTargets({ rss_mb_memory_attacks: 300 }, ["rss_mb_memory_attacks"]), [
      "rss_mb_memory_attacks",
    ]);
    // A partial run without `only` misses everything it did not measure.
    assert.equal(missedTargets({ rss_mb_memory_attacks: 120 }).length, 12);
  });

  it("checks the routing run's figures against the routing targets only, and the default run's against the rest", () => {
    const routing = Object.fromEntries(ROUTING_FIGURES.map((k) => [k, met[k]]));
    assert.deepEqual(missedTargets(routing, ROUTING_FIGURES), []);
    assert.deepEqual(
      missedTargets(
        { ...routing, ttft_p90_gain: 1.9, affinity_two_routers: 0.89 },
        ROUTING_FIGURES,
      ),
      ["ttft_p90_gain", "affinity_two_routers"],
    );
    assert.deepEqual(
      missedTargets(
        { ...routing, throughput_gain: 1.49, least_loaded_ttft_p90_gain: 0.99 },
        ROUTING_FIGURES,
      ),
      ["throughput_gain", "least_loaded_ttft_p90_gain"],
    );
    assert.deepEqual(
      missedTargets(
        { ...routing, added_p50_us_delta: 51, added_p99_vs_bare_proxy: 2.01 },
        ROUTING_FIGURES,
      ),
      ["added_p50_us_delta", "added_p99_vs_bare_proxy"],
    );
    assert.deepEqual(
      [...DEFAULT_FIGURES, ...ROUTING_FIGURES].sort(),
      Object.keys(met).sort(),
      "every target belongs to exactly one run",
    );
    assert.deepEqual(missedTargets(met, DEFAULT_FIGURES), []);
  });

  it("counts a figure that was not measured (NaN, Infinity) as missed, never as met", () => {
    assert.deepEqual(missedTargets({ ...met, router_cpu_vs_bare_proxy: Infinity }), [
      "router_cpu_vs_bare_proxy",
    ]);
    assert.deepEqual(missedTargets({ ...met, propagation_p99_ms: NaN }), ["propagation_p99_ms"]);
  });
});

describe("bench", () => {
  let sim: Child;
  let bare: Child;

  before(async () => {
    sim = await startSimulatorProcess("fast", await freePort(), 0, 0);
    bare = await startBareProxyProcess(await freePort(), sim.url);
  });
  after(async () => {
    await Promise.all([bare?.stop(), sim?.stop()]);
  });

  it("has a bare proxy that passes completions and streams through unchanged", async () => {
    const post = async (base: string, body: object) => {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
    };
    const body = { model: "fast", messages: [{ role: "user", content: "hi" }], max_tokens: 4 };
    const direct = await post(sim.url, body);
    const proxied = await post(bare.url, body);
    assert.equal(proxied.status, 200);
    assert.equal(proxied.type, direct.type);
    const content = (t: string) =>
      (JSON.parse(t) as { choices: { message: { content: string } }[] }).choices[0].message.content;
    assert.equal(content(proxied.text), content(direct.text));
    const stream = await post(bare.url, { ...body, stream: true });
    assert.equal(stream.status, 200);
    assert.match(stream.type ?? "", /^text\/event-stream/);
    assert.match(stream.text, /data: \[DONE\]\n\n$/);
  });

  it("measures every side in rotating rounds, with CPU per request of the processes involved", async () => {
    const completion = JSON.stringify({ model: "fast", prompt: "x", max_tokens: 4 });
    const r = await throughput(
      [
        { name: "direct", target: target(sim.url, 8) },
        { name: "bare", target: target(bare.url, 8), proxyPid: bare.child.pid },
      ],
      sim.child.pid!,
      "/v1/completions",
      completion,
      8,
      1000,
      2,
    );
    assert.deepEqual(Object.keys(r).sort(), ["bare", "direct"]);
    for (const side of [r.direct, r.bare]) {
      assert.ok(side.rps > 0);
      assert.ok(side.cpuUs.generator > 0, "the load generator's CPU is counted");
      assert.ok(side.cpuUs.simulator > 0, "the simulator's CPU is counted");
    }
    assert.equal(r.direct.cpuUs.proxy, 0, "direct calls have no proxy");
    assert.ok(r.bare.cpuUs.proxy > 0, "the bare proxy's CPU is counted");
  });

  it("fails the run when requests fail, instead of reporting their speed", async () => {
    const body = JSON.stringify({ model: "no-such-model", prompt: "x", max_tokens: 1 });
    await assert.rejects(
      throughput(
        [{ name: "direct", target: target(sim.url, 2) }],
        sim.child.pid!,
        "/v1/completions",
        body,
        2,
        4,
        1,
      ),
      /4 requests failed during the throughput runs on \/v1\/completions/,
    );
  });

  it("runs as `npm run bench` with --help and the exit codes, and rejects a bad option with exit code 2", async () => {
    const help = await bench("--help");
    assert.equal(help.code, 0);
    assert.match(help.out, /--rounds <n>/);
    assert.match(help.out, /--routing +run the routing benchmark instead/);
    assert.match(help.out, /--routing-seconds <n>/);
    assert.match(help.out, /ttft_p90_gain >= 2, throughput_gain >= 1.5/);
    assert.match(
      help.out,
      /added_p50_us <= 500, added_p99_us <= 2000, router_vs_bare_proxy >= 0.5/,
    );
    assert.ok(help.out.includes(EXIT_HELP), help.out);
    const bad = await bench("--rounds", "0");
    assert.equal(bad.code, EXIT.usage);
    assert.match(bad.out, /--rounds must be an integer >= 1/);
  });
});

describe("bench --routing parts", () => {
  /** A server answering each request with its name, standing for one pod. */
  const named = (name: string) =>
    new Promise<{ server: http.Server; address: string }>((resolve) => {
      const server = http.createServer((_req, res) => res.end(name));
      server.listen(0, "127.0.0.1", () =>
        resolve({ server, address: `127.0.0.1:${(server.address() as { port: number }).port}` }),
      );
    });

  it("has a kube-proxy stand-in that picks a random backend per connection, never per request (iptables mode)", async () => {
    const pods = await Promise.all(["a", "b", "c"].map(named));
    const proxy = await startKubeProxyProcess(
      await freePort(),
      pods.map((p) => p.address),
      7,
    );
    try {
      const get = (agent: http.Agent) =>
        new Promise<string>((resolve, reject) => {
          http
            .get(`${proxy.url}/`, { agent }, (res) => {
              let text = "";
              res.on("data", (d: Buffer) => (text += d.toString()));
              res.on("end", () => resolve(text));
            })
            .once("error", reject);
        });
      // One keep-alive connection: every request on it reaches the same pod.
      const kept = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const onOne = new Set<string>();
      for (let i = 0; i < 20; i++) onOne.add(await get(kept));
      kept.destroy();
      assert.equal(onOne.size, 1, `one connection went to ${[...onOne].join(", ")}`);
      // A connection per request: the choices spread over every pod.
      const fresh = new http.Agent({ keepAlive: false });
      const counts = new Map<string, number>();
      for (let i = 0; i < 60; i++) {
        const pod = await get(fresh);
        counts.set(pod, (counts.get(pod) ?? 0) + 1);
      }
      assert.deepEqual([...counts.keys()].sort(), ["a", "b", "c"]);
      for (const n of counts.values()) assert.ok(n >= 8, `uneven spread: ${[...counts]}`);
    } finally {
      await proxy.stop();
      for (const p of pods) p.server.close();
    }
  });

  it("has replicas that model the engine and log each request's x-request-id", async () => {
    const served: string[] = [];
    const replica = await startReplicaProcess("m", await freePort(), (id) => served.push(id));
    try {
      const res = await fetch(`${replica.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": "turn-1" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(res.status, 200);
      await res.text();
      const metrics = await fetch(`${replica.url}/metrics`).then((r) => r.text());
      // The engine's counters, which only the engine model reports.
      assert.ok(counterSum(metrics, "vllm:prefix_cache_queries_total") > 0, metrics);
      for (let i = 0; i < 50 && !served.length; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(served, ["turn-1"]);
    } finally {
      await replica.stop();
    }
  });

  it("sums a counter's series in Prometheus text, and nothing of a longer name", () => {
    const text = [
      "# TYPE vllm:prefix_cache_hits_total counter",
      'vllm:prefix_cache_hits_total{engine="0",model_name="a"} 10',
      'vllm:prefix_cache_hits_total{engine="1",model_name="a"} 5.5',
      'vllm:prefix_cache_hits_total_other{engine="0"} 100',
      "vllm:prefix_cache_queries_total 7",
    ].join("\n");
    assert.equal(counterSum(text, "vllm:prefix_cache_hits_total"), 15.5);
    assert.equal(counterSum(text, "vllm:prefix_cache_queries_total"), 7);
  });

  it("builds the same seeded workload every time: Poisson arrivals at the rate, distinct long system prompts", () => {
    const o = {
      seed: 3,
      systemPrompts: 4,
      systemPromptWords: 500,
      rate: 10,
      seconds: 30,
      turns: 3,
      userWords: 10,
      maxTokens: 8,
      thinkMs: 100,
    };
    const w = buildWorkload(o);
    assert.deepEqual(buildWorkload(o), w);
    assert.notDeepEqual(buildWorkload({ ...o, seed: 4 }), w);
    const n = w.conversations.length;
    assert.ok(n > 240 && n < 360, `${n} conversations for 300 expected`);
    assert.ok(
      w.conversations.every((c, i) => i === 0 || c.startMs >= w.conversations[i - 1].startMs),
    );
    assert.ok(w.conversations.every((c) => c.startMs < 30000 && c.users.length === 3));
    // Each prompt differs from its first words on, so no two share a cached block.
    assert.equal(new Set(w.systemPrompts.map((p) => p.slice(0, 20))).size, 4);
    assert.ok(w.systemPrompts.every((p) => p.split(" ").length > 500));
    assert.equal(new Set(w.conversations.map((c) => c.system)).size, 4);
  });

  it("runs a short --routing benchmark: the table for every mode and one JSON line of sane figures", async function () {
    this.timeout(240000);
    const run = await bench(
      "--routing",
      "--routing-seconds",
      "4",
      "--routing-rate",
      "2",
      "--requests",
      "50",
    );
    assert.equal(run.code, EXIT.ok, run.out);
    const lines = run.out.trim().split("\n");
    for (const mode of ["service", "least-loaded", "scored", "scored, 2 routers"])
      assert.ok(
        lines.some((l) => l.startsWith(`${mode} `) && / s +\d+\.\d\d s +\d+ tok\/s$/.test(l)),
        `no table row for ${mode}:\n${run.out}`,
      );
    const figures = JSON.parse(lines[lines.length - 1]) as Record<string, number>;
    for (const k of ROUTING_FIGURES) assert.ok(Number.isFinite(figures[k]), `${k}: ${figures[k]}`);
    for (const k of ["ttft_p90_gain", "throughput_gain", "least_loaded_ttft_p90_gain"])
      assert.ok(figures[k] > 0, `${k}: ${figures[k]}`);
    assert.ok(figures.affinity_two_routers >= 0 && figures.affinity_two_routers <= 1);
    for (const mode of ["service", "least_loaded", "scored", "scored_2_routers"]) {
      assert.ok(figures[`${mode}_ttft_p90_ms`] > 0, `${mode} TTFT`);
      assert.ok(figures[`${mode}_tokens_per_second`] > 0, `${mode} throughput`);
      const hits = figures[`${mode}_prefix_hit_rate`];
      assert.ok(hits >= 0 && hits <= 1, `${mode} prefix hit rate ${hits}`);
    }
    // Timing at concurrency 1 over 50 requests on a shared machine: measured, not bounded.
    for (const k of ["added_p50_us_service", "added_p99_us_scored", "added_p99_us_bare_proxy"])
      assert.ok(Number.isFinite(figures[k]), `${k}: ${figures[k]}`);
  });
});
