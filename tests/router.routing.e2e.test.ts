// Endpoint-aware routing in built router processes: pods found through DNS (a real UDP server
// answering A records the test changes) and through a static file the test rewrites, pods
// coming and going, failover to another pod before any fallback model, vLLM readings that go
// stale, affinity across two routers, bounded load and least-loaded, and mode service unchanged.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROUTER_METRICS as R } from "@vllm-fleet/router/contract";
import { podsTarget } from "../router/src/routing/naming";
import { startDnsServer, type DnsServer } from "./support/dnsServer";
import { startFakePod, type FakePod } from "./support/fakePods";
import { silentServer, createTestDatabase } from "./support/services";
import { eventually, RouterProcess, seedRegistry, startRouter } from "./support/router";

const ENV = "staging";
const FAST = {
  ROUTER_DISCOVERY_INTERVAL_MS: "100",
  ROUTER_POD_METRICS_INTERVAL_MS: "100",
  ROUTER_POD_METRICS_TIMEOUT_MS: "50",
};

/** One series' value in Prometheus text (0 when absent). */
function metric(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

describe("router endpoint-aware routing", function () {
  this.timeout(60000);
  let db: string;
  let dir: string;
  /** The models' "Services": fake pods that answer as "service". */
  const services = new Map<string, FakePod>();
  const pods: FakePod[] = [];
  const routers: RouterProcess[] = [];
  let dns: DnsServer;
  let dnsPort: number;
  /** Pods at 127.0.0.2-4 on one port: what a headless Service's A records point at. */
  const dnsPods: FakePod[] = [];
  /** Addresses nothing listens on: connections to them are refused. */
  const refused: string[] = [];

  const MODELS = ["pool", "failover", "dead", "backup", "stale", "hot", "dns"] as const;

  before(async function () {
    this.timeout(120000);
    db = await createTestDatabase("routing");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "routing-e2e-"));
    dns = await startDnsServer();
    for (let i = 0; i < 3; i++) {
      const closed = await silentServer(); // closed at once: its port refuses connections
      closed.close();
      refused.push(`127.0.0.1:${closed.port}`);
    }
    for (const model of MODELS.filter((m) => m !== "dns" && m !== "dead"))
      services.set(model, await startFakePod(`${model}-service`));
    // A model whose Service and pods are all down.
    services.set("dead", { address: refused[0] } as FakePod);
    const first = await startFakePod("dns-a", { host: "127.0.0.2" });
    dnsPort = Number(first.address.split(":")[1]);
    dnsPods.push(
      first,
      await startFakePod("dns-b", { host: "127.0.0.3", port: dnsPort }),
      await startFakePod("dns-c", { host: "127.0.0.4", port: dnsPort }),
    );
    const base = { environment: ENV, namespace: "llm-staging" } as const;
    await seedRegistry(db, [
      ...[...services].map(([model, pod]) => ({
        ...base,
        modelName: model,
        endpoint: pod.address,
        fallbacks: model === "failover" || model === "dead" ? ["backup"] : [],
      })),
      {
        ...base,
        modelName: "dns",
        endpoint: `dns-staging.llm-staging.svc.cluster.local:${dnsPort}`,
      },
    ]);
  });

  after(async () => {
    await Promise.all(routers.map((r) => r.stop()));
    await Promise.all([...services.values(), ...pods, ...dnsPods].map((p) => p.close?.()));
    await dns?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function pod(name: string): Promise<FakePod> {
    const p = await startFakePod(name);
    pods.push(p);
    return p;
  }

  /** Writes the static pod list: model -> its pods (keyed by the model's registry endpoint). */
  function writePods(file: string, list: Partial<Record<(typeof MODELS)[number], FakePod[]>>) {
    const json = Object.fromEntries(
      Object.entries(list).map(([model, ps]) => [
        services.get(model)!.address,
        ps!.map((p) => p.address),
      ]),
    );
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(json));
    fs.renameSync(`${file}.tmp`, file); // whole, never half-written
  }

  async function router(env: Record<string, string>): Promise<RouterProcess> {
    const r = await startRouter({ DATABASE_URL: db, ROUTER_ENVIRONMENT: ENV, ...FAST, ...env });
    routers.push(r);
    return r;
  }

  /** One chat completion; which pod answered (`pod` in the fake's body) and through which model. */
  async function chat(
    r: RouterProcess,
    model: string,
    user = "hello",
    history: { role: string; content: string }[] = [],
  ): Promise<{ status: number; pod?: string; model: string | null }> {
    const res = await fetch(`${r.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model,
        messages: [
          { role: "system", content: "You are terse." },
          ...history,
          { role: "user", content: user },
        ],
      }),
    });
    const json = (await res.json()) as { pod?: string };
    return { status: res.status, pod: json.pod, model: res.headers.get("x-vllm-router-model") };
  }

  const metricsOf = async (r: RouterProcess) => (await fetch(`${r.metricsUrl}/metrics`)).text();

  /** Sends until a request is answered by a pod rather than the model's Service (discovery answered). */
  async function discovered(r: RouterProcess, model: string): Promise<void> {
    await eventually(`${model}'s pods to be discovered`, async () => {
      const { pod } = await chat(r, model);
      return pod !== undefined && pod !== `${model}-service`;
    });
  }

  it("follows the static pod list as pods come and go, and sends unlisted endpoints to the Service", async () => {
    const [a, b, c] = [await pod("pool-a"), await pod("pool-b"), await pod("pool-c")];
    const file = path.join(dir, "come-and-go.json");
    writePods(file, { pool: [a, b] });
    const r = await router({
      ROUTER_ROUTING_MODE: "least-loaded",
      ROUTER_DISCOVERY_STATIC_FILE: file,
    });
    await discovered(r, "pool");
    const served = async (n: number) => {
      const seen = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const { status, pod: p } = await chat(r, "pool", `q${i}`);
        assert.equal(status, 200);
        seen.set(p!, (seen.get(p!) ?? 0) + 1);
      }
      return seen;
    };
    // Equally loaded pods are chosen by the prompt's key, so distinct prompts spread over both.
    assert.deepEqual([...(await served(16)).keys()].sort(), ["pool-a", "pool-b"]);

    writePods(file, { pool: [b, c] }); // a goes, c comes
    let probe = 0;
    await eventually(
      "pool-c to receive requests",
      async () => (await chat(r, "pool", `probe ${probe++}`)).pod === "pool-c",
    );
    const after = await served(16);
    assert.deepEqual(
      [...after.keys()].sort(),
      ["pool-b", "pool-c"],
      "pool-a gets nothing once it left the list",
    );
    let text = await metricsOf(r);
    assert.ok(metric(text, R.endpointPicks, { model: "pool", reason: "least_loaded" }) >= 32);
    assert.match(text, new RegExp(`${R.podInflight}\\{model="pool",pod="${c.address}"\\} 0`));
    assert.doesNotMatch(text, new RegExp(`pod="${a.address}"`), "a pod that left has no series");
    assert.ok(metric(text, R.podMetricsAge, { model: "pool", pod: c.address }) < 5);

    writePods(file, {}); // no pods listed: the endpoint itself, as in mode service
    await eventually(
      "requests to go to the Service",
      async () => (await chat(r, "pool")).pod === "pool-service",
    );
    text = await metricsOf(r);
    assert.ok(metric(text, R.endpointPicks, { model: "pool", reason: "service" }) >= 1);
  });

  it("discovers pods from the headless Service's A records, following DNS as pods come and go", async () => {
    const host = podsTarget(`dns-staging.llm-staging.svc.cluster.local:${dnsPort}`)!.host;
    assert.equal(host, "dns-staging-pods.llm-staging.svc.cluster.local");
    const [a, b, c] = dnsPods;
    dns.set(host, ["127.0.0.2", "127.0.0.3"]);
    const r = await router({
      ROUTER_ROUTING_MODE: "scored",
      ROUTER_DISCOVERY_DNS_SERVERS: dns.address,
    });
    await eventually(
      "DNS-discovered pods to answer",
      async () => (await chat(r, "dns")).status === 200,
    );
    const servedBy = async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 24; i++) seen.add((await chat(r, "dns", `conversation ${i}`)).pod!);
      return [...seen].sort();
    };
    assert.deepEqual(await servedBy(), [a.name, b.name]);

    dns.set(host, ["127.0.0.3", "127.0.0.4"]); // a stops being ready, c becomes ready
    await eventually("the new DNS answer to take effect", async () => {
      const before = a.requests;
      return (await servedBy()).join() === [b.name, c.name].join() && a.requests === before;
    });
    assert.ok(dns.questions(host) >= 3, "asked again on every round");

    // NXDOMAIN (no ready pod): requests go to the Service's name itself, as in mode service.
    dns.set(host, undefined);
    const picks = async () =>
      metric(await metricsOf(r), R.endpointPicks, { model: "dns", reason: "service" });
    const before = await picks();
    await eventually("requests to go to the Service again", async () => {
      await chat(r, "dns");
      return (await picks()) > before + 1;
    });
  });

  it("retries a refused pod's request on another pod of the model before any fallback model", async () => {
    const live = await pod("failover-live");
    const backupPod = await pod("backup-pod");
    const file = path.join(dir, "failover.json");
    const [gone, gone2] = refused.slice(1).map((address) => ({ address }) as FakePod);
    writePods(file, { failover: [gone, live], dead: [gone, gone2], backup: [backupPod] });
    const r = await router({ ROUTER_ROUTING_MODE: "scored", ROUTER_DISCOVERY_STATIC_FILE: file });
    await discovered(r, "failover");
    for (let i = 0; i < 20; i++) {
      const res = await chat(r, "failover", `conversation ${i}`);
      assert.deepEqual(res, { status: 200, pod: "failover-live", model: "failover" });
    }
    assert.equal(backupPod.requests, 0, "no fallback model while a pod of the model answers");
    const text = await metricsOf(r);
    const refusals = metric(text, R.upstreamErrors, {
      model: "failover",
      reason: "connection_refused",
    });
    assert.ok(refusals >= 1, "the refused pod was tried");
    assert.ok(refusals <= 3, `the refused pod is left out after failing (${refusals} refusals)`);
    assert.equal(metric(text, R.endpointPicks, { model: "failover", reason: "retry" }), refusals);

    // Every pod of the model refuses (and so does its Service): both pods are tried, then the
    // fallback model answers.
    const deadRetries = async () =>
      metric(await metricsOf(r), R.endpointPicks, { model: "dead", reason: "retry" });
    await eventually("a request to try the second pod of 'dead'", async () => {
      assert.deepEqual(await chat(r, "dead"), { status: 200, pod: "backup-pod", model: "backup" });
      return (await deadRetries()) >= 1;
    });
  });

  it("prefers the pod vLLM reports idle, and lets a reading that stopped coming fade to neutral", async () => {
    const [busy, idle] = [await pod("stale-busy"), await pod("stale-idle")];
    busy.gauges = { running: 8, waiting: 20, kvUsage: 0.9 };
    const file = path.join(dir, "stale.json");
    writePods(file, { stale: [busy, idle] });
    const r = await router({
      ROUTER_ROUTING_MODE: "least-loaded",
      ROUTER_DISCOVERY_STATIC_FILE: file,
    });
    await discovered(r, "stale");
    await eventually("both pods to be read", async () => busy.scrapes >= 2 && idle.scrapes >= 2);
    const busyBefore = busy.requests;
    for (let i = 0; i < 10; i++) assert.equal((await chat(r, "stale")).pod, "stale-idle");
    assert.equal(busy.requests, busyBefore);

    // The busy pod's /metrics stops answering: its last reading fades (3 intervals full, 3 more to
    // nothing) and it is judged by the router's own count, like the idle one.
    busy.metrics = "hang";
    let probe = 0;
    await eventually(
      "the stale pod to take requests again",
      async () => (await chat(r, "stale", `probe ${probe++}`)).pod === "stale-busy",
      5000,
    );
    const text = await metricsOf(r);
    assert.ok(metric(text, R.podMetricsAge, { model: "stale", pod: busy.address }) >= 0.3);
    assert.ok(metric(text, R.podMetricsAge, { model: "stale", pod: idle.address }) < 0.3);
  });

  it("least-loaded sends requests past the pod holding this router's requests", async () => {
    const [held, free] = [await pod("hot-held"), await pod("hot-free")];
    const file = path.join(dir, "least.json");
    writePods(file, { hot: [held, free] });
    const r = await router({
      ROUTER_ROUTING_MODE: "least-loaded",
      ROUTER_DISCOVERY_STATIC_FILE: file,
    });
    await discovered(r, "hot");
    held.hold = true;
    const pending: Promise<unknown>[] = [];
    // Two held answers: its pod's load is then 2 against 0, more than the one request
    // (LOAD_SLACK) within which pods count as equal and the prompt decides.
    let n = 0;
    while (held.open < 2) {
      pending.push(chat(r, "hot", `hold ${n++}`));
      await new Promise((res) => setTimeout(res, 20));
    }
    const before = held.requests;
    for (let i = 0; i < 10; i++) assert.equal((await chat(r, "hot")).pod, "hot-free");
    assert.equal(held.requests, before);
    held.hold = false;
    held.release();
    await Promise.all(pending);
  });

  it("keeps a prefix on one pod across two router processes, and spreads a hot prefix over the bound", async () => {
    const four = [await pod("hot-1"), await pod("hot-2"), await pod("hot-3"), await pod("hot-4")];
    const file = path.join(dir, "affinity.json");
    writePods(file, { hot: four });
    const env = { ROUTER_ROUTING_MODE: "scored", ROUTER_DISCOVERY_STATIC_FILE: file };
    const [r1, r2] = [await router(env), await router(env)];
    await discovered(r1, "hot");
    await discovered(r2, "hot");
    // 40 conversations of three turns, turns alternating between the routers.
    let same = 0;
    const used = new Set<string>();
    for (let c = 0; c < 40; c++) {
      const history: { role: string; content: string }[] = [];
      const served: string[] = [];
      for (let t = 0; t < 3; t++) {
        const user = t === 0 ? `conversation ${c} opens` : `turn ${t}`;
        const { pod: p } = await chat(t % 2 ? r2 : r1, "hot", user, history);
        served.push(p!);
        history.push({ role: "user", content: user }, { role: "assistant", content: p! });
      }
      if (served.every((p) => p === served[0])) same++;
      served.forEach((p) => used.add(p));
    }
    assert.ok(same / 40 >= 0.9, `${same} of 40 conversations stayed on one pod`);
    assert.ok(used.size >= 3, `conversations spread over ${used.size} pods`);
    const text = await metricsOf(r1);
    assert.ok(metric(text, R.endpointPicks, { model: "hot", reason: "affinity" }) >= 60);

    // One hot prefix, 16 requests at once, every pod holding its answers: the prefix's pod
    // takes requests while within ceil(2 x mean), the rest spill to the next pods.
    four.forEach((p) => (p.hold = true));
    const burst = Array.from({ length: 16 }, () => chat(r1, "hot", "the hot prefix"));
    await eventually("all 16 to arrive", async () => four.reduce((n, p) => n + p.open, 0) === 16);
    const open = four.map((p) => p.open);
    assert.ok(Math.max(...open) <= 8, `per pod: ${open.join(", ")}`);
    assert.ok(open.filter((n) => n > 0).length >= 2, `per pod: ${open.join(", ")}`);
    four.forEach((p) => {
      p.hold = false;
      p.release();
    });
    assert.ok((await Promise.all(burst)).every((x) => x.status === 200));
    assert.ok(metric(await metricsOf(r1), R.endpointPicks, { model: "hot", reason: "spill" }) >= 1);
  });

  it("mode service sends every request to the registry endpoint and scrapes no pod", async () => {
    const listed = await pod("pool-listed");
    const file = path.join(dir, "service.json");
    writePods(file, { pool: [listed] });
    const r = await router({ ROUTER_DISCOVERY_STATIC_FILE: file }); // no mode: service
    for (let i = 0; i < 5; i++) assert.equal((await chat(r, "pool", `q${i}`)).pod, "pool-service");
    await new Promise((res) => setTimeout(res, 300)); // three scrape intervals
    assert.equal(listed.requests, 0);
    assert.equal(listed.scrapes, 0);
    const text = await metricsOf(r);
    assert.equal(metric(text, R.endpointPicks, { model: "pool", reason: "service" }), 5);
    assert.doesNotMatch(text, new RegExp(`^${R.podInflight}\\{`, "m"));
  });
});
