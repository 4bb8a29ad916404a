// `npm run bench -- --routing`: endpoint-aware routing against Service-style spreading on four
// simulated vLLM replicas (the engine model: prefix cache, batching, queueing), the same seeded
// workload of multi-turn chats over a few long shared system prompts in every mode, one run:
// - service: the router in mode `service`, its registry endpoint a kube-proxy stand-in
//   (bench/kubeProxy.ts: a random replica per connection);
// - least-loaded and scored: the router picking the replica, from a static pod list;
// - scored, two routers: each conversation's turns alternate between two router processes,
//   to see whether both send a prefix to the same replica without talking to each other.
// Then the router's own cost at concurrency 1 against a trivial upstream: mode `scored` against
// mode `service`, and the router's added tail against a bare Node.js proxy's.
import { setMaxListeners } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { Pool } from "pg";
import { migrate, upsertEntry } from "@vllm-fleet/registry";
import { freePort } from "../tests/support/services";
import { closedLoop, percentile, target, timedPost } from "./load";
import {
  Child,
  startBareProxyProcess,
  startKubeProxyProcess,
  startReplicaProcess,
  startRouterProcess,
  startSimulatorProcess,
  Replica,
  RouterChild,
} from "./processes";
import { RoutingFigures } from "./targets";
import { buildWorkload, Conversation, streamTurn, TurnResult, Workload } from "./workload";

const ENV = "development";
const MODEL = "chat";
const REPLICAS = 4;

export interface RoutingOptions {
  /** Seconds during which conversations start, in each mode. */
  seconds: number;
  /** Conversations starting per second. */
  rate: number;
  /** Timed requests per side at concurrency 1. */
  requests: number;
  seed: number;
}

/**
 * The workload, sized against the simulator's default cache (2048 blocks of 16 tokens, 32k
 * tokens a replica): eight system prompts of about 7k tokens are 56k tokens, more than one
 * replica holds, but two of them and their conversations fit each of four replicas.
 */
const WORKLOAD = {
  systemPrompts: 8,
  systemPromptWords: 7000,
  turns: 3,
  userWords: 40,
  maxTokens: 64,
  thinkMs: 500,
};
/** After the arrival window, turns in flight get this long to finish; the rest are cut. */
const DRAIN_MS = 15000;
const PROGRESS_MS = 5000;

type Row = [string, string, string, string];
const started = Date.now();
/** A progress line, stamped with the seconds since the benchmark started. */
const log = (line: string) =>
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Mode {
  name: string;
  mode: "service" | "least-loaded" | "scored";
  routers: number;
}

const MODES: Mode[] = [
  { name: "service", mode: "service", routers: 1 },
  { name: "least-loaded", mode: "least-loaded", routers: 1 },
  { name: "scored", mode: "scored", routers: 1 },
  { name: "scored, 2 routers", mode: "scored", routers: 2 },
];

export interface ModeResult {
  name: string;
  requests: number;
  /** Turns with no first token by the end of the drain (their TTFT counts as that wait). */
  cut: number;
  ttftMeanMs: number;
  ttftP90Ms: number;
  /** Output tokens received during the arrival window, per second of it. */
  tokensPerSecond: number;
  /** Prompt tokens found in the replicas' prefix caches / looked up. */
  prefixHitRate: number;
  /** Fraction of the mode's requests each replica served. */
  podShares: number[];
  /** Turns after the first on the replica of the conversation's previous turn. */
  samePodAsPreviousTurn: number;
  /** Of those, turns whose previous turn went through the other router (two-router mode). */
  crossRouterSamePod?: number;
  /** The routers' picks by reason (router_endpoint_picks_total). */
  picks: Record<string, number>;
}

/** router_endpoint_picks_total of `model` by reason, summed over routers. */
async function picksByReason(routers: RouterChild[]): Promise<Record<string, number>> {
  const picks: Record<string, number> = {};
  const series = new RegExp(
    `^router_endpoint_picks_total\\{model="${MODEL}",reason="(\\w+)"\\} (\\S+)$`,
  );
  for (const r of routers) {
    const text = await fetch(`${r.metricsUrl}/metrics`).then((res) => res.text());
    for (const line of text.split("\n")) {
      const m = series.exec(line);
      if (m) picks[m[1]] = (picks[m[1]] ?? 0) + Number(m[2]);
    }
  }
  return picks;
}

