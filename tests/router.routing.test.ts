// Endpoint-aware routing, piece by piece: the headless Service's name, the affinity key,
// reading vLLM's load, readings fading to neutral, rendezvous hashing with bounded loads, and
// the settings. The router processes that use them: router.routing.e2e.test.ts.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DNS_LABEL, serviceName } from "../components/spec";
import { readRouterConfig } from "../router/src/config";
import { createLogger } from "../router/src/logger";
import { RouterMetrics } from "../router/src/metrics";
import type { RegistryEntry } from "@vllm-fleet/registry";
import { ROUTER_ENV } from "@vllm-fleet/router/contract";
import { podsServiceName, podsTarget, SERVICE_NAME_MAX } from "../router/src/routing/naming";
import { KV_WEIGHT, Pod } from "../router/src/routing/pods";
import { affinityKey, KEY_MAX_CHARS } from "../router/src/routing/prefixKey";
import { EndpointRouting, LOAD_SLACK, type RoutingConfig } from "../router/src/routing/routing";
import { VllmLoadReader } from "../router/src/routing/vllmLoad";

describe("routing: the headless Service's name", () => {
  it("is {service}-pods when that is a DNS-1035 label of at most 63 characters", () => {
    const service = serviceName("llama-3-1-8b-instruct", "production");
    assert.equal(podsServiceName(service), `${service}-pods`);
    const longest = "a".repeat(SERVICE_NAME_MAX - "-pods".length);
    assert.equal(podsServiceName(longest), `${longest}-pods`);
  });

  it("is shortened with a hash of the whole name when {service}-pods would not fit", () => {
    // Kubernetes Service names are DNS-1035 labels (IsDNS1035Label: 63 characters at most).
    const a = `${"m".repeat(50)}-model-a-production`.slice(0, 63);
    const b = `${"m".repeat(50)}-model-b-production`.slice(0, 63);
    for (const service of [a, b, `x${"-".repeat(60)}y`]) {
      const name = podsServiceName(service);
      assert.ok(name.length <= SERVICE_NAME_MAX, name);
      assert.match(name, DNS_LABEL);
      assert.ok(name.endsWith("-pods"), name);
      assert.equal(podsServiceName(service), name, "deterministic");
    }
    assert.notEqual(podsServiceName(a), podsServiceName(b));
  });

  it("maps a cluster Service endpoint to its headless host and leaves other endpoints alone", () => {
    assert.deepEqual(podsTarget("llama-development.llm.svc.cluster.local:8000"), {
      host: "llama-development-pods.llm.svc.cluster.local",
      port: 8000,
    });
    // The cluster domain is the cluster's own (`<zone>` in the Kubernetes DNS specification).
    assert.deepEqual(podsTarget("m-staging.ns.svc.corp.example:8000"), {
      host: "m-staging-pods.ns.svc.corp.example",
      port: 8000,
    });
    for (const other of ["127.0.0.1:8000", "vllm.example.com:8000", "m.ns.pod.cluster.local:8000"])
      assert.equal(podsTarget(other), undefined, other);
  });
});

