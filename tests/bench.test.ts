// The benchmark's own parts: its targets must catch misses, the bare proxy it measures the
// router against must really proxy, the throughput rounds must account requests and CPU per
// side, and the command must have --help and reject bad options with the usage exit code.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { target } from "../bench/load";
import { Child, startBareProxyProcess, startSimulatorProcess } from "../bench/processes";
import { missedTargets, TargetedFigures } from "../bench/targets";
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
    assert.equal(missedTargets({ rss_mb_memory_attacks: 120 }).length, 6);
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