/** Sums a counter's series in Prometheus text (`name{...} value` lines). */
export function counterSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

async function prefixCounters(replicas: Child[]): Promise<{ hits: number; queries: number }> {
  const texts = await Promise.all(
    replicas.map((r) => fetch(`${r.url}/metrics`).then((res) => res.text())),
  );
  return {
    hits: texts.reduce((s, t) => s + counterSum(t, "vllm:prefix_cache_hits_total"), 0),
    queries: texts.reduce((s, t) => s + counterSum(t, "vllm:prefix_cache_queries_total"), 0),
  };
}

/** Waits until the router has scraped all `n` replicas (its per-pod metrics list them). */
async function untilPodsKnown(router: RouterChild, n: number): Promise<void> {
  const deadline = Date.now() + 15000;
  for (;;) {
    const text = await fetch(`${router.metricsUrl}/metrics`).then((r) => r.text());
    const scraped = text
      .split("\n")
      .filter((l) => l.startsWith(`router_pod_metrics_age_seconds{model="${MODEL}"`));
    if (scraped.length >= n) return;
    if (Date.now() > deadline)
      throw new Error(`router knew ${scraped.length}/${n} pods after 15 s`);
    await sleep(100);
  }
}

/** Plays the workload through `routers`; each conversation's turns go through them in turn. */
async function play(
  w: Workload,
  routers: RouterChild[],
  o: RoutingOptions,
  label: string,
): Promise<{ turns: TurnResult[]; windowStart: number; windowEnd: number }> {
  const agents = routers.map(() => new http.Agent({ keepAlive: true, maxSockets: Infinity }));
  const urls = routers.map((r) => new URL(r.url));
  const abort = new AbortController();
  setMaxListeners(Infinity, abort.signal); // one listener per request in flight, by design
  const turns: TurnResult[] = [];
  const windowStart = Date.now();
  const windowEnd = windowStart + o.seconds * 1000;
  let inflight = 0;
  const converse = async (c: Conversation) => {
    await sleep(c.startMs);
    const messages: { role: string; content: string }[] = [
      { role: "system", content: w.systemPrompts[c.system] },
    ];
    for (let turn = 0; turn < c.users.length; turn++) {
      if (turn > 0) await sleep(c.thinkMs[turn]);
      if (Date.now() >= windowEnd) return;
      messages.push({ role: "user", content: c.users[turn] });
      const router = (c.id + turn) % routers.length;
      inflight++;
      const r = await streamTurn(
        urls[router],
        agents[router],
        { model: MODEL, messages, max_tokens: WORKLOAD.maxTokens, stream: true },
        `${label}-c${c.id}-t${turn}`,
        abort.signal,
      );
      inflight--;
      turns.push({ ...r, conversation: c.id, turn, router });
      if (!r.completed) return;
      messages.push({ role: "assistant", content: r.reply });
    }
  };
  const progress = setInterval(() => {
    const ttfts = turns.filter((t) => t.ttftMs !== undefined).map((t) => t.ttftMs!);
    log(
      `  ${label} ${((Date.now() - windowStart) / 1000).toFixed(0)} s: ${turns.length} turns done, ${inflight} in flight, TTFT p90 so far ${ttfts.length ? (percentile(ttfts, 90) / 1000).toFixed(2) : "-"} s`,
    );
  }, PROGRESS_MS);
  const all = Promise.all(w.conversations.map(converse));
  const cut = sleep(o.seconds * 1000 + DRAIN_MS).then(() => abort.abort());
  await Promise.race([all, cut]);
  abort.abort(); // no-op when all finished
  await all;
  clearInterval(progress);
  agents.forEach((a) => a.destroy());
  return { turns, windowStart, windowEnd };
}