describe("routing: the affinity key", () => {
  const system = { role: "system", content: "You are a careful assistant. ".repeat(40) };
  const turn1 = [system, { role: "user", content: "Tell me about rivers." }];
  const turn3 = [
    ...turn1,
    { role: "assistant", content: "Rivers flow." },
    { role: "user", content: "And lakes?" },
    { role: "assistant", content: "Lakes stay." },
    { role: "user", content: "And seas?" },
  ];

  it("is the same on every turn of a conversation", () => {
    assert.equal(affinityKey({ messages: turn1 }), affinityKey({ messages: turn3 }));
  });

  it("differs between conversations that share a system prompt", () => {
    const other = [system, { role: "user", content: "Tell me about mountains." }];
    assert.notEqual(affinityKey({ messages: turn1 }), affinityKey({ messages: other }));
    const otherSystem = [{ role: "system", content: "Be brief." }, turn1[1]];
    assert.notEqual(affinityKey({ messages: turn1 }), affinityKey({ messages: otherSystem }));
  });

  it("reads text content parts like plain content", () => {
    const parts = [
      system,
      {
        role: "user",
        content: [
          { type: "text", text: "Tell me " },
          { type: "text", text: "about rivers." },
        ],
      },
    ];
    assert.equal(affinityKey({ messages: parts }), affinityKey({ messages: turn1 }));
  });

  it("is the long shared system prompt alone, so its conversations share a pod", () => {
    const long = { role: "system", content: "A long shared instruction. ".repeat(200) }; // 5.4 KB
    const rivers = [long, { role: "user", content: "Tell me about rivers." }];
    const hills = [long, { role: "user", content: "Tell me about hills." }];
    assert.equal(affinityKey({ messages: rivers }), affinityKey({ messages: hills }));
    const other = { role: "system", content: "Another long instruction. ".repeat(200) };
    assert.notEqual(
      affinityKey({ messages: rivers }),
      affinityKey({ messages: [other, rivers[1]] }),
    );
  });

  it("hashes at most the first 4 KB, whatever the request's size", () => {
    const head = "s".repeat(KEY_MAX_CHARS);
    const user = { role: "user", content: "q" };
    assert.equal(
      affinityKey({ messages: [{ role: "system", content: head + "one".repeat(100000) }, user] }),
      affinityKey({ messages: [{ role: "system", content: head + "two" }] }),
    );
    assert.equal(affinityKey({ prompt: head + "x".repeat(1e6) }), affinityKey({ prompt: head }));
  });

  it("keys completions by whole blocks, so a prompt growing within a block keeps its key", () => {
    const head = "The quick brown fox. ".repeat(20); // 420 characters: one whole block of 256
    assert.equal(affinityKey({ prompt: head }), affinityKey({ prompt: head + " jumps" }));
    assert.notEqual(affinityKey({ prompt: head }), affinityKey({ prompt: "x" + head }));
    assert.equal(affinityKey({ prompt: [head, "other"] }), affinityKey({ prompt: head }));
  });

  it("is absent without prompt text (embeddings, empty requests)", () => {
    assert.equal(affinityKey({ input: "embed me" }), undefined);
    assert.equal(affinityKey({ messages: [] }), undefined);
    assert.equal(affinityKey({ prompt: "" }), undefined);
  });
});

describe("routing: reading vLLM's load", () => {
  const gauge = (name: string, values: number[]) => [
    `# HELP ${name} help text`,
    `# TYPE ${name} gauge`,
    ...values.map((v, i) => `${name}{engine="${i}",model_name="m"} ${v.toFixed(1)}`),
  ];
  const page = (kvName = "vllm:kv_cache_usage_perc") =>
    [
      "# HELP python_gc_objects_collected_total Objects collected during gc",
      'python_gc_objects_collected_total{generation="0"} 12.0',
      ...gauge("vllm:num_requests_running", [3, 4]),
      ...gauge("vllm:num_requests_waiting", [1, 2]),
      ...gauge(kvName, [0.5, 0.7]),
      ...gauge("vllm:prompt_tokens_total", [100, 200]),
      "",
    ].join("\n");

  it("sums requests over engines, averages KV usage, and stops once they are read", () => {
    const text = page();
    const reader = new VllmLoadReader();
    // Fed in small pieces, as a response streams in: done at the first line after the KV gauge.
    const stop = text.indexOf("\n", text.indexOf("# HELP vllm:prompt_tokens_total")) + 1;
    let done = false;
    for (let i = 0; i < stop && !done; i += 7)
      done = reader.feed(text.slice(i, Math.min(i + 7, stop)));
    assert.equal(done, true);
    const load = reader.result()!;
    assert.deepEqual(
      { ...load, kvUsage: Number(load.kvUsage.toFixed(3)) },
      {
        running: 7,
        waiting: 3,
        kvUsage: 0.6,
      },
    );
  });

  it("reads the KV gauge's name before vLLM 0.10 (gpu_cache_usage_perc)", () => {
    const reader = new VllmLoadReader();
    reader.feed(page("vllm:gpu_cache_usage_perc"));
    assert.equal(reader.result()?.kvUsage.toFixed(2), "0.60");
  });

  it("reports nothing for a page without vLLM's request gauges, and drops a cut-off line", () => {
    const reader = new VllmLoadReader();
    reader.feed("# TYPE up gauge\nup 1\n");
    assert.equal(reader.result(), undefined);
    const cut = new VllmLoadReader();
    cut.feed(
      [...gauge("vllm:num_requests_running", [2]), ...gauge("vllm:num_requests_waiting", [1])].join(
        "\n",
      ),
    );
    // The waiting line has no "\n" yet: it may be "1" of "12".
    assert.equal(cut.result(), undefined);
  });
});

