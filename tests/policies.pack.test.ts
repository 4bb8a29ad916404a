// The policy pack as a whole: its rules, per-environment enforcement, preview unknowns, and the
// PolicyPack entry point the Pulumi CLI runs.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { unknown } from "@pulumi/pulumi";
import * as naming from "../components/spec";
import { evaluatePolicies } from "../policies/evaluate";
import * as fleetNames from "../policies/fleet";
import { TYPES } from "../policies/kube";
import { ADVISORY_IN_DEVELOPMENT, packConfig } from "../policies/packConfig";
import { rules } from "../policies/rules";
import { MODEL, fleet, fleetWith } from "./support/policyFixtures";

const POLICIES_DIR = path.resolve(__dirname, "../policies");

const RULE_NAMES = [
  "gpu-requests-equal-limits",
  "gpu-node-selector",
  "probes-configured",
  "startup-budget-covered",
  "image-pinned-by-digest",
  "min-replicas",
  "pdb-for-replicated-workloads",
  "network-policy-selects-models",
  "service-monitor-per-model",
  "pod-security-restricted",
  "container-resources",
  "service-links-disabled",
  "registry-endpoint-matches-service",
  "gpu-quota",
  "replicas-spread-across-nodes",
  "ephemeral-storage-requests",
  "autoscaled-replicas-unset",
  "selectors-match-pods",
  "stack-environment",
];

