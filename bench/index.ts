// `npm run bench`: the router's overhead against direct calls to the same simulator, measured
// in one run (latency and time to first byte at concurrency 1, throughput and CPU per request
// at 32, beside a bare Node.js proxy as the floor any proxy pays), registry propagation (a CLI
// `disable` until two routers deny), memory with 1,000 open streams, and memory under attack
// (unique long and unknown model names sprayed, uploads stalled mid-body; `--memory-only` runs
// just that section). `--routing` runs the routing benchmark instead (bench/routing.ts):
// Service-style spreading, least-loaded and scored routing on four simulated replicas.
// Prints a table; the last line is one JSON object with the headline figures.
import * as http from "node:http";
import { Command, InvalidArgumentError } from "commander";
import { Client, Pool } from "pg";
import { migrate, REGISTRY_CHANNEL, upsertEntry } from "@vllm-fleet/registry";
import { ROUTER_ENV } from "@vllm-fleet/router/contract";
import { EXIT, EXIT_HELP } from "../scripts/lib/cli";
import { freePort, startPostgres, startRedis } from "../tests/support/services";
import { closedLoop, percentile, target, Target, timedPost } from "./load";
import { memoryAttacks, MemoryAttackOptions } from "./memory";
import {
  buildRouter,
  Child,
  registryCli,
  rssMb,
  startBareProxyProcess,
  startRouterProcess,
  startSimulatorProcess,
} from "./processes";
import { routingBench } from "./routing";
import {
  DefaultFigures,
  DEFAULT_FIGURES,
  describeTargets,
  missedTargets,
  ROUTING_FIGURES,
  TargetedFigures,
} from "./targets";
import { Side, SideResult, throughput } from "./throughput";

const ENV = "development";

interface Options {
  requests: number;
  throughputRequests: number;
  rounds: number;
  iterations: number;
  streams: number;
  check: boolean;
  memoryOnly: boolean;
  routing: boolean;
  routingSeconds: number;
  routingRate: number;
  seed: number;
}

/** The attacks of the memory row: what the router must survive without a key. */
const ATTACKS: MemoryAttackOptions = { longNames: 400, unknownNames: 5000, stalledUploads: 200 };