describe("routing: a pod's load", () => {
  it("counts the last reading fully while fresh, then fades to this router's own count", () => {
    const pod = new Pod("10.0.0.1:8000");
    pod.inflight = 2;
    pod.report({ running: 5, waiting: 3, kvUsage: 0.5 }, 1000);
    // Others' requests: running + waiting - own = 6; the queue again: 3; KV: 0.5 x KV_WEIGHT.
    const full = 2 + 6 + 3 + 0.5 * KV_WEIGHT;
    assert.equal(pod.load(1000, 300), full);
    assert.equal(pod.load(1300, 300), full, "fresh for the whole fresh window");
    assert.equal(pod.load(1450, 300), 2 + (full - 2) / 2, "halfway faded");
    assert.equal(pod.load(1600, 300), 2, "neutral: only the router's own requests count");
    assert.equal(pod.load(99999, 300), 2);
  });

  it("is left out after a connect failure for a backoff that doubles, until it answers", () => {
    const pod = new Pod("10.0.0.1:8000");
    pod.markDown(0);
    assert.equal(pod.isDown(999), true);
    assert.equal(pod.isDown(1000), false);
    pod.markDown(1000);
    assert.equal(pod.isDown(2999), true);
    pod.markUp();
    assert.equal(pod.isDown(1001), false);
  });
});