describe("policy pack", () => {
  it("has the 19 rules the README lists, each described, with remediation and config", () => {
    assert.deepEqual(
      rules.map((r) => r.name),
      RULE_NAMES,
    );
    for (const r of rules) {
      assert.ok(r.description.length > 20, `${r.name} description`);
      assert.ok(r.remediationSteps, `${r.name} remediation`);
      assert.equal(r.enforcementLevel, "mandatory", r.name);
      assert.ok(r.configSchema?.properties.environments, `${r.name} environments config`);
    }
  });

  it("is documented: the README's policy section names every rule and their number", () => {
    const readme = fs.readFileSync(path.resolve(__dirname, "../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Policy pack and CI"));
    assert.match(section, new RegExp(`Its ${rules.length} rules`));
    for (const r of rules) assert.ok(section.includes(`\`${r.name}\``), `README names ${r.name}`);
    for (const name of ADVISORY_IN_DEVELOPMENT) {
      assert.match(section.split("only warn")[0].slice(-300), new RegExp(name), `${name} warns`);
    }
  });

  it("reports nothing on a compliant fleet", async () => {
    assert.deepEqual(await evaluatePolicies(rules, fleet(), packConfig("production")), []);
  });

  it("is mandatory in staging and production and advisory in development for chosen rules", () => {
    for (const env of ["staging", "production"] as const) {
      for (const [name, c] of Object.entries(packConfig(env))) {
        // stack-environment also names the environment the file is for.
        const extra = name === "stack-environment" ? { environment: env } : {};
        assert.deepEqual(c, { enforcementLevel: "mandatory", ...extra }, `${env} ${name}`);
      }
    }
    const dev = packConfig("development");
    for (const name of RULE_NAMES) {
      const expected = ADVISORY_IN_DEVELOPMENT.includes(name) ? "advisory" : "mandatory";
      const extra = name === "stack-environment" ? { environment: "development" } : {};
      assert.deepEqual(dev[name], { enforcementLevel: expected, ...extra }, name);
    }
    assert.deepEqual(
      ADVISORY_IN_DEVELOPMENT.filter((n) => !RULE_NAMES.includes(n)),
      [],
    );
  });

  it("ships the per-environment pack config files the workflows pass with --policy-pack-config", () => {
    for (const env of naming.ENVIRONMENTS) {
      const file = path.join(POLICIES_DIR, "config", `${env}.json`);
      assert.deepEqual(
        JSON.parse(fs.readFileSync(file, "utf8")),
        packConfig(env),
        `${file} is stale: regenerate it from packConfig("${env}")`,
      );
    }
  });

  it("downgrades development-only findings to advisory under the development config", async () => {
    const dev = fleet().map((r) => {
      const inputs = structuredClone(r.inputs) as Record<string, unknown>;
      const text = JSON.stringify(inputs).replaceAll('"production"', '"development"');
      return { ...r, inputs: JSON.parse(text) };
    });
    const broken = dev.map((r) => {
      if (r.type !== TYPES.deployment || !r.name.startsWith(MODEL)) return r;
      const d = structuredClone(r.inputs) as {
        spec: {
          template: { spec: { containers: { resources?: unknown; livenessProbe?: unknown }[] } };
        };
      };
      delete d.spec.template.spec.containers[0].resources;
      delete d.spec.template.spec.containers[0].livenessProbe;
      return { ...r, inputs: d };
    });
    const found = await evaluatePolicies(rules, broken, packConfig("development"));
    const levels = Object.fromEntries(found.map((d) => [d.policy, d.enforcementLevel]));
    assert.equal(levels["container-resources"], "advisory");
    assert.equal(levels["probes-configured"], "mandatory");
    // Without resources the pod requests no GPU: the GPU rule blocks even in development.
    assert.equal(levels["gpu-requests-equal-limits"], "mandatory");
  });

  it("reports values unknown during preview as advisory, naming the object", async () => {
    const resources = fleetWith("vllm-router", (r) => {
      r.spec.template.spec.containers[0].image = unknown;
    });
    const found = await evaluatePolicies(rules, resources, packConfig("production"));
    const digest = found.filter((d) => d.policy === "image-pinned-by-digest");
    assert.equal(digest.length, 1, JSON.stringify(found));
    assert.equal(digest[0].enforcementLevel, "advisory");
    assert.match(
      digest[0].message,
      /can't run policy 'image-pinned-by-digest' during preview: Deployment llm-production\/vllm-router-production: string value at .spec.template.spec.containers.0.image can't be known during preview; the check runs again on 'pulumi up'/,
    );
    assert.ok(
      found.every((d) => d.enforcementLevel === "advisory"),
      `only advisories: ${JSON.stringify(found)}`,
    );
  });

  it("names the resource whose unknown value stops a stack rule in preview", async () => {
    const resources = fleetWith("gpu-budget", (q) => {
      q.spec.hard["requests.nvidia.com/gpu"] = unknown;
    });
    const found = await evaluatePolicies(rules, resources, packConfig("production"));
    assert.deepEqual(
      found.map((d) => [d.policy, d.enforcementLevel]),
      [["gpu-quota", "advisory"]],
    );
    assert.match(
      found[0].message,
      /^can't run policy 'gpu-quota' during preview: stack rule: ResourceQuota gpu-budget: string value at .spec.hard.requests.nvidia.com\/gpu can't be known during preview/,
    );
  });

  it("never reads other resources' values, which may be unknown in preview", async () => {
    const resources = fleet().concat(
      {
        type: "docker-build:index:Image",
        name: "router-image",
        inputs: { spec: unknown, tags: unknown },
      },
      {
        type: "pulumi:providers:kubernetes",
        name: "k8s",
        inputs: { metadata: unknown, kubeconfig: unknown },
      },
      {
        type: "pulumi-nodejs:dynamic/vllm-registry:RegistryMigrations",
        name: "m",
        inputs: { modelName: undefined, x: unknown },
      },
    );
    assert.deepEqual(await evaluatePolicies(rules, resources, packConfig("production")), []);
  });

  it("mirrors the label and naming contract of components/spec/naming.ts", () => {
    const model = naming.modelLabels("m", "staging");
    assert.equal(model[fleetNames.NAME_LABEL], fleetNames.MODEL_APP);
    assert.equal(model[fleetNames.ENVIRONMENT_LABEL], "staging");
    assert.equal(model[fleetNames.MODEL_LABEL], "m");
    assert.equal(naming.routerLabels("staging")[fleetNames.NAME_LABEL], fleetNames.ROUTER_APP);
    assert.equal(fleetNames.VLLM_PORT, naming.VLLM_PORT);
    assert.equal(
      naming.modelEndpoint("m", "staging", "ns"),
      `m-staging.ns.svc.cluster.local:${fleetNames.VLLM_PORT}`,
    );
  });

  it("has a PulumiPolicy.yaml and a versioned package the CLI can load", () => {
    const yaml = fs.readFileSync(path.join(POLICIES_DIR, "PulumiPolicy.yaml"), "utf8");
    assert.match(yaml, /^runtime: nodejs$/m);
    const pkg = JSON.parse(fs.readFileSync(path.join(POLICIES_DIR, "package.json"), "utf8"));
    assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
    assert.ok(pkg.dependencies["@pulumi/policy"]);
  });

  it("serves the pack from policies/index.ts the way the analyzer starts it", async function () {
    this.timeout(30000);
    // The analyzer runs the pack in its directory and reads the gRPC port from stdout.
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "index.ts"], {
      cwd: POLICIES_DIR,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    try {
      const port = await new Promise<string>((resolve, reject) => {
        child.stdout.once("data", (d) => resolve(String(d).trim()));
        child.once("exit", (code) => reject(new Error(`pack exited ${code}: ${stderr}`)));
      });
      assert.match(port, /^\d+$/);
    } finally {
      child.kill();
    }
  });
});