function summarize(
  name: string,
  played: Awaited<ReturnType<typeof play>>,
  served: Map<string, number>,
  prefix: { hits: number; queries: number },
  picks: Record<string, number>,
  seconds: number,
): ModeResult {
  const { turns, windowEnd } = played;
  // A turn cut before its first token waited at least until the cut: counted so, never dropped.
  const waited = turns.map((t) => t.ttftMs ?? Math.max(0, Date.now() - t.sentAt));
  const tokens = turns.reduce((s, t) => s + t.tokenTimes.filter((x) => x <= windowEnd).length, 0);
  const shares = new Array<number>(REPLICAS).fill(0);
  for (const t of turns) {
    const pod = served.get(t.requestId);
    if (pod !== undefined) shares[pod]++;
  }
  const pod = new Map(turns.map((t) => [`${t.conversation}/${t.turn}`, served.get(t.requestId)]));
  const byTurn = new Map(turns.map((t) => [`${t.conversation}/${t.turn}`, t]));
  let follow = 0;
  let same = 0;
  let cross = 0;
  let crossSame = 0;
  for (const t of turns) {
    if (t.turn === 0) continue;
    const prev = byTurn.get(`${t.conversation}/${t.turn - 1}`);
    const a = pod.get(`${t.conversation}/${t.turn - 1}`);
    const b = pod.get(`${t.conversation}/${t.turn}`);
    if (!prev || a === undefined || b === undefined) continue;
    follow++;
    if (a === b) same++;
    if (prev.router !== t.router) {
      cross++;
      if (a === b) crossSame++;
    }
  }
  const counted = shares.reduce((s, x) => s + x, 0);
  return {
    name,
    requests: turns.length,
    cut: turns.filter((t) => t.ttftMs === undefined).length,
    ttftMeanMs: waited.reduce((s, x) => s + x, 0) / Math.max(1, waited.length),
    ttftP90Ms: percentile(waited, 90),
    tokensPerSecond: tokens / seconds,
    prefixHitRate: prefix.queries ? prefix.hits / prefix.queries : 0,
    podShares: shares.map((s) => s / Math.max(1, counted)),
    samePodAsPreviousTurn: follow ? same / follow : NaN,
    crossRouterSamePod: cross ? crossSame / cross : undefined,
    picks,
  };
}

async function registerModels(databaseUrl: string, chatEndpoint: string, fastEndpoint: string) {
  const pool = new Pool({ connectionString: databaseUrl, max: 1 });
  try {
    await migrate(pool);
    for (const [modelName, endpoint] of [
      [MODEL, chatEndpoint],
      ["fast", fastEndpoint],
    ])
      await upsertEntry(pool, {
        modelName,
        environment: ENV,
        namespace: "bench",
        endpoint,
        servedModelName: modelName,
      });
  } finally {
    await pool.end();
  }
}

/** Added latency at concurrency 1, interleaved: router in modes service and scored, bare proxy. */
async function overhead(
  fast: Child,
  service: RouterChild,
  scored: RouterChild,
  bare: Child,
  n: number,
) {
  // A chat request whose system prompt is past the affinity key's 4 KiB, so `scored` hashes
  // its most; the simulator answers at once (no model time), so the proxies' cost shows.
  const body = JSON.stringify({
    model: "fast",
    messages: [
      { role: "system", content: "Answer briefly. ".repeat(400) },
      { role: "user", content: "Say hello" },
    ],
    max_tokens: 16,
  });
  const sides = { direct: fast.url, service: service.url, scored: scored.url, bare: bare.url };
  const targets = Object.fromEntries(
    Object.entries(sides).map(([k, url]) => [k, target(url, 1)]),
  ) as Record<keyof typeof sides, ReturnType<typeof target>>;
  for (const url of Object.values(sides))
    await closedLoop(target(url, 4), "/v1/chat/completions", body, 4, 1500);
  const us: Record<keyof typeof sides, number[]> = {
    direct: [],
    service: [],
    scored: [],
    bare: [],
  };
  const order = Object.keys(sides) as (keyof typeof sides)[];
  for (let i = 0; i < n + Math.ceil(n / 10); i++)
    for (let j = 0; j < order.length; j++) {
      // Interleaved, so drift (GC, CPU frequency, other load) hits every side alike, and in an
      // order that rotates: a proxy's work after its answer (its log line, metrics) overlaps
      // the next side's request, which must not always be the same side's.
      const k = order[(i + j) % order.length];
      const t = await timedPost(targets[k], "/v1/chat/completions", body);
      if (t.status !== 200) throw new Error(`${k} answered ${t.status} at concurrency 1`);
      if (i >= n / 10) us[k].push(t.totalUs);
    }
  const p = (k: keyof typeof sides, q: number) => percentile(us[k], q);
  return {
    added: (k: "service" | "scored" | "bare", q: number) => p(k, q) - p("direct", q),
    /**
     * What mode `scored` adds over `service` at the median: the median of the per-iteration
     * differences. Each pair is taken moments apart, so load from outside the benchmark that
     * drifts over the run (the machine is shared) cancels out, where the difference of two
     * medians would carry it.
     */
    scoredOverService: percentile(
      us.scored.map((x, i) => x - us.service[i]),
      50,
    ),
  };
}