describe("routing: picking a pod", () => {
  const logger = createLogger("silent");
  const pods = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"];
  const entry = {
    modelName: "m",
    endpoint: "m-staging.llm.svc.cluster.local:8000",
  } as RegistryEntry;
  let dir: string;

  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "routing-"))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A routing whose static source lists `pods` for the endpoint, once discovery has answered. */
  async function routingOf(mode: RoutingConfig["mode"], list = pods): Promise<EndpointRouting> {
    const file = path.join(dir, `${mode}-${list.length}.json`);
    fs.writeFileSync(file, JSON.stringify({ [entry.endpoint]: list }));
    const c = readRouterConfig({
      DATABASE_URL: "postgresql://u@127.0.0.1:5432/r",
      ROUTER_ENVIRONMENT: "staging",
      ROUTER_ROUTING_MODE: mode,
      ROUTER_DISCOVERY_STATIC_FILE: file,
    });
    const routing = new EndpointRouting(c.routing, new RouterMetrics(), logger);
    routing.pick(entry, { json: {} }); // starts tracking; the answer follows
    await new Promise((r) => setTimeout(r, 20));
    return routing;
  }

  it("sends a prefix to one pod, the same in another router, and spreads many prefixes", async () => {
    const [a, b] = [await routingOf("scored"), await routingOf("scored")];
    const share = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const json = { messages: [{ role: "user", content: `conversation ${i}` }] };
      const pa = a.pick(entry, { json })!;
      const pb = b.pick(entry, { json })!;
      assert.equal(pa.reason, "affinity");
      assert.equal(pa.address, pb.address);
      share.set(pa.address, (share.get(pa.address) ?? 0) + 1);
    }
    for (const p of pods) assert.ok((share.get(p) ?? 0) > 60, `${p}: ${share.get(p)} of 400`);
  });

  it("passes over a prefix's pod once its load would exceed the bound", async () => {
    const routing = await routingOf("scored");
    const json = { messages: [{ role: "user", content: "the hot prefix" }] };
    const picks = Array.from({ length: 16 }, () => {
      const pick = routing.pick(entry, { json })!;
      pick.pod!.inflight++; // held: every request stays in flight
      return pick;
    });
    const perPod = new Map<string, number>();
    for (const p of picks) perPod.set(p.address, (perPod.get(p.address) ?? 0) + 1);
    const hot = picks[0].address;
    assert.equal(picks[0].reason, "affinity");
    assert.ok(picks.some((p) => p.reason === "spill"));
    // ceil(2 x 16 / 4) = 8: no pod holds more than the bound lets it, so the hot prefix's
    // pod and its next in rank share the burst.
    for (const [pod, n] of perPod) assert.ok(n <= 8, `${pod} holds ${n}`);
    assert.equal(perPod.size, 2);
    assert.ok(perPod.get(hot)! >= Math.max(...perPod.values()) - 1);
  });

  it("keeps a prefix on its pod at low load when a reading adds a fraction (KV-cache use)", async () => {
    const routing = await routingOf("scored", pods.slice(0, 2));
    const json = { messages: [{ role: "user", content: "a quiet conversation" }] };
    const first = routing.pick(entry, { json })!;
    assert.equal(first.reason, "affinity");
    // A reading taken while its last request ran: idle now, but 0.2% of the KV cache in use.
    first.pod!.report({ running: 0, waiting: 0, kvUsage: 0.002 }, Date.now());
    const again = routing.pick(entry, { json })!;
    assert.equal(again.address, first.address);
    assert.equal(again.reason, "affinity");
  });

  it("least-loaded takes the idle pod, and takes tied pods in turn", async () => {
    const routing = await routingOf("least-loaded", pods.slice(0, 2));
    const first = routing.pick(entry, { json: {} })!;
    first.pod!.inflight = 3;
    for (let i = 0; i < 5; i++)
      assert.notEqual(routing.pick(entry, { json: {} })!.address, first.address);
    first.pod!.inflight = 0;
    const seen = new Set(
      Array.from({ length: 4 }, () => routing.pick(entry, { json: {} })!.address),
    );
    assert.equal(seen.size, 2);
  });

  it("least-loaded lets the prompt choose among pods within one request of the lowest load, never a busier one", async () => {
    const routing = await routingOf("least-loaded");
    const chat = (content: string) => ({ messages: [{ role: "user", content }] });
    // Idle pods are all equal: each prompt keeps to one pod, and many prompts use every pod.
    const home = routing.pick(entry, { json: chat("prompt 0") })!;
    for (let i = 0; i < 5; i++)
      assert.equal(routing.pick(entry, { json: chat("prompt 0") })!.address, home.address);
    const used = new Set(
      Array.from(
        { length: 64 },
        (_, i) => routing.pick(entry, { json: chat(`prompt ${i}`) })!.address,
      ),
    );
    assert.equal(used.size, pods.length);
    // One request more (LOAD_SLACK) still counts as equal; two more does not.
    home.pod!.inflight = LOAD_SLACK;
    assert.equal(routing.pick(entry, { json: chat("prompt 0") })!.address, home.address);
    home.pod!.inflight = LOAD_SLACK + 1;
    for (let i = 0; i < 5; i++)
      assert.notEqual(routing.pick(entry, { json: chat("prompt 0") })!.address, home.address);
    home.pod!.inflight = 0;
  });

  it("retries on untried pods only, then gives up; all pods down means the Service", async () => {
    const routing = await routingOf("least-loaded", pods.slice(0, 2));
    const first = routing.pick(entry, { json: {} })!;
    assert.equal(routing.failed(first, "connection_refused"), true);
    const retry = routing.pick(entry, { json: {} }, [first.pod!])!;
    assert.equal(retry.reason, "retry");
    assert.notEqual(retry.address, first.address);
    assert.equal(routing.failed(retry, "http_500"), false, "a pod that answered is not retried");
    assert.equal(routing.pick(entry, { json: {} }, [first.pod!, retry.pod!]), undefined);
    routing.failed(retry, "connect_timeout");
    assert.deepEqual(routing.pick(entry, { json: {} }), {
      address: entry.endpoint,
      reason: "service",
    });
  });

  it("mode service sends everything to the endpoint itself", async () => {
    const routing = await routingOf("service");
    assert.deepEqual(routing.pick(entry, { json: { prompt: "x" } }), {
      address: entry.endpoint,
      reason: "service",
    });
    assert.deepEqual([...routing.podStats()], []);
  });
});

