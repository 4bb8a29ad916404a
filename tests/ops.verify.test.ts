// npm run verify against a real router, registry and simulators: healthy, disabled and broken
// models, endpoint drift, a stack read through the stand-in pulumi and from its stack file.
import assert from "node:assert/strict";
import { EXIT, run } from "../scripts/verify";
import { EXIT_HELP } from "../scripts/lib/cli";
import { CheckResult, formatResults, passed, verifyPlatform } from "../scripts/lib/verification";
import { startSimulator, Simulator } from "../scripts/simulator";
import { createPulumiStandIn, PulumiStandIn } from "./support/pulumiStandIn";
import { RouterProcess, seedRegistry, startRouter } from "./support/router";
import { scriptRunner } from "./support/scriptIo";
import { createTestDatabase } from "./support/services";

const IMAGE = "vllm/vllm-openai:v0.11.0";

function release(name: string) {
  return { name, source: `org/${name}`, image: IMAGE };
}
function capacity(enabled = true) {
  return { replicas: 1, gpu: { count: 1 }, enabled };
}

/** A development stack of the given models (name -> enabled). */
function stackConfig(models: Record<string, boolean>) {
  return {
    environment: "development",
    namespace: "llm-dev",
    gpuQuota: 8,
    releases: Object.keys(models).map(release),
    capacity: Object.fromEntries(Object.entries(models).map(([m, on]) => [m, capacity(on)])),
    registry: { stack: "acme/vllm-registry/shared", host: "registry.example", sslmode: "disable" },
    router: { imageRegistry: "registry.example/platform" },
  };
}

function byKey(results: CheckResult[]) {
  return Object.fromEntries(results.map((r) => [`${r.check} ${r.target}`, r]));
}

