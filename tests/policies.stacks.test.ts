// The whole policy pack over every real stack run under Pulumi mocks, and over a
// deliberately broken production config that passes config validation but not the pack.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { Diagnostic, evaluatePolicies } from "../policies/evaluate";
import { TYPES } from "../policies/kube";
import { packConfig } from "../policies/packConfig";
import { rules } from "../policies/rules";
import {
  buildEnvironmentObjects,
  buildRouterObjects,
  buildRouterRedisSecret,
  buildRouterRegistrySecret,
  ROUTER_REGISTRY_SECRET_NAME,
} from "../components/manifests";
import { durationSeconds, stackForPolicies, withPulumiStack } from "./support/policyStacks";
import { stackEnvironment, loadStackSpec } from "../components/spec";
import { STACK_FILES } from "./support/stackFiles";

const STACKS = STACK_FILES;

const show = (ds: Diagnostic[]) => ds.map((d) => `[${d.policy}] ${d.message}`).join("\n");

describe("policy pack on the real stacks (program under mocks)", () => {
  for (const stack of STACKS) {
    it(`${stack}: every rule passes`, async () => {
      const spec = loadStackSpec(stack);
      const { resources } = await stackForPolicies(stack);
      // The stack has what the rules look at; an empty stack would pass vacuously.
      for (const type of [
        TYPES.deployment,
        TYPES.service,
        TYPES.networkPolicy,
        TYPES.resourceQuota,
        ...(spec.monitoring.serviceMonitor ? [TYPES.serviceMonitor] : []),
      ]) {
        assert.ok(
          resources.some((r) => r.type === type),
          `${stack} has a ${type}`,
        );
      }
      assert.ok(
        resources.some((r) => r.type.startsWith(TYPES.dynamic)),
        "registry entries",
      );
      const apps = resources
        .filter((r) => r.type === TYPES.deployment)
        .map(
          (r) =>
            (r.inputs.metadata as { labels: Record<string, string> }).labels[
              "app.kubernetes.io/name"
            ],
        );
      assert.ok(apps.includes("vllm") && apps.includes("vllm-router"), `deployments: ${apps}`);
      // The headless pods Services are judged with the rest (selectors, coverage).
      const headless = resources.filter(
        (r) =>
          r.type === TYPES.service &&
          (r.inputs.spec as { clusterIP?: string }).clusterIP === "None",
      );
      assert.equal(headless.length, spec.models.length, "a pods Service per model");
      // The file `pulumi up --policy-pack-config policies/config/<stack>.json` reads.
      const config = JSON.parse(
        fs.readFileSync(path.join(__dirname, "..", "policies", "config", `${stack}.json`), "utf8"),
      );
      // Bound to the stack's own environment (the stack name decides it, as in the program).
      assert.deepEqual(
        config,
        packConfig(stackEnvironment(stack)!),
        `policies/config/${stack}.json`,
      );
      const found = await withPulumiStack(stack, () => evaluatePolicies(rules, resources, config));
      // A stack without ServiceMonitors (no Prometheus operator, e.g. ci on kind) is only warned,
      // once per model, and only where that rule is advisory (development).
      const expected = spec.monitoring.serviceMonitor
        ? []
        : spec.models.map((m) => ({ policy: "service-monitor-per-model", model: m.name }));
      assert.deepEqual(
        found.map((d) => ({
          policy: d.policy,
          model: spec.models.find((m) => d.message.includes(`/${m.name}-${spec.environment}:`))
            ?.name,
        })),
        expected,
        show(found),
      );
      assert.ok(
        found.every((d) => d.enforcementLevel === "advisory"),
        show(found),
      );
    });
  }

  for (const stack of STACKS) {
    it(`${stack}: the router's objects from their builders pass every rule`, async () => {
      const spec = loadStackSpec(stack);
      const image = `registry.example.com/vllm-router@sha256:${"a".repeat(64)}`;
      const objects = [
        ...Object.values(buildEnvironmentObjects(spec)),
        ...Object.values(
          buildRouterObjects(spec, { image, registrySecretName: ROUTER_REGISTRY_SECRET_NAME }),
        ),
        buildRouterRegistrySecret(spec, "postgresql://router:***@registry:5432/model_registry"),
        spec.redis.url ? buildRouterRedisSecret(spec, spec.redis.url) : undefined,
      ].filter((o) => o !== undefined);
      const resources = objects.map((o) => ({
        type: `kubernetes:${o.apiVersion.includes("/") ? o.apiVersion : `core/${o.apiVersion}`}:${o.kind}`,
        name: `${o.kind}-${o.metadata.name}`,
        inputs: o as unknown as Record<string, unknown>,
      }));
      assert.ok(resources.some((r) => r.type === TYPES.deployment));
      const found = await evaluatePolicies(rules, resources, packConfig(spec.environment));
      assert.deepEqual(found, [], show(found));
    });
  }

  it("reads the model Deployments' custom timeouts from the registrations", async () => {
    assert.equal(durationSeconds("1h30m"), 5400);
    const { resources } = await stackForPolicies("production");
    const models = resources.filter(
      (r) =>
        r.type === TYPES.deployment &&
        (r.inputs.metadata as { labels: Record<string, string> }).labels[
          "app.kubernetes.io/name"
        ] === "vllm",
    );
    assert.equal(models.length, 2);
    for (const d of models) assert.ok((d.opts?.customTimeouts?.createSeconds ?? 0) > 600, d.name);
  });

  it("rejects a broken production config with messages naming object and fix", async () => {
    const { resources } = await stackForPolicies("production", {
      overrides: {
        // Valid config, unsafe fleet: no scraping (so no alerts). A memory limit below the request
        // no longer gets this far: the config refuses it (tests/config.test.ts).
        monitoring: { serviceMonitor: false },
        capacity: {
          "llama-3-1-8b-instruct": {
            replicas: 3,
            gpu: { count: 1, product: "NVIDIA-A100-SXM4-80GB" },
            resources: { cpu: "8", memory: "48Gi" },
            cache: { accessMode: "ReadWriteMany" },
            startupBudgetMinutes: 15,
          },
          "qwen2-5-32b-instruct-awq": {
            replicas: 2,
            gpu: { count: 2, product: "NVIDIA-A100-SXM4-80GB" },
            resources: { cpu: "16", memory: "96Gi" },
            cache: { accessMode: "ReadWriteMany" },
            startupBudgetMinutes: 30,
          },
        },
      },
    });
    const found = await evaluatePolicies(rules, resources, packConfig("production"));
    assert.ok(found.length > 0, "the pack rejects it");
    assert.ok(
      found.every((d) => d.enforcementLevel === "mandatory"),
      show(found),
    );
    const byPolicy = (name: string) => found.filter((d) => d.policy === name).map((d) => d.message);
    // Sorted: resources reach the pack in registration order, which dependencies decide.
    const monitors = byPolicy("service-monitor-per-model").sort();
    assert.equal(monitors.length, 2, show(found));
    assert.match(
      monitors[0],
      /^Deployment llm-production\/llama-3-1-8b-instruct-production: no ServiceMonitor \(monitoring.coreos.com\/v1\) selects its Service .*Set monitoring.serviceMonitor: true/,
    );
    assert.match(monitors[1], /^Deployment llm-production\/qwen2-5-32b-instruct-awq-production/);
    assert.deepEqual(
      [...new Set(found.map((d) => d.policy))].sort(),
      ["service-monitor-per-model"],
      show(found),
    );
  });
});