describe("routing: settings", () => {
  const base = { DATABASE_URL: "postgresql://u@127.0.0.1:5432/r", ROUTER_ENVIRONMENT: "staging" };

  it("defaults to mode service, DNS discovery and a load bound of 2", () => {
    const r = readRouterConfig(base).routing;
    assert.equal(r.mode, "service");
    assert.equal(r.staticFile, undefined);
    assert.deepEqual(r.dnsServers, []);
    assert.equal(r.affinityLoadFactor, 2);
    assert.equal(r.discoveryIntervalMs, 1000);
    assert.equal(r.podMetricsIntervalMs, 1000);
  });

  it("refuses bad values, naming each variable", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "routing-config-"));
    const bad = path.join(dir, "pods.json");
    fs.writeFileSync(
      bad,
      JSON.stringify({ "m.ns.svc.cluster.local:8000": ["http://10.0.0.1:8000"] }),
    );
    assert.throws(
      () =>
        readRouterConfig({
          ...base,
          ROUTER_ROUTING_MODE: "random",
          ROUTER_DISCOVERY_DNS_SERVERS: "10.96.0.10,dns.local",
          ROUTER_POD_METRICS_INTERVAL_MS: "100",
          ROUTER_POD_METRICS_TIMEOUT_MS: "200",
          ROUTER_AFFINITY_LOAD_FACTOR: "1",
          ROUTER_DISCOVERY_STATIC_FILE: bad,
        }),
      (e: Error) =>
        [
          /ROUTER_ROUTING_MODE must be one of service, least-loaded, scored \(got 'random'\)/,
          /ROUTER_DISCOVERY_DNS_SERVERS .* \(got 'dns.local'\)/,
          /ROUTER_POD_METRICS_TIMEOUT_MS \(200\) must not exceed ROUTER_POD_METRICS_INTERVAL_MS \(100\)/,
          /ROUTER_AFFINITY_LOAD_FACTOR must be a number above 1/,
          /ROUTER_DISCOVERY_STATIC_FILE .*pod 'http:\/\/10.0.0.1:8000' is invalid/,
        ].every((re) => re.test(e.message)),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("are each documented in the README's routing table, and only they", () => {
    const read = (file: string) => fs.readFileSync(path.join(__dirname, "..", file), "utf8");
    const used = new Set(
      [...read("router/src/routing/config.ts").matchAll(/ENV\.(\w+)/g)].map(
        (m) => ROUTER_ENV[m[1] as keyof typeof ROUTER_ENV],
      ),
    );
    assert.ok(used.size >= 7, [...used].join());
    const readme = read("README.md");
    const section = readme.slice(readme.indexOf("### Endpoint-aware routing"));
    const table = section.slice(
      section.indexOf("| variable |"),
      section.indexOf("\n\n", section.indexOf("| variable |")),
    );
    const documented = new Set([...table.matchAll(/^\| `(ROUTER_[A-Z_]+)`/gm)].map((m) => m[1]));
    assert.deepEqual([...documented].sort(), [...used].sort());
  });

  it("takes DNS servers with ports, as node:dns's setServers does", () => {
    const r = readRouterConfig({
      ...base,
      ROUTER_DISCOVERY_DNS_SERVERS: "127.0.0.1:5353, 10.96.0.10, [fd00::a]:53",
    }).routing;
    assert.deepEqual(r.dnsServers, ["127.0.0.1:5353", "10.96.0.10", "[fd00::a]:53"]);
  });
});