describe("npm run verify", () => {
  let db: string;
  let healthy: Simulator;
  let broken: Simulator;
  let router: RouterProcess;
  let standIn: PulumiStandIn;

  before(async () => {
    db = await createTestDatabase("ops_verify");
    healthy = await startSimulator({ port: 0, model: "healthy", ttftMs: 5, tokensPerSecond: 0 });
    broken = await startSimulator({
      port: 0,
      model: "broken",
      ttftMs: 5,
      tokensPerSecond: 0,
      fault: "500",
    });
    await seedRegistry(db, [
      {
        modelName: "healthy",
        environment: "development",
        endpoint: healthy.endpoint,
        namespace: "llm-dev",
      },
      {
        modelName: "broken",
        environment: "development",
        endpoint: broken.endpoint,
        namespace: "llm-dev",
      },
      {
        modelName: "retired",
        environment: "development",
        endpoint: "127.0.0.1:9",
        namespace: "llm-dev",
        status: "disabled",
        disabledReason: "retired by the on-call",
      },
    ]);
    router = await startRouter({
      DATABASE_URL: db,
      ROUTER_ENVIRONMENT: "development",
      ROUTER_SHUTDOWN_DELAY_MS: "0",
    });
    standIn = createPulumiStandIn();
  });

  after(async () => {
    await router?.stop();
    await Promise.all([healthy?.close(), broken?.close()]);
    standIn?.remove();
  });

  it("passes a healthy model, denies a disabled one and fails a broken one, an unregistered one and endpoint drift", async () => {
    const results = await verifyPlatform({
      environment: "development",
      routerUrl: router.url,
      metricsUrl: router.metricsUrl,
      databaseUrl: db,
      models: [
        { name: "healthy", enabled: true, endpoint: healthy.endpoint },
        { name: "retired", enabled: false, endpoint: "127.0.0.1:9" },
        { name: "broken", enabled: true, endpoint: broken.endpoint },
        { name: "missing", enabled: true, endpoint: "127.0.0.1:9" },
      ],
    });
    const r = byKey(results);
    assert.equal(r[`router ${router.url}`].ok, true);
    assert.equal(r["registry healthy"].ok, true);
    assert.match(r["completion healthy"].detail, /^HTTP 200 in \d+ ms$/);
    assert.equal(r["completion healthy"].ok, true);
    assert.equal(r["registry retired"].ok, true);
    assert.deepEqual(
      [r["denied retired"].ok, r["denied retired"].detail],
      [true, "HTTP 403 model_disabled"],
    );
    assert.equal(r["registry broken"].ok, true);
    assert.equal(r["completion broken"].ok, false);
    assert.match(r["completion broken"].detail, /HTTP 5\d\d/);
    assert.equal(r["registry missing"].ok, false);
    assert.match(r["registry missing"].detail, /no row in development/);
    assert.equal(r["completion missing"].ok, false);
    assert.match(r["completion missing"].detail, /HTTP 404 model_not_found/);
    assert.deepEqual(
      [r[`metrics ${router.url}/metrics`].ok, r[`metrics ${router.url}/metrics`].detail],
      [true, "not served to API clients (404)"],
    );
    assert.equal(r[`metrics ${router.metricsUrl}/metrics`].ok, true);

    const drift = await verifyPlatform({
      environment: "development",
      routerUrl: router.url,
      databaseUrl: db,
      models: [
        {
          name: "healthy",
          enabled: true,
          endpoint: "healthy-development.llm-dev.svc.cluster.local:8000",
        },
      ],
    });
    assert.match(
      byKey(drift)["registry healthy"].detail,
      /endpoint 127\.0\.0\.1:\d+ does not match the stack's Service healthy-development\.llm-dev\.svc\.cluster\.local:8000/,
    );
  });

  it("--stack reads config and outputs through pulumi and exits 0 when every check passes", async () => {
    standIn.setConfig("development", stackConfig({ healthy: true, retired: false }));
    standIn.setOutputs("development", {
      routerUrl: router.url,
      models: { healthy: { endpoint: healthy.endpoint }, retired: { endpoint: "127.0.0.1:9" } },
    });
    const verify = scriptRunner(run, { ...standIn.env, DATABASE_URL: db });
    const table = await verify("--stack", "development");
    assert.equal(table.code, EXIT.ok, table.err);
    assert.match(table.out, /Verifying stack development \(development, config from pulumi\)/);
    assert.match(table.out, /completion\s+healthy\s+PASS\s+HTTP 200/);
    assert.match(table.out, /denied\s+retired\s+PASS\s+HTTP 403 model_disabled/);
    assert.match(table.out, /environment\s+\S+\s+PASS\s+serves development/);
    assert.match(
      table.out,
      /coverage\s+development\s+PASS\s+1 of 1 enabled models have ready rows/,
    );
    assert.match(table.out, /✓ all 8 checks passed/);
    assert.deepEqual(
      standIn
        .calls()
        .slice(-2)
        .map((c) => c.slice(0, 2))
        .sort(),
      [
        ["config", "--json"],
        ["stack", "output"],
      ],
    );

    const json = await verify("--stack", "development", "--format", "json");
    assert.equal(json.code, EXIT.ok);
    const doc = JSON.parse(json.out) as { ok: boolean; results: CheckResult[] };
    assert.equal(doc.ok, true);
    assert.equal(doc.results.length, 8);
  });

  it("--stack exits 4 with the failing checks when a model is broken", async () => {
    standIn.setConfig("development", stackConfig({ healthy: true, broken: true }));
    standIn.setOutputs("development", {
      models: { healthy: { endpoint: healthy.endpoint }, broken: { endpoint: broken.endpoint } },
    });
    const verify = scriptRunner(run, { ...standIn.env, DATABASE_URL: db });
    const res = await verify(
      "--stack",
      "development",
      "--router-url",
      router.url,
      "--format",
      "json",
    );
    assert.equal(res.code, EXIT.unverified);
    const doc = JSON.parse(res.out) as { ok: boolean; results: CheckResult[] };
    assert.equal(doc.ok, false);
    assert.deepEqual(
      doc.results.filter((r) => !r.ok).map((r) => `${r.check} ${r.target}`),
      ["completion broken"],
    );
  });

  it("without pulumi reads Pulumi.<stack>.yaml and expects the Service DNS endpoints", async () => {
    const verify = scriptRunner(run, { PATH: "/usr/bin:/bin", DATABASE_URL: db });
    const res = await verify("--stack", "development", "--router-url", router.url);
    assert.equal(res.code, EXIT.unverified);
    assert.match(res.out, /config from Pulumi\.development\.yaml/);
    assert.match(res.out, /registry\s+qwen2-5-1-5b-instruct\s+FAIL\s+no row in development/);
  });

  it("--environment verifies the registry rows as they stand", async () => {
    const verify = scriptRunner(run, { PATH: "/usr/bin:/bin", DATABASE_URL: db });
    const res = await verify("--environment", "development", "--router-url", router.url);
    assert.equal(res.code, EXIT.unverified);
    assert.match(res.out, /completion\s+healthy\s+PASS/);
    assert.match(res.out, /denied\s+retired\s+PASS/);
    assert.match(res.out, /completion\s+broken\s+FAIL/);
  });

  it("explains usage errors with exit code 2 and documents its exit codes", async () => {
    const noDb = await scriptRunner(run, { PATH: "/usr/bin:/bin" })(
      "--stack",
      "development",
      "--router-url",
      router.url,
    );
    assert.equal(noDb.code, EXIT.usage);
    assert.match(noDb.err, /DATABASE_URL is not set/);
    const noRouter = await scriptRunner(run, { PATH: "/usr/bin:/bin", DATABASE_URL: db })(
      "--stack",
      "development",
    );
    assert.equal(noRouter.code, EXIT.usage);
    assert.match(noRouter.err, /no router URL for stack development: pass --router-url <url>/);
    const nothing = await scriptRunner(run, { DATABASE_URL: db })();
    assert.equal(nothing.code, EXIT.usage);
    const help = await scriptRunner(run, {})("--help");
    assert.equal(help.code, EXIT.ok);
    assert.match(
      help.out,
      /It fails \(exit 4\) when a check fails and also when there is nothing to verify/,
    );
    assert.ok(help.out.includes(EXIT_HELP), help.out);
  });
  describe("fails when nothing was verified (exit 4, a reason of its own)", () => {
    it("--environment with no rows: nothing to verify", async () => {
      const verify = scriptRunner(run, { PATH: "/usr/bin:/bin", DATABASE_URL: db });
      const res = await verify("--environment", "production", "--router-url", router.url);
      assert.equal(res.code, EXIT.unverified, res.out);
      assert.match(
        res.out,
        /coverage\s+production\s+FAIL\s+nothing to verify: no enabled model in production/,
      );
    });

    it("a stack whose enabled models have no ready rows, or that enables none", async () => {
      standIn.setConfig("development", stackConfig({ ghost: true, retired: false }));
      standIn.setOutputs("development", { routerUrl: router.url });
      const verify = scriptRunner(run, { ...standIn.env, DATABASE_URL: db });
      const unregistered = await verify("--stack", "development");
      assert.equal(unregistered.code, EXIT.unverified);
      assert.match(
        unregistered.out,
        /coverage\s+development\s+FAIL\s+nothing to verify: none of the 1 enabled models has a ready registry row in development/,
      );

      standIn.setConfig("development", stackConfig({ retired: false }));
      standIn.setOutputs("development", {
        routerUrl: router.url,
        models: { retired: { endpoint: "127.0.0.1:9" } },
      });
      const allOff = await verify("--stack", "development");
      assert.equal(allOff.code, EXIT.unverified);
      assert.match(allOff.out, /denied\s+retired\s+PASS/);
      assert.match(
        allOff.out,
        /coverage\s+development\s+FAIL\s+nothing to verify: no enabled model/,
      );
    });

    it("a router that serves another environment (its /readyz says which)", async () => {
      const staging = await startRouter({
        DATABASE_URL: db,
        ROUTER_ENVIRONMENT: "staging",
        ROUTER_SHUTDOWN_DELAY_MS: "0",
      });
      try {
        const verify = scriptRunner(run, { PATH: "/usr/bin:/bin", DATABASE_URL: db });
        const res = await verify("--environment", "development", "--router-url", staging.url);
        assert.equal(res.code, EXIT.unverified);
        assert.match(
          res.out,
          /environment\s+\S+\s+FAIL\s+the router serves staging, not development: wrong --router-url or port-forward/,
        );
      } finally {
        await staging.stop();
      }
    });

    it("zero checks pass nothing", () => {
      assert.equal(passed([]), false);
      assert.match(formatResults([]), /✗ no checks ran: nothing was verified/);
    });
  });

  it("a router URL without an http(s) scheme is a usage error naming where it came from", async () => {
    const verify = (env: Record<string, string>, ...args: string[]) =>
      scriptRunner(run, { PATH: "/usr/bin:/bin", DATABASE_URL: db, ...env })(...args);
    const flag = await verify({}, "--environment", "development", "--router-url", "127.0.0.1:8080");
    assert.equal(flag.code, EXIT.usage);
    assert.match(
      flag.err,
      /--router-url must be an http:\/\/ or https:\/\/ URL such as http:\/\/127\.0\.0\.1:8080 \(got '127\.0\.0\.1:8080'\)/,
    );
    // `localhost:8080` parses as a URL of scheme `localhost:`: still not http(s).
    const env = await verify({ ROUTER_URL: "localhost:8080" }, "--stack", "development");
    assert.equal(env.code, EXIT.usage);
    assert.match(
      env.err,
      /ROUTER_URL must be an http:\/\/ or https:\/\/ URL .*got 'localhost:8080'/,
    );

    const metrics = await verify(
      { ROUTER_METRICS_URL: "127.0.0.1:9090" },
      "--environment",
      "development",
      "--router-url",
      router.url,
    );
    assert.equal(metrics.code, EXIT.usage);
    assert.match(metrics.err, /ROUTER_METRICS_URL must be an http:\/\/ or https:\/\/ URL/);

    standIn.setConfig("development", stackConfig({ healthy: true }));
    standIn.setOutputs("development", { routerUrl: "vllm-router.llm-dev:80" });
    const output = await scriptRunner(run, { ...standIn.env, DATABASE_URL: db })(
      "--stack",
      "development",
    );
    assert.equal(output.code, EXIT.usage);
    assert.match(
      output.err,
      /the routerUrl output of stack development must be an http:\/\/ or https:\/\/ URL/,
    );
  });

  it("a stack pulumi cannot read (not logged in, no such stack) exits 3, not 'failed verification'", async () => {
    standIn.setConfig("development", stackConfig({ healthy: true, retired: false }));
    for (const code of ["3", "255"]) {
      const res = await scriptRunner(run, {
        ...standIn.env,
        PULUMI_STANDIN_LOGGED_OUT: code,
        DATABASE_URL: db,
      })("--stack", "development", "--router-url", router.url);
      assert.equal(res.code, EXIT.unavailable, res.err);
      assert.match(
        res.err,
        /cannot read stack development: `pulumi (config|stack output) --json --stack development` failed/,
      );
      assert.match(res.err, /PULUMI_ACCESS_TOKEN must be set for login/);
      assert.match(res.err, /Not logged in to the stack's backend: run `pulumi login`/);
      assert.equal(res.out, "", "no checks ran");
    }
    const missing = await scriptRunner(run, { ...standIn.env, DATABASE_URL: db })(
      "--stack",
      "no-such-stack",
      "--router-url",
      router.url,
    );
    assert.equal(missing.code, EXIT.unavailable);
    assert.match(missing.err, /no stack named 'no-such-stack' found/);
    assert.doesNotMatch(missing.err, /pulumi login/);
  });
});
