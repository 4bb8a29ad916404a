// npm run status: config, registry row, Redis entry and pods side by side against real
// PostgreSQL and Redis (pods from a stand-in kubectl), with drift injected into each source.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type Redis from "ioredis";
import { parseStackConfig } from "../components/spec";
import { releaseRevision } from "../components/manifests";
import {
  encodeEntry,
  connectRedis,
  withRegistryClient,
  migrate,
  setStatus,
  upsertEntry,
  registryKey,
} from "@vllm-fleet/registry";
import { driftOf, EXIT, ModelStatus, run } from "../scripts/status";
import { EXIT_HELP } from "../scripts/lib/cli";
import { createPulumiStandIn, PulumiStandIn, secretOutput } from "./support/pulumiStandIn";
import { scriptRunner } from "./support/scriptIo";
import { createTestDatabase, freePort, redisUrl } from "./support/services";

const RAW = {
  environment: "staging",
  namespace: "llm-status",
  gpuQuota: 8,
  releases: ["alpha", "beta", "gamma"].map((name) => ({
    name,
    source: `org/${name}`,
    image: "vllm/vllm-openai:v0.11.0",
  })),
  capacity: {
    alpha: { replicas: 1, gpu: { count: 1 } },
    beta: { replicas: 2, gpu: { count: 1 }, cache: { accessMode: "ReadWriteMany" } },
    gamma: { replicas: 1, gpu: { count: 1 }, enabled: false },
  },
  registry: { stack: "acme/vllm-registry/shared", host: "registry.example" },
  router: { imageRegistry: "registry.example/platform" },
};
const SPEC = parseStackConfig(RAW);
const endpoint = (m: string) => `${m}-staging.llm-status.svc.cluster.local:8000`;