export async function routingBench(
  o: RoutingOptions,
  env: { DATABASE_URL: string; REDIS_URL: string },
  children: Child[],
): Promise<{ rows: Row[]; figures: RoutingFigures & Record<string, number> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "bench-routing-"));
  try {
    const ports = await Promise.all(Array.from({ length: REPLICAS }, () => freePort()));
    const replicaAddresses = ports.map((p) => `127.0.0.1:${p}`);
    const fastPort = await freePort();
    const kubeProxyPort = await freePort();
    const started = await Promise.allSettled([
      startSimulatorProcess("fast", fastPort, 0, 0),
      startKubeProxyProcess(kubeProxyPort, replicaAddresses, o.seed),
      ...ports.map((p) => startReplicaProcess(MODEL, p, () => undefined)),
    ]);
    for (const s of started) if (s.status === "fulfilled") children.push(s.value);
    for (const s of started) if (s.status === "rejected") throw s.reason;
    const [fast, kubeProxy] = started.map((s) => (s as PromiseFulfilledResult<Child>).value);
    const replicas = started.slice(2).map((s) => (s as PromiseFulfilledResult<Replica>).value);
    const chatEndpoint = new URL(kubeProxy.url).host;
    const fastEndpoint = new URL(fast.url).host;
    await registerModels(env.DATABASE_URL, chatEndpoint, fastEndpoint);
    const podsFile = path.join(dir, "pods.json");
    await writeFile(
      podsFile,
      JSON.stringify({ [chatEndpoint]: replicaAddresses, [fastEndpoint]: [fastEndpoint] }),
    );
    const routerEnv = (mode: Mode["mode"]) => ({
      ...env,
      ROUTER_ENVIRONMENT: ENV,
      ROUTER_ROUTING_MODE: mode,
      ...(mode === "service" ? {} : { ROUTER_DISCOVERY_STATIC_FILE: podsFile }),
    });
    const startRouter = async (mode: Mode["mode"]) => {
      const r = await startRouterProcess(await freePort(), routerEnv(mode));
      children.push(r);
      return r;
    };
    const stop = async (cs: Child[]) => {
      await Promise.all(cs.map((c) => c.stop()));
      for (const c of cs) children.splice(children.indexOf(c), 1);
    };

    log(
      `router cost at concurrency 1 (${o.requests} per side): direct, service, scored, bare proxy ...`,
    );
    const bare = await startBareProxyProcess(await freePort(), fast.url);
    children.push(bare);
    const [service1, scored1] = [await startRouter("service"), await startRouter("scored")];
    const cost = await overhead(fast, service1, scored1, bare, o.requests);
    await stop([service1, scored1, bare]);

    const w = buildWorkload({ ...WORKLOAD, seed: o.seed, rate: o.rate, seconds: o.seconds });
    log(
      `workload: ${w.conversations.length} conversations of ${WORKLOAD.turns} turns in ${o.seconds} s (${o.rate}/s), ${WORKLOAD.systemPrompts} system prompts of ~${WORKLOAD.systemPromptWords} tokens, ${WORKLOAD.maxTokens} tokens a reply, ${REPLICAS} replicas`,
    );
    const results: ModeResult[] = [];
    for (const m of MODES) {
      log(`${m.name}: replicas reset, ${m.routers} router(s) starting ...`);
      const served = new Map<string, number>();
      // Fresh simulators: every mode starts with cold caches and zero counters.
      await Promise.all(replicas.map((r, i) => r.reset((id) => served.set(id, i))));
      const routers: RouterChild[] = [];
      for (let i = 0; i < m.routers; i++) routers.push(await startRouter(m.mode));
      if (m.mode !== "service")
        for (const r of routers) {
          // The first request starts the router tracking the model; its pods come a round later.
          await fetch(`${r.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              model: MODEL,
              messages: [{ role: "user", content: "hi" }],
              max_tokens: 1,
            }),
          }).then((res) => res.arrayBuffer());
          await untilPodsKnown(r, REPLICAS);
        }
      const before = await prefixCounters(replicas);
      const played = await play(w, routers, o, m.name.replace(/\W+/g, "-"));
      const after = await prefixCounters(replicas);
      const r = summarize(
        m.name,
        played,
        served,
        { hits: after.hits - before.hits, queries: after.queries - before.queries },
        await picksByReason(routers),
        o.seconds,
      );
      results.push(r);
      log(
        `  ${m.name}: TTFT mean ${(r.ttftMeanMs / 1000).toFixed(2)} s, p90 ${(r.ttftP90Ms / 1000).toFixed(2)} s, ${r.tokensPerSecond.toFixed(0)} tokens/s, prefix hits ${(r.prefixHitRate * 100).toFixed(0)}%`,
      );
      await stop(routers);
    }

    const by = Object.fromEntries(results.map((r) => [r.name, r])) as Record<string, ModeResult>;
    const service = by["service"];
    const scored = by["scored"];
    const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
    const rows: Row[] = [];
    for (const r of results) {
      rows.push([
        r.name,
        `${(r.ttftMeanMs / 1000).toFixed(2)} s`,
        `${(r.ttftP90Ms / 1000).toFixed(2)} s`,
        `${r.tokensPerSecond.toFixed(0)} tok/s`,
      ]);
      rows.push([
        `  prefix hits, pod shares`,
        pct(r.prefixHitRate),
        `${r.requests} req${r.cut ? ` (${r.cut} cut)` : ""}`,
        r.podShares.map(pct).join(" "),
      ]);
      if (r.name !== "service")
        rows.push([
          "  same pod as last turn, picks",
          pct(r.samePodAsPreviousTurn),
          r.crossRouterSamePod === undefined ? "" : `${pct(r.crossRouterSamePod)} x-router`,
          Object.entries(r.picks)
            .filter(([reason]) => reason !== "service")
            .map(([reason, n]) => `${reason} ${n}`)
            .join(" "),
        ]);
    }
    const usRow = (m: string, v: number): Row => [m, "", "", `${Math.round(v)} us`];
    rows.push(
      usRow("c=1 added p50, service", cost.added("service", 50)),
      usRow("c=1 added p50, scored", cost.added("scored", 50)),
      usRow("c=1 scored - service, paired p50", cost.scoredOverService),
      usRow("c=1 added p99, scored", cost.added("scored", 99)),
      usRow("c=1 added p99, bare proxy", cost.added("bare", 99)),
    );
    const round = (x: number, d = 3) => Number(x.toFixed(d));
    const figures = {
      ttft_p90_gain: round(service.ttftP90Ms / scored.ttftP90Ms),
      throughput_gain: round(scored.tokensPerSecond / service.tokensPerSecond),
      least_loaded_ttft_p90_gain: round(service.ttftP90Ms / by["least-loaded"].ttftP90Ms),
      affinity_two_routers: round(by["scored, 2 routers"].crossRouterSamePod ?? NaN),
      added_p50_us_delta: Math.round(cost.scoredOverService),
      added_p99_vs_bare_proxy: round(cost.added("scored", 99) / cost.added("bare", 99)),
      ...Object.fromEntries(
        results.flatMap((r) => {
          const k = r.name.replace(/\W+/g, "_");
          return [
            [`${k}_ttft_p90_ms`, Math.round(r.ttftP90Ms)],
            [`${k}_tokens_per_second`, Math.round(r.tokensPerSecond)],
            [`${k}_prefix_hit_rate`, round(r.prefixHitRate)],
          ];
        }),
      ),
      added_p50_us_service: Math.round(cost.added("service", 50)),
      added_p99_us_scored: Math.round(cost.added("scored", 99)),
      added_p99_us_bare_proxy: Math.round(cost.added("bare", 99)),
    };
    return { rows, figures };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
