import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import * as pulumi from "@pulumi/pulumi";
import {
  parseRegistryStackConfig,
  parseStackConfig,
  PROJECT,
  PROJECT_DIR,
  REGISTRY_PROJECT,
  setSecretKeys,
  StackConfigError,
  loadStackSpec,
  rawConfig,
  stackFileConfig,
} from "../components/spec";
import { rawStackFile } from "./support/stackFiles";
import { checkRegistryStack } from "../components/resources";
import { makeTestPki, TestPki } from "./support/pki";
import { registryStackOutputsFor } from "./support/program";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The production stack file as parsed config, for mutating into invalid variants. */
function production(): Raw {
  return rawStackFile("production");
}

function problemsOf(mutate: (c: Raw) => void, base: () => Raw = production): string[] {
  const cfg = structuredClone(base());
  mutate(cfg);
  try {
    parseStackConfig(cfg);
  } catch (e) {
    assert.ok(e instanceof StackConfigError, `expected StackConfigError, got ${e}`);
    return e.problems;
  }
  assert.fail("config was accepted");
}

describe("stack config", () => {
  it("parses the three real stacks with Pulumi.yaml defaults merged", () => {
    for (const stack of ["development", "staging", "production"]) {
      const spec = loadStackSpec(stack);
      assert.equal(spec.environment, stack);
      assert.equal(
        spec.monitoring.prometheusRelease,
        "kube-prometheus-stack",
        "default from Pulumi.yaml",
      );
      assert.equal(spec.registry.database, "model_registry", "default from Pulumi.yaml");
      for (const m of spec.models) {
        assert.ok(m.servedModelName);
        assert.deepEqual(m.tolerations[0], {
          key: "nvidia.com/gpu",
          operator: "Exists",
          effect: "NoSchedule",
        });
      }
    }
  });

  for (const file of ["Pulumi.yaml", "registry-stack/Pulumi.yaml"])
    it(`declares project config in ${file} the way the CLI accepts it`, () => {
      const project = parse(fs.readFileSync(path.join(__dirname, "..", file), "utf8"));
      for (const [key, decl] of Object.entries(
        project.config as Record<string, Record<string, unknown>>,
      )) {
        if (decl.type !== undefined) {
          assert.ok(
            ["string", "integer", "boolean", "array", "object"].includes(decl.type as string),
            key,
          );
        }
        if (decl.type === "array") assert.ok(decl.items, `${key}: an array type needs items`);
        assert.ok(
          !("default" in decl && "value" in decl),
          `${key}: default and value are exclusive`,
        );
        if (typeof decl.value === "object" || typeof decl.default === "object") {
          assert.equal(decl.type, undefined, `${key}: structured values cannot be typed`);
        }
      }
    });

  // The CLI fails every stack that lacks a declared key without a default ("Stack '<name>' is
  // missing configuration value"; pulumi/pulumi sdk/go/common/workspace
  // ValidateStackConfigAndApplyProjectConfig), so only what every stack must set is declared so.
  for (const [dir, project, everywhere] of [
    [".", PROJECT, ["registryAdminPassword"]],
    ["registry-stack", REGISTRY_PROJECT, ["adminPassword"]],
  ] as const)
    it(`declares without a default only what every stack of ${project} sets`, () => {
      const root = path.join(__dirname, "..", dir);
      const declared = parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8"))
        .config as Record<string, Record<string, unknown>>;
      const required = Object.entries(declared)
        .filter(([, d]) => !("default" in d) && !("value" in d))
        .map(([k]) => k);
      const stacks = fs.readdirSync(root).filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f));
      assert.ok(stacks.length > 0);
      for (const key of required) {
        if ((everywhere as readonly string[]).includes(key)) continue; // a secret set per stack (README)
        for (const file of stacks) {
          const config = parse(fs.readFileSync(path.join(root, file), "utf8")).config ?? {};
          assert.ok(`${project}:${key}` in config, `${file} must set the required ${key}`);
        }
      }
    });

  it("keeps secrets out of the spec", () => {
    const raw = rawConfig({
      "vllm-fleet:registryAdminPassword": "s3cret",
      "vllm-fleet:routerImageRegistryPassword": "ghp_s3cret",
      "vllm-fleet:namespace": "x",
    });
    assert.deepEqual(raw, { namespace: "x" });
  });

  it("reports several problems together, one line each, with the fix", () => {
    const problems = problemsOf((c) => {
      c.capacity["llama-3-1-8b-instruct"].replicas = 1;
      c.releases[1].image = "vllm/vllm-openai:latest";
    });
    assert.equal(problems.length, 2);
    const err = new StackConfigError(problems);
    assert.match(err.message, /2 problems/);
    assert.match(err.message, /pulumi config set --path/);
  });

  const invalid: [string, (c: Raw) => void, RegExp, (() => Raw)?][] = [
    [
      "unknown environment",
      (c) => (c.environment = "prod"),
      /^environment: environment must be one of development, staging, production/,
    ],
    ["missing namespace", (c) => delete c.namespace, /^namespace: is required/],
    [
      "namespace not a DNS label",
      (c) => (c.namespace = "LLM_Prod"),
      /^namespace: namespace must be a DNS label/,
    ],
    ["no releases", (c) => (c.releases = []), /^releases: releases must list at least one model/],
    [
      "model name not DNS-safe",
      (c) => (c.releases[0].name = "Llama_3"),
      /^releases\[0\]\.name: name must be a DNS label/,
    ],
    [
      "model name too long for a Service",
      (c) => {
        const name = "a".repeat(60);
        c.capacity[name] = c.capacity[c.releases[0].name];
        delete c.capacity[c.releases[0].name];
        c.releases[0].name = name;
        c.releases[1].fallbacks = [];
      },
      /^releases\[0\]\.name: Service name '.*' is 71 characters \(max 63\)/,
    ],
    [
      "duplicate model",
      (c) => c.releases.push(structuredClone(c.releases[0])),
      /^releases\[2\]\.name: 'llama-3-1-8b-instruct' is listed twice/,
    ],
    [
      "zero GPUs",
      (c) => (c.capacity["llama-3-1-8b-instruct"].gpu.count = 0),
      /^capacity\.llama-3-1-8b-instruct\.gpu\.count: gpu\.count must be an integer >= 1/,
    ],
    [
      "fractional GPUs",
      (c) => (c.capacity["llama-3-1-8b-instruct"].gpu.count = 1.5),
      /gpu\.count: gpu\.count must be an integer >= 1/,
    ],
    [
      "a tensorParallelSize left in a stack file (gpu.count is the one number)",
      (c) => (c.releases[1].args.tensorParallelSize = 2),
      /^releases\[1\]\.args\.tensorParallelSize: is no longer a setting: vLLM's --tensor-parallel-size is capacity\.<model>\.gpu\.count \(1 for a model without gpu\); remove it and set gpu\.count to 2 if that is what you meant$/,
    ],
    [
      "gpuMemoryUtilization above 1",
      (c) => (c.releases[0].args.gpuMemoryUtilization = 1.5),
      /^releases\[0\]\.args\.gpuMemoryUtilization: gpuMemoryUtilization must be in \(0, 1\]/,
    ],
    [
      "release without capacity",
      (c) => delete c.capacity["qwen2-5-32b-instruct-awq"],
      /^capacity\.qwen2-5-32b-instruct-awq: is required/,
    ],
    [
      "capacity for an unknown model",
      (c) => (c.capacity["mistral-7b"] = { gpu: { count: 1 } }),
      /^capacity\.mistral-7b: no release named 'mistral-7b'/,
    ],
    [
      "fallback to an unknown model",
      (c) => (c.releases[0].fallbacks = ["gpt-4"]),
      /^releases\[0\]\.fallbacks\[0\]: 'gpt-4' is not a model of this stack/,
    ],
    [
      "fallback to itself",
      (c) => (c.releases[0].fallbacks = ["llama-3-1-8b-instruct"]),
      /^releases\[0\]\.fallbacks\[0\]: a model cannot fall back to itself/,
    ],
    [
      "production image by tag",
      (c) => (c.releases[0].image = "vllm/vllm-openai:v0.11.0"),
      /^releases\[0\]\.image: production images must be pinned by digest; use 'vllm\/vllm-openai:v0.11.0@sha256:<digest>'/,
    ],
    [
      "production revision missing",
      (c) => delete c.releases[0].revision,
      /^releases\[0\]\.revision: production models must pin the model revision/,
    ],
    [
      "production single replica",
      (c) => (c.capacity["llama-3-1-8b-instruct"].replicas = 1),
      /^capacity\.llama-3-1-8b-instruct\.replicas: production needs at least 2 replicas/,
    ],
    [
      "GPUs over quota",
      (c) => (c.gpuQuota = 4),
      /^gpuQuota: enabled models request 7 GPUs but the quota is 4/,
    ],
    [
      "startup budget too short",
      (c) => (c.capacity["llama-3-1-8b-instruct"].startupBudgetMinutes = 1),
      /startupBudgetMinutes: startupBudgetMinutes must be at least 2/,
    ],
    [
      "cache size not a quantity",
      (c) => (c.capacity["llama-3-1-8b-instruct"].cache.size = "lots"),
      /^capacity\.llama-3-1-8b-instruct\.cache\.size: cache\.size must be a Kubernetes quantity/,
    ],
    [
      "misspelt key",
      (c) => (c.capacity["llama-3-1-8b-instruct"].replica = 3),
      /^capacity\.llama-3-1-8b-instruct: unknown key 'replica'; remove it or fix the spelling/,
    ],
    [
      "invalid toleration effect",
      (c) => (c.capacity["llama-3-1-8b-instruct"].tolerations = [{ key: "x", effect: "Never" }]),
      /tolerations\[0\]\.effect/,
    ],
    [
      "production router with one replica",
      (c) => (c.router = { replicas: 1 }),
      /^router\.replicas: production needs at least 2 router replicas/,
    ],
    [
      "an unknown routing mode",
      (c) => (c.router.routing = { mode: "random" }),
      /^router\.routing\.mode: must be one of service, least-loaded, scored: /,
    ],
    [
      "an affinity load factor of 1 (no room above the mean: the router refuses it)",
      (c) => (c.router.routing = { mode: "scored", affinityLoadFactor: 1 }),
      /^router\.routing\.affinityLoadFactor: must be a number above 1 and at most 10 \(the router refuses others\)/,
    ],
    [
      "an affinity load factor above 10",
      (c) => (c.router.routing = { mode: "scored", affinityLoadFactor: 11 }),
      /^router\.routing\.affinityLoadFactor: must be a number above 1 and at most 10/,
    ],
    [
      "an affinity load factor outside mode scored, where nothing reads it",
      (c) => (c.router.routing = { mode: "least-loaded", affinityLoadFactor: 2 }),
      /^router\.routing\.affinityLoadFactor: only applies in mode scored \(router\.routing\.mode is 'least-loaded'\); remove it, or set router\.routing\.mode: scored$/,
    ],
    [
      "a misspelt routing key",
      (c) => (c.router.routing = { mod: "scored" }),
      /^router\.routing: unknown key 'mod'; remove it or fix the spelling/,
    ],
    [
      "production registry without TLS",
      (c) => (c.registry.sslmode = "disable"),
      /^registry\.sslmode: production must not disable TLS/,
    ],
    [
      "registry without its registry stack",
      (c) => delete c.registry.stack,
      /^registry\.stack: is required: the registry stack this environment uses, e\.g\. acme-ml\/vllm-registry\/shared$/,
    ],
    [
      "registry stack that is not a fully-qualified vllm-registry stack",
      (c) => (c.registry.stack = "shared"),
      /^registry\.stack: must be a fully-qualified stack name <organization>\/vllm-registry\/<stack>/,
    ],
    [
      "registry.manageDatabase (replaced by the registry stack)",
      (c) => (c.registry.manageDatabase = false),
      /^registry\.manageDatabase: is no longer supported: the registry stack \(registry-stack\/, read through registry\.stack\) owns the database and its migrations; remove this key$/,
    ],
    [
      "router image by tag",
      (c) => (c.router = { replicas: 2, image: "ghcr.io/acme/vllm-router:v1" }),
      /^router\.image: must be pinned by digest \('ghcr\.io\/acme\/vllm-router:v1@sha256:<digest>'\)/,
    ],
    [
      "router without image or registry",
      (c) => (c.router = { replicas: 2 }),
      /^router\.imageRegistry: is required to build and push the router image/,
      () => rawStackFile("staging"),
    ],
    [
      "production router built instead of promoted",
      (c) => (c.router = { replicas: 2, imageRegistry: "ghcr.io/acme/platform" }),
      /^router\.image: production never builds the router; set it to the image staging runs, pinned by digest \(staging's routerImage output/,
    ],
    [
      "bad redis url",
      (c) => (c.redis = { url: "localhost:6379" }),
      /^redis\.url: redis\.url must start with redis:\/\//,
    ],
    [
      // pulumi-kubernetes provider/pkg/provider/provider.go renderYaml writes Secrets in plain
      // text (its docs: "any secret values used in these resources will be rendered in
      // plaintext") and Create returns without awaiting anything.
      "the provider's renderYamlToDirectory",
      (c) => (c.kubernetes = { renderYamlToDirectory: "gitops/" }),
      /^kubernetes\.renderYamlToDirectory: not supported: .*Secrets .*plain text.*mark models ready.*`npm run render -- --stack <stack>`/,
    ],
    [
      "a ReadWriteOnce cache shared by several replicas",
      (c) => delete c.capacity["llama-3-1-8b-instruct"].cache.accessMode,
      /^capacity\.llama-3-1-8b-instruct\.cache\.accessMode: ReadWriteOnce attaches the cache to one node but replicas is 3; set cache\.accessMode: ReadWriteMany/,
    ],
    [
      "an unknown cache access mode",
      (c) => (c.capacity["llama-3-1-8b-instruct"].cache.accessMode = "ReadOnlyMany"),
      /^capacity\.llama-3-1-8b-instruct\.cache\.accessMode: cache\.accessMode must be one of ReadWriteOnce, ReadWriteMany/,
    ],
    [
      "an enabled model with zero replicas",
      (c) => (c.capacity["llama-3-1-8b-instruct"].replicas = 0),
      /^capacity\.llama-3-1-8b-instruct\.replicas: 0 replicas would register the model as ready with no pod serving it; set capacity\.llama-3-1-8b-instruct\.enabled: false/,
      () => rawStackFile("staging"),
    ],
    [
      "a meta-llama model not marked gated",
      (c) => delete c.releases[0].gated,
      /^releases\[0\]\.gated: meta-llama\/Llama-3\.1-8B-Instruct is a gated Hugging Face model; set gated: true/,
    ],
    [
      "revision not a commit hash",
      (c) => (c.releases[0].revision = "main"),
      /^releases\[0\]\.revision: must be a 40-character commit hash/,
      () => rawStackFile("staging"),
    ],
  ];
  for (const [what, mutate, expected, base] of invalid) {
    it(`rejects ${what}`, () => {
      const problems = problemsOf(mutate, base);
      assert.ok(
        problems.some((p) => expected.test(p)),
        `expected ${expected} in:\n${problems.join("\n")}`,
      );
    });
  }

  it("requires huggingFaceToken for gated releases when the program knows the secrets", () => {
    const staging = rawStackFile("staging");
    assert.throws(
      () => parseStackConfig(staging, { setSecrets: ["registryAdminPassword"] }),
      (e: StackConfigError) =>
        e.problems.length === 1 &&
        /^huggingFaceToken: is required because llama-3-1-8b-instruct is gated on Hugging Face; set it with `pulumi config set --secret huggingFaceToken` \(it prompts, or reads stdin;/.test(
          e.problems[0],
        ),
    );
    assert.ok(
      parseStackConfig(staging, { setSecrets: ["registryAdminPassword", "huggingFaceToken"] }),
    );
    assert.ok(parseStackConfig(staging), "offline tools never see secrets and skip the check");
    const dev = rawStackFile("development");
    assert.ok(
      parseStackConfig(dev, { setSecrets: ["registryAdminPassword"] }),
      "no gated release, no token needed",
    );
  });

  it("requires routerImageRegistryPassword when the program builds with a registry login", () => {
    const staging = rawStackFile("staging") as Raw;
    staging.router = { ...staging.router, imageRegistryUsername: "ci-bot" };
    const secrets = ["registryAdminPassword", "huggingFaceToken"];
    assert.throws(
      () => parseStackConfig(staging, { setSecrets: secrets }),
      (e: StackConfigError) =>
        e.problems.length === 1 &&
        /^routerImageRegistryPassword: is required to push the router image as router\.imageRegistryUsername 'ci-bot'; set it with `pulumi config set --secret routerImageRegistryPassword` \(it prompts, or reads stdin;/.test(
          e.problems[0],
        ),
    );
    assert.ok(
      parseStackConfig(staging, { setSecrets: [...secrets, "routerImageRegistryPassword"] }),
    );
    const prebuilt = { ...staging.router, image: `ghcr.io/a/vllm-router@sha256:${"f".repeat(64)}` };
    assert.ok(
      parseStackConfig({ ...staging, router: prebuilt }, { setSecrets: secrets }),
      "nothing to push",
    );
  });

  it("knows which secrets are set without reading their values", () => {
    const all = {
      "vllm-fleet:huggingFaceToken": "hf_secret",
      "vllm-fleet:namespace": "x",
      "other:registryAdminPassword": "p",
    };
    assert.deepEqual(setSecretKeys(all), ["huggingFaceToken"]);
    assert.deepEqual(rawConfig(all), { namespace: "x" }, "the token stays out of the spec");
  });

  it("does not declare the optional huggingFaceToken (the CLI would require it) nor renderYamlToDirectory", () => {
    const text = fs.readFileSync(path.join(__dirname, "..", "Pulumi.yaml"), "utf8");
    assert.equal(parse(text).config.huggingFaceToken, undefined);
    assert.doesNotMatch(text, /renderYamlToDirectory/);
  });

  it("accepts development images by tag and single replicas", () => {
    const spec = loadStackSpec("development");
    assert.equal(spec.models[0].replicas, 1);
    assert.doesNotMatch(spec.models[0].image, /@sha256:/);
  });
});

describe("registry.sslrootcert (the registry's private CA)", () => {
  let pki: TestPki;
  /** A file in the PKI directory, as a path relative to the project directory. */
  let relative: (name: string) => string;

  before(() => {
    pki = makeTestPki();
    relative = (name) => path.relative(PROJECT_DIR, path.join(pki.dir, name));
    fs.writeFileSync(
      path.join(pki.dir, "broken.crt"),
      "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
  });
  after(() => fs.rmSync(pki.dir, { recursive: true, force: true }));

  const withRegistry = (registry: Raw) => (c: Raw) => (c.registry = { ...c.registry, ...registry });

  it("reads the PEM relative to the project directory and keeps the path for the provider", () => {
    const cfg = production();
    cfg.registry.sslrootcert = relative("ca.crt");
    const spec = parseStackConfig(cfg);
    assert.equal(spec.registry.sslrootcert, relative("ca.crt"));
    assert.equal(spec.registry.caCertificate, pki.ca);
  });

  it("rejects a missing file, naming the path and the fix", () => {
    const problems = problemsOf(withRegistry({ sslrootcert: "certs/nope.pem" }));
    assert.ok(
      problems.includes(
        "registry.sslrootcert: cannot read 'certs/nope.pem' (ENOENT); give the path of the CA's PEM file relative to the project directory",
      ),
      problems.join("\n"),
    );
  });

  it("rejects a file that is not a PEM certificate (a key) or does not parse (X509Certificate)", () => {
    const key = problemsOf(withRegistry({ sslrootcert: relative("server.key") }));
    assert.ok(
      key.some((p) =>
        /^registry\.sslrootcert: '.*server\.key' is not a PEM certificate; use the CA certificate/.test(
          p,
        ),
      ),
      key.join("\n"),
    );
    const broken = problemsOf(withRegistry({ sslrootcert: relative("broken.crt") }));
    assert.ok(
      broken.some((p) => /is not a PEM certificate \(certificate 1 does not parse\)/.test(p)),
      broken.join("\n"),
    );
  });

  it("requires it for verify-ca (libpq needs a root certificate; public CAs make verify-ca moot)", () => {
    const problems = problemsOf(withRegistry({ sslmode: "verify-ca" }));
    assert.ok(
      problems.some((p) => /^registry\.sslrootcert: sslmode verify-ca needs the CA/.test(p)),
      problems.join("\n"),
    );
  });

  it("rejects it with sslmode disable, where it would do nothing", () => {
    const problems = problemsOf(
      withRegistry({ sslmode: "disable", sslrootcert: relative("ca.crt") }),
      () => rawStackFile("development"),
    );
    assert.ok(
      problems.includes(
        "registry.sslrootcert: has no effect with sslmode disable; remove it or use verify-full",
      ),
      problems.join("\n"),
    );
  });
});

describe("registry stack config (registry-stack/)", () => {
  const dir = path.join(__dirname, "..", "registry-stack");
  const load = (stack: string) =>
    rawConfig(stackFileConfig(stack, dir, REGISTRY_PROJECT), REGISTRY_PROJECT);

  it("parses the shared and ci stacks with their Pulumi.yaml defaults", () => {
    assert.deepEqual(parseRegistryStackConfig(load("shared")), {
      host: "model-registry.db.acme-ml.internal",
      port: 5432,
      database: "model_registry",
      adminUser: "postgres",
      sslmode: "verify-full",
    });
    assert.deepEqual(parseRegistryStackConfig(load("ci")), {
      host: "vllm-registry-pg",
      port: 5432,
      database: "model_registry",
      adminUser: "postgres",
      sslmode: "disable",
    });
  });

  it("keeps the admin password out of the parsed config", () => {
    const raw = rawConfig(
      { "vllm-registry:adminPassword": "s3cret", "vllm-registry:host": "h" },
      REGISTRY_PROJECT,
    );
    assert.deepEqual(raw, { host: "h" });
  });

  it("rejects unknown keys and bad values, naming each", () => {
    assert.throws(
      () => parseRegistryStackConfig({ host: "", databse: "x", port: "5432" }),
      (e: StackConfigError) =>
        e.problems.some((p) => /^host: registry\.host is required/.test(p)) &&
        e.problems.some((p) => /^\(config\): unknown key 'databse'/.test(p)) &&
        e.problems.some((p) => /^port: Expected number/.test(p)),
    );
  });
});

describe("environment stacks against the registry stack's outputs", () => {
  const spec = () => loadStackSpec("production").registry;

  it("accepts the outputs of the registry stack the config names", () => {
    const outputs = registryStackOutputsFor(spec());
    assert.deepEqual(checkRegistryStack(spec(), "production", { ...outputs }), outputs);
  });

  it("fails, naming the config path and the fix, when host, port, database or sslmode differ", () => {
    const outputs = {
      ...registryStackOutputsFor(spec()),
      host: "other.db",
      port: 6432,
      database: "registry_b",
      sslmode: "require",
    };
    assert.throws(
      () => checkRegistryStack(spec(), "production", outputs),
      (e: Error) =>
        e instanceof pulumi.RunError &&
        /registry\.host: is 'model-registry\.db\.acme-ml\.internal' but registry stack acme-ml\/vllm-registry\/shared serves 'other\.db'; set registry\.host to 'other\.db', or point registry\.stack at the registry stack of this server/.test(
          e.message,
        ) &&
        /registry\.port: is '5432' but .* serves '6432'/.test(e.message) &&
        /registry\.database: is 'model_registry' but .* serves 'registry_b'/.test(e.message) &&
        /registry\.sslmode: is 'verify-full' but .* serves 'require'/.test(e.message),
    );
  });

  // PostgreSQL 16 restricted CREATEROLE: adding members to a role needs ADMIN OPTION on it, which a
  // CREATEROLE role that is not superuser holds only on the roles it created
  // (https://www.postgresql.org/docs/16/release-16.html, "Restrict the privileges of CREATEROLE";
  // https://www.postgresql.org/docs/16/sql-createrole.html). tests/registry.isolation.test.ts
  // shows the "permission denied to grant role" this check prevents.
  it("fails, naming registry.adminUser, the PostgreSQL 16 rule and the fix, when the admin differs from the registry stack's", () => {
    const outputs = { ...registryStackOutputsFor(spec()), adminUser: "registry_admin" };
    assert.throws(
      () => checkRegistryStack(spec(), "production", outputs),
      (e: Error) =>
        e instanceof pulumi.RunError &&
        /registry\.adminUser: is 'postgres' but registry stack acme-ml\/vllm-registry\/shared created the registry's roles as 'registry_admin'; on PostgreSQL 16 and later only a role with ADMIN OPTION on a group role may add members to it, .*https:\/\/www\.postgresql\.org\/docs\/16\/sql-createrole\.html.*"permission denied to grant role"; set registry\.adminUser to 'registry_admin' and registryAdminPassword to its password/.test(
          e.message,
        ),
    );
    assert.deepEqual(
      checkRegistryStack({ ...spec(), adminUser: "registry_admin" }, "production", outputs),
      outputs,
    );
  });

  it("fails when the registry stack is not deployed or not migrated to this program's schema", () => {
    assert.throws(
      () => checkRegistryStack(spec(), "production", {}),
      /registry\.stack: registry stack acme-ml\/vllm-registry\/shared exports no 'host'; run `pulumi -C registry-stack up --stack shared` first/,
    );
    assert.throws(
      () =>
        checkRegistryStack(spec(), "production", {
          ...registryStackOutputsFor(spec()),
          schemaVersion: 2,
        }),
      /is at schema version 2 but this program needs 3/,
    );
    assert.throws(
      () =>
        checkRegistryStack(spec(), "production", {
          ...registryStackOutputsFor(spec()),
          environmentRoles: { staging: "vllm_registry_env_staging" },
        }),
      /has no group role for environment 'production' \(it has staging\)/,
    );
    // A registry stack from before the access roles and the adminUser output.
    const older: Record<string, unknown> = { ...registryStackOutputsFor(spec()) };
    delete older.accessRoles;
    delete older.adminUser;
    assert.throws(
      () => checkRegistryStack(spec(), "production", older),
      (e: Error) =>
        /registry\.stack: .* exports no 'adminUser'; run `pulumi -C registry-stack up --stack shared` first/.test(
          e.message,
        ) &&
        /has no access roles for the writer and router logins; run `pulumi -C registry-stack up/.test(
          e.message,
        ),
    );
  });
});