describe("npm run status", () => {
  let db: string;
  let redisAt: string;
  let redis: Redis;
  let standIn: PulumiStandIn;
  let podsFile: string;

  /** Rows, cache entries and pods exactly as the config says. */
  async function consistent(): Promise<void> {
    await withRegistryClient(db, async (c) => {
      await c.query("DELETE FROM model_registry_entries");
      for (const m of SPEC.models) {
        const row = await upsertEntry(c, {
          modelName: m.name,
          environment: "staging",
          endpoint: endpoint(m.name),
          namespace: "llm-status",
          revision: releaseRevision(m),
          managedBy: "staging",
          status: m.enabled ? "ready" : "disabled",
          disabledReason: m.enabled ? null : "disabled in the config of stack staging",
        });
        await redis.set(registryKey("staging", m.name), encodeEntry(row), "EX", 120);
      }
    });
    fs.writeFileSync(
      podsFile,
      JSON.stringify({ "alpha-staging": [true], "beta-staging": [true, true] }),
    );
  }

  before(async () => {
    db = await createTestDatabase("ops_status");
    await withRegistryClient(db, (c) => migrate(c));
    redisAt = await redisUrl();
    redis = await connectRedis(redisAt);
    standIn = createPulumiStandIn();
    standIn.setConfig("staging", RAW);
    standIn.setOutputs("staging", {});
    podsFile = path.join(standIn.dir, "pods.json");
  });
  after(async () => {
    for (const m of SPEC.models) await redis.del(registryKey("staging", m.name));
    redis?.disconnect();
    standIn?.remove();
  });

  const status = (env: Record<string, string> = {}) =>
    scriptRunner(run, {
      ...standIn.env,
      DATABASE_URL: db,
      REDIS_URL: redisAt,
      KUBECTL_STANDIN_PODS: podsFile,
      ...env,
    });

  it("shows every source side by side and exits 0 when they agree", async () => {
    await consistent();
    const res = await status()("--stack", "staging");
    assert.equal(res.code, EXIT.ok, `${res.out}\n${res.err}`);
    assert.match(res.out, /^MODEL\s+CONFIG\s+REGISTRY\s+CACHE\s+PODS\s+DRIFT/m);
    assert.match(
      res.out,
      /^alpha\s+enabled x1\s+ready alpha-staging\.llm-status\.svc\.cluster\.local:8000\s+ready \(ttl \d+s\)\s+1\/1 ready\s+ok/m,
    );
    assert.match(res.out, /^beta\s+enabled x2\s+ready \S+\s+ready \(ttl \d+s\)\s+2\/2 ready\s+ok/m);
    assert.match(
      res.out,
      /^gamma\s+disabled\s+disabled \S+\s+disabled \(ttl \d+s\)\s+0\/0 ready\s+ok/m,
    );
    assert.match(res.out, /✓ no drift/);
  });

  it("flags injected drift in the registry, the cache and the pods, and exits 1", async () => {
    await consistent();
    await withRegistryClient(db, async (c) => {
      // An operator disabled alpha by hand; its cached copy still says ready.
      await setStatus(c, "staging", "alpha", "disabled", "hotfix by on-call");
      // beta's row points somewhere else than the Service.
      await upsertEntry(c, {
        modelName: "beta",
        environment: "staging",
        endpoint: "10.0.0.7:8000",
        namespace: "llm-status",
        revision: releaseRevision(SPEC.models[1]),
        managedBy: "staging",
      });
      // A model the stack does not have still takes traffic.
      await upsertEntry(c, {
        modelName: "delta",
        environment: "staging",
        endpoint: "delta-staging.llm-status.svc.cluster.local:8000",
        namespace: "llm-status",
        managedBy: "registry-cli",
      });
    });
    fs.writeFileSync(
      podsFile,
      JSON.stringify({ "alpha-staging": [false], "beta-staging": [true, true] }),
    );

    const res = await status()("--stack", "staging");
    assert.equal(res.code, EXIT.drift);
    assert.match(
      res.out,
      /^alpha\s+enabled x1\s+disabled \S+\s+ready \(ttl \d+s\)\s+0\/1 ready\s+DRIFT \(3\)/m,
    );
    assert.match(
      res.out,
      /alpha: row disabled \(hotfix by on-call\) but the config enables the model/,
    );
    assert.match(
      res.out,
      /alpha: cache stale: cached ready at alpha-staging\S+ \(updated [^)]+\), row disabled at alpha-staging/,
    );
    assert.match(res.out, /alpha: pods: 0\/1 ready/);
    assert.match(
      res.out,
      /beta: endpoint: row 10\.0\.0\.7:8000, config beta-staging\.llm-status\.svc\.cluster\.local:8000/,
    );
    assert.match(
      res.out,
      /delta: ready registry row \(managed by registry-cli\) for a model the stack does not have/,
    );
    assert.doesNotMatch(res.out, /gamma: /);

    const json = await status()("--stack", "staging", "--format", "json");
    assert.equal(json.code, EXIT.drift);
    const doc = JSON.parse(json.out) as { drift: boolean; models: ModelStatus[] };
    assert.equal(doc.drift, true);
    assert.deepEqual(
      doc.models.map((m) => m.drift.length),
      [3, 2, 0],
    );
  });

  it("says the cluster is unreachable without a kubectl context, and the cache unknown without REDIS_URL", async () => {
    await consistent();
    const res = await status({ KUBECTL_STANDIN_PODS: "", REDIS_URL: "" })("--stack", "staging");
    assert.equal(res.code, EXIT.ok, res.out);
    assert.match(
      res.out,
      /^alpha\s+enabled x1\s+ready \S+\s+unknown: REDIS_URL not set\s+cluster: unreachable\s+ok/m,
    );
    assert.match(res.out, /cluster: unreachable \(no kubectl context/);
  });

  it("derives drift from the sources (pure)", () => {
    const config = { enabled: true, endpoint: "a:1", revision: "r", replicas: 1 };
    assert.deepEqual(driftOf({ config, cache: { state: "absent" }, pods: { unreachable: "x" } }), [
      "not registered: the config enables the model but it has no registry row",
    ]);
    assert.deepEqual(
      driftOf({
        config: { ...config, enabled: false, replicas: 0 },
        cache: { state: "absent" },
        pods: { ready: 0, total: 0 },
      }),
      [],
    );
  });

  it("exits 3 when the stack or the registry cannot be read (not logged in, database down), not 5 (drift)", async () => {
    const loggedOut = await status({ PULUMI_STANDIN_LOGGED_OUT: "3" })("--stack", "staging");
    assert.equal(loggedOut.code, EXIT.unavailable);
    assert.match(loggedOut.err, /cannot read stack staging: .*PULUMI_ACCESS_TOKEN must be set/s);
    const dead = `postgresql://postgres@127.0.0.1:${await freePort()}/model_registry`;
    const down = await status({ DATABASE_URL: dead })("--stack", "staging");
    assert.equal(down.code, EXIT.unavailable);
    assert.match(down.err, /cannot read the registry: /);
  });

  it("without DATABASE_URL reads the stack's registryUrl output; needs a stack, documents its exit codes", async () => {
    await consistent();
    standIn.setOutputs("staging", { registryUrl: secretOutput(db) });
    try {
      const viaStack = await status({ DATABASE_URL: "" })("--stack", "staging");
      assert.equal(viaStack.code, EXIT.ok, `${viaStack.out}\n${viaStack.err}`);
      assert.ok(
        standIn
          .calls()
          .some((c) => c.join(" ").startsWith("stack output registryUrl --show-secrets --json")),
      );
    } finally {
      standIn.setOutputs("staging", {});
    }
    const noOutput = await status({ DATABASE_URL: "" })("--stack", "staging");
    assert.equal(noOutput.code, EXIT.unavailable);
    assert.match(noOutput.err, /cannot read the registryUrl output of stack staging/);
    const noDb = await status({ DATABASE_URL: "", PATH: "/usr/bin:/bin" })(
      "--stack",
      "development",
    );
    assert.equal(noDb.code, EXIT.usage);
    assert.match(noDb.err, /DATABASE_URL is not set and the pulumi CLI is not on PATH/);
    assert.equal((await status()()).code, EXIT.usage);
    const help = await status()("--help");
    assert.equal(help.code, EXIT.ok);
    assert.match(help.out, /It exits 5 when there is drift/);
    assert.ok(help.out.includes(EXIT_HELP), help.out);
  });
});