function positiveInt(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag} must be an integer >= 1`);
    return n;
  };
}

const log = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function latency(direct: Target, routed: Target, path: string, body: string, n: number) {
  const d: { totalUs: number; firstByteUs: number }[] = [];
  const r: { totalUs: number; firstByteUs: number }[] = [];
  for (let i = 0; i < n + n / 10; i++) {
    // Interleaved, so drift (GC, CPU frequency, other load) hits both sides alike.
    const a = await timedPost(direct, path, body);
    const b = await timedPost(routed, path, body);
    if (a.status !== 200 || b.status !== 200)
      throw new Error(`unexpected status ${a.status}/${b.status} on ${path}`);
    if (i >= n / 10) {
      d.push(a);
      r.push(b);
    }
  }
  const stat = (xs: { totalUs: number; firstByteUs: number }[], k: "totalUs" | "firstByteUs") => ({
    p50: percentile(
      xs.map((x) => x[k]),
      50,
    ),
    p99: percentile(
      xs.map((x) => x[k]),
      99,
    ),
  });
  return {
    direct: stat(d, "totalUs"),
    routed: stat(r, "totalUs"),
    directTtfb: stat(d, "firstByteUs"),
    routedTtfb: stat(r, "firstByteUs"),
  };
}

/** Table rows for one throughput measure: router and bare proxy, each against direct. */
function throughputRows(
  measure: string,
  r: Record<string, SideResult>,
): [string, string, string, string][] {
  const ratio = (x: number) => `ratio ${(x / r.direct.rps).toFixed(2)}`;
  return [
    [measure, r.direct.rps.toFixed(0), r.router.rps.toFixed(0), ratio(r.router.rps)],
    [`${measure}, bare proxy`, r.direct.rps.toFixed(0), r.bare.rps.toFixed(0), ratio(r.bare.rps)],
  ];
}

async function status(url: string, model: string): Promise<number> {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: "x", max_tokens: 1 }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function waitAll(
  urls: string[],
  model: string,
  want: number,
  deadlineMs: number,
): Promise<number> {
  const start = Date.now();
  const pending = new Set(urls);
  while (pending.size) {
    for (const u of [...pending]) if ((await status(u, model)) === want) pending.delete(u);
    if (Date.now() - start > deadlineMs)
      throw new Error(`routers did not answer ${want} within ${deadlineMs} ms`);
  }
  return Date.now();
}

/** Disable through the CLI; time from the commit (our own LISTEN sees it) until both routers deny. */
async function propagation(
  routers: string[],
  env: Record<string, string>,
  iterations: number,
): Promise<number[]> {
  const listener = new Client({ connectionString: env.DATABASE_URL });
  await listener.connect();
  await listener.query(`LISTEN ${REGISTRY_CHANNEL}`);
  const samples: number[] = [];
  try {
    for (let i = 0; i < iterations; i++) {
      await waitAll(routers, "prop", 200, 10000);
      const committed = new Promise<number>((r) =>
        listener.once("notification", () => r(Date.now())),
      );
      const denied = (async () => {
        // Poll from before the CLI starts, so a fast propagation is never missed.
        const cli = registryCli(
          ["disable", "--model-name", "prop", "--environment", ENV, "--reason", "bench"],
          env,
        );
        const t0 = await committed;
        const t1 = await waitAll(routers, "prop", 403, 10000);
        await cli;
        return t1 - t0;
      })();
      samples.push(await denied);
      await registryCli(["enable", "--model-name", "prop", "--environment", ENV], env);
      process.stdout.write(".");
    }
  } finally {
    process.stdout.write("\n");
    await listener.end();
  }
  return samples;
}

/** Opens `n` slow streams through the router, measures its RSS once all are flowing, then closes them. */
async function streamsRss(router: Child, n: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const url = new URL(router.url);
  const body = JSON.stringify({ model: "slow", prompt: "x", max_tokens: 600, stream: true });
  const requests: http.ClientRequest[] = [];
  let flowing = 0;
  await new Promise<void>((resolve, reject) => {
    for (let i = 0; i < n; i++) {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: "/v1/completions",
          method: "POST",
          agent,
          headers: { "content-type": "application/json" },
        },
        (res) => {
          if (res.statusCode !== 200) reject(new Error(`stream ${i} answered ${res.statusCode}`));
          res.once("data", () => {
            if (++flowing === n) resolve();
          });
          res.resume();
        },
      );
      req.on("error", () => undefined);
      req.end(body);
      requests.push(req);
    }
    setTimeout(
      () => reject(new Error(`only ${flowing}/${n} streams flowing after 60 s`)),
      60000,
    ).unref();
  });
  await sleep(2000); // a few tokens through every stream
  const mb = await rssMb(router.child.pid!);
  for (const r of requests) r.destroy();
  agent.destroy();
  return mb;
}

async function main(argv: string[]): Promise<number> {
  const program = new Command("bench")
    .description(
      "Router overhead vs direct calls to a vLLM simulator, registry propagation, memory with open streams; with --routing, endpoint-aware routing vs Service-style spreading (loopback only)",
    )
    .option(
      "--requests <n>",
      "timed requests per side at concurrency 1",
      positiveInt("--requests"),
      2000,
    )
    .option(
      "--throughput-requests <n>",
      "requests per side at concurrency 32",
      positiveInt("--throughput-requests"),
      24000,
    )
    .option(
      "--rounds <n>",
      "rotating rounds the concurrency-32 requests are split into",
      positiveInt("--rounds"),
      4,
    )
    .option(
      "--iterations <n>",
      "disable/enable rounds for propagation",
      positiveInt("--iterations"),
      15,
    )
    .option(
      "--streams <n>",
      "slow streams held open for the memory figure",
      positiveInt("--streams"),
      1000,
    )
    .option(
      "--routing",
      "run the routing benchmark instead: Service-style spreading vs least-loaded vs scored on four simulated replicas",
      false,
    )
    .option(
      "--routing-seconds <n>",
      "seconds during which conversations start, per routing mode",
      positiveInt("--routing-seconds"),
      20,
    )
    .option(
      "--routing-rate <n>",
      "conversations starting per second in the routing benchmark",
      positiveInt("--routing-rate"),
      8,
    )
    .option("--seed <n>", "seed of the routing workload", positiveInt("--seed"), 1)
    .option("--check", "exit 4 when a target is missed", false)
    .option(
      "--memory-only",
      "run only the memory-under-attack row (and check only its target)",
      false,
    )
    .addHelpText("after", `\nTargets (see bench/targets.ts): ${describeTargets()}\n\n${EXIT_HELP}`)
    // Usage errors exit with the shared usage code (commander's own is 1).
    .exitOverride((e) => process.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage));
  program.parse(argv);
  const o = program.opts<Options>();
  const children: Child[] = [];
  const cleanup: (() => Promise<void>)[] = [];
  try {
    log(`starting PostgreSQL, Redis${o.routing ? "" : ", simulators and two routers"} ...`);
    const pg = process.env.DATABASE_URL ? undefined : await startPostgres();
    if (pg) cleanup.push(() => pg.destroy());
    const redis = process.env.REDIS_URL ? undefined : await startRedis();
    if (redis) cleanup.push(() => redis.stop());
    const env = {
      DATABASE_URL: process.env.DATABASE_URL ?? pg!.url,
      REDIS_URL: process.env.REDIS_URL ?? redis!.url,
    };
    if (o.routing) {
      await buildRouter();
      const r = await routingBench(
        {
          seconds: o.routingSeconds,
          rate: o.routingRate,
          requests: o.requests,
          seed: o.seed,
        },
        env,
        children,
      );
      return report(r.rows, r.figures, o.check, ROUTING_FIGURES, [
        "mode / measure",
        "TTFT mean",
        "TTFT p90",
        "output",
      ]);
    }
    const [fastPort, slowPort, pacedPort] = [await freePort(), await freePort(), await freePort()];
    // fast: no model time at all, so the router's own cost shows in full; paced: a small
    // model's pace (20 ms to first token, 200 tokens/s); slow: streams that stay open.
    const [fast, slow, paced] = await Promise.all([
      startSimulatorProcess("fast", fastPort, 0, 0),
      startSimulatorProcess("slow", slowPort, 0, 2),
      startSimulatorProcess("paced", pacedPort, 20, 200),
    ]);
    children.push(fast, slow, paced);
    const pool = new Pool({ connectionString: env.DATABASE_URL, max: 1 });
    await migrate(pool);
    for (const [modelName, port] of [
      ["fast", fastPort],
      ["slow", slowPort],
      ["paced", pacedPort],
      ["prop", fastPort],
    ] as const) {
      await upsertEntry(pool, {
        modelName,
        environment: ENV,
        namespace: "bench",
        endpoint: `127.0.0.1:${port}`,
        servedModelName: modelName === "prop" ? "fast" : modelName,
      });
    }
    await pool.end();
    await buildRouter();
    const routerEnv = { ...env, [ROUTER_ENV.environment]: ENV };
    // One after the other, so a router that fails to start never leaves the other running.
    const a = await startRouterProcess(await freePort(), routerEnv);
    children.push(a);
    const b = await startRouterProcess(await freePort(), routerEnv);
    children.push(b);
    // A fresh router for the attacks, so the other measures' load does not blur its memory.
    const attacked = await startRouterProcess(await freePort(), routerEnv);
    children.push(attacked);
    const attack = async () => {
      log(
        `memory under attack: ${ATTACKS.longNames} unique 1 MiB names, ${ATTACKS.unknownNames} unknown names, ${ATTACKS.stalledUploads} uploads stalled mid-body ...`,
      );
      const m = await memoryAttacks(attacked, ATTACKS);
      const row: [string, string, string, string] = [
        "router RSS idle / attacked",
        "",
        `${m.idleMb.toFixed(0)} MB`,
        `${Math.max(m.sprayPeakMb, m.uploadsPeakMb).toFixed(0)} MB`,
      ];
      log(
        `  peak RSS: names sprayed ${m.sprayPeakMb.toFixed(0)} MB, uploads stalled ${m.uploadsPeakMb.toFixed(0)} MB`,
      );
      return { row, mb: Number(Math.max(m.sprayPeakMb, m.uploadsPeakMb).toFixed(1)) };
    };
    if (o.memoryOnly) {
      const { row, mb } = await attack();
      return report([row], { rss_mb_memory_attacks: mb }, o.check, ["rss_mb_memory_attacks"]);
    }
    const bare = await startBareProxyProcess(await freePort(), fast.url);
    children.push(bare);

    log("warming up both paths (JIT, connection pools) ...");
    const warm = JSON.stringify({ model: "fast", prompt: "warm", max_tokens: 16 });
    for (const t of [fast.url, a.url, b.url, bare.url])
      await closedLoop(target(t, 8), "/v1/completions", warm, 8, 3000);
    const direct1 = target(fast.url, 1);
    const routed1 = target(a.url, 1);
    const completion = JSON.stringify({ model: "fast", prompt: "Say hello", max_tokens: 16 });
    const stream = JSON.stringify({
      model: "fast",
      messages: [{ role: "user", content: "Say hello" }],
      max_tokens: 16,
      stream: true,
    });
    log(`concurrency 1, non-streaming (${o.requests} per side) ...`);
    const plain = await latency(direct1, routed1, "/v1/completions", completion, o.requests);
    log(`concurrency 1, streaming (${o.requests} per side) ...`);
    const sse = await latency(direct1, routed1, "/v1/chat/completions", stream, o.requests);
    log(
      `concurrency 32: direct, router, bare proxy (${o.throughputRequests} per side in ${o.rounds} rotating rounds) ...`,
    );
    const sides: Side[] = [
      { name: "direct", target: target(fast.url, 32) },
      { name: "router", target: target(a.url, 32), proxyPid: a.child.pid },
      { name: "bare", target: target(bare.url, 32), proxyPid: bare.child.pid },
    ];
    const tp = await throughput(
      sides,
      fast.child.pid!,
      "/v1/completions",
      completion,
      32,
      o.throughputRequests,
      o.rounds,
    );
    const tps = await throughput(
      sides,
      fast.child.pid!,
      "/v1/chat/completions",
      stream,
      32,
      Math.ceil(o.throughputRequests / 2),
      o.rounds,
    );
    const pacedStream = stream.replace('"fast"', '"paced"');
    const paced32 = await throughput(
      [
        { name: "direct", target: target(paced.url, 32) },
        { name: "router", target: target(a.url, 32), proxyPid: a.child.pid },
      ],
      paced.child.pid!,
      "/v1/chat/completions",
      pacedStream,
      32,
      640,
      2,
    );
    log(`propagation: ${o.iterations} CLI disables, two routers `);
    const prop = await propagation([a.url, b.url], env, o.iterations);
    log(`memory: ${o.streams} slow streams through one router ...`);
    const idleRss = await rssMb(a.child.pid!);
    const rss = await streamsRss(a, o.streams);
    const underAttack = await attack();

    const us = (v: number) => `${Math.round(v)} us`;
    const added = (
      measure: string,
      direct: number,
      routed: number,
    ): [string, string, string, string] => [measure, us(direct), us(routed), us(routed - direct)];
    const rows: [string, string, string, string][] = [
      added("c=1 completion p50", plain.direct.p50, plain.routed.p50),
      added("c=1 completion p99", plain.direct.p99, plain.routed.p99),
      added("c=1 stream TTFB p50", sse.directTtfb.p50, sse.routedTtfb.p50),
      added("c=1 stream total p50", sse.direct.p50, sse.routed.p50),
      added("c=1 stream total p99", sse.direct.p99, sse.routed.p99),
      ...throughputRows("c=32 completions/s", tp),
      ...throughputRows("c=32 streams/s", tps),
      [
        "c=32 paced streams/s",
        paced32.direct.rps.toFixed(0),
        paced32.router.rps.toFixed(0),
        `ratio ${(paced32.router.rps / paced32.direct.rps).toFixed(2)}`,
      ],
      [
        "c=32 CPU us/request: sim, proxy",
        `${tp.direct.cpuUs.simulator.toFixed(0)} us`,
        `${tp.router.cpuUs.proxy.toFixed(0)} us`,
        `bare ${tp.bare.cpuUs.proxy.toFixed(0)} us`,
      ],
      ["propagation p50 / p99", "", `${percentile(prop, 50)} ms`, `${percentile(prop, 99)} ms`],
      [
        `router RSS idle / ${o.streams} streams`,
        "",
        `${idleRss.toFixed(0)} MB`,
        `${rss.toFixed(0)} MB`,
      ],
      underAttack.row,
    ];
    const result: DefaultFigures & Record<string, number> = {
      added_p50_us: Math.round(plain.routed.p50 - plain.direct.p50),
      added_p99_us: Math.round(plain.routed.p99 - plain.direct.p99),
      added_ttft_p50_us: Math.round(sse.routedTtfb.p50 - sse.directTtfb.p50),
      throughput_ratio: Number((tp.router.rps / tp.direct.rps).toFixed(3)),
      bare_proxy_throughput_ratio: Number((tp.bare.rps / tp.direct.rps).toFixed(3)),
      router_vs_bare_proxy: Number((tp.router.rps / tp.bare.rps).toFixed(3)),
      router_cpu_vs_bare_proxy: Number((tp.router.cpuUs.proxy / tp.bare.cpuUs.proxy).toFixed(3)),
      router_cpu_us_per_request: Math.round(tp.router.cpuUs.proxy),
      bare_proxy_cpu_us_per_request: Math.round(tp.bare.cpuUs.proxy),
      propagation_p99_ms: percentile(prop, 99),
      rss_mb_1000_streams: Number(rss.toFixed(1)),
      rss_mb_memory_attacks: underAttack.mb,
    };
    return report(rows, result, o.check, DEFAULT_FIGURES);
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    for (const c of cleanup) await c().catch(() => undefined);
  }
}

/** Prints the table, the targets verdict and the JSON line; the exit code. */
function report(
  rows: [string, string, string, string][],
  result: Partial<TargetedFigures> & Record<string, number>,
  check: boolean,
  only: (keyof TargetedFigures)[],
  header = ["measure", "direct", "router", "added"],
): number {
  log("");
  log(
    [
      header[0].padEnd(30),
      header[1].padStart(12),
      header[2].padStart(12),
      header[3].padStart(14),
    ].join(" "),
  );
  for (const [m, d, r, x] of rows)
    log([m.padEnd(30), d.padStart(12), r.padStart(12), x.padStart(14)].join(" "));
  const missed = missedTargets(result, only);
  log(missed.length ? `targets missed: ${missed.join(", ")}` : "all targets met");
  log(JSON.stringify(result));
  return check && missed.length ? EXIT.unverified : EXIT.ok;
}

main(process.argv).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).message}\n`);
    process.exit(EXIT.failed);
  },
);
