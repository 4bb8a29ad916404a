// Config that Kubernetes (and vLLM) would accept: the API server's own syntax rules, flags the
// program manages, the accelerator vendor's node labels, and every documented key validated.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ACCELERATOR_VENDORS,
  extraArgProblem,
  MANAGED_VLLM_FLAGS,
  parseStackConfig,
  PROJECT_DIR,
  StackConfigError,
  extendedResourceNameProblem,
  labelValueProblem,
  parseQuantity,
  qualifiedNameProblem,
} from "../components/spec";
import { rawStackFile } from "./support/stackFiles";
import { buildModelDeployment } from "../components/manifests";
import { evaluatePolicies } from "../policies/evaluate";
import { TYPES } from "../policies/kube";
import { packConfig } from "../policies/packConfig";
import { gpuNodeSelector } from "../policies/rules/gpu";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const M = "llama-3-1-8b-instruct";
const production = (): Raw => rawStackFile("production");
const staging = (): Raw => rawStackFile("staging");

function problemsOf(mutate: (c: Raw) => void, base = production, setSecrets?: string[]): string[] {
  const cfg = structuredClone(base());
  mutate(cfg);
  try {
    parseStackConfig(cfg, { setSecrets });
  } catch (e) {
    assert.ok(e instanceof StackConfigError, String(e));
    return e.problems;
  }
  return [];
}

const ALL_SECRETS = ["registryAdminPassword", "huggingFaceToken", "routerImageRegistryPassword"];

describe("config: Kubernetes' syntax rules", () => {
  // k8s.io/apimachinery pkg/api/resource/quantity.go (the serialization grammar) and suffix.go.
  it("quantities follow resource.Quantity's grammar (ParseQuantity)", () => {
    const ok: [string, number][] = [
      ["1", 1],
      ["500m", 0.5],
      ["1.5", 1.5],
      [".5", 0.5],
      ["1.", 1],
      ["1e3", 1000],
      ["1E-3", 0.001],
      ["2Ki", 2048],
      ["32Gi", 32 * 2 ** 30],
      ["1Ei", 2 ** 60],
      ["100u", 1e-4],
      ["5n", 5e-9],
      ["+1k", 1000],
      ["1E", 1e18],
    ];
    for (const [q, v] of ok) {
      const got = parseQuantity(q);
      assert.ok(got !== undefined && Math.abs(got - v) <= Math.abs(v) * 1e-12, `${q}: ${got}`);
    }
    for (const q of ["32mi", "1Gb", "1e", "1.2.3", "Gi", "", "1 Gi", "1KiB", "0x10", "1ki", "1K"])
      assert.equal(parseQuantity(q), undefined, q);
  });

  it("rejects a memory request of 32mi (not a suffix) and a zero cache size, naming the path", () => {
    const found = problemsOf((c) => {
      c.capacity[M].resources.memory = "32mi";
      c.capacity[M].cache.size = "0";
    });
    assert.ok(
      found.some((p) =>
        p.startsWith(
          `capacity.${M}.resources.memory: resources.memory must be a Kubernetes quantity`,
        ),
      ),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) =>
        p.startsWith(`capacity.${M}.cache.size: cache.size must be a Kubernetes quantity above 0`),
      ),
      found.join("\n"),
    );
  });

  // pkg/apis/core/validation ValidateResourceRequirements: "must be greater than or equal to <resource> request".
  it("rejects limits below requests (cpuLimit < cpu, memoryLimit < memory)", () => {
    const found = problemsOf((c) => {
      c.capacity[M].resources.cpuLimit = "7500m";
      c.capacity[M].resources.memoryLimit = "40Gi";
    });
    assert.deepEqual(
      found.filter((p) => p.includes("is below the request")),
      [
        `capacity.${M}.resources.cpuLimit: 7500m is below the request resources.cpu 8; Kubernetes rejects a limit below its request, so raise cpuLimit or lower cpu`,
        `capacity.${M}.resources.memoryLimit: 40Gi is below the request resources.memory 48Gi; Kubernetes rejects a limit below its request, so raise memoryLimit or lower memory`,
      ],
    );
    assert.deepEqual(
      problemsOf((c) => (c.capacity[M].resources.cpuLimit = "8")),
      [],
    );
  });

  // k8s.io/apimachinery pkg/util/validation IsValidLabelValue and IsQualifiedName.
  it("label values and qualified names (node-selector keys) follow IsValidLabelValue / IsQualifiedName", () => {
    for (const v of ["", "NVIDIA-A100-SXM4-80GB", "a_b.c-d", "x".repeat(63)])
      assert.equal(labelValueProblem(v), undefined, v);
    for (const v of ["x".repeat(64), "-a", "a-", "NVIDIA A100", "a/b"])
      assert.ok(labelValueProblem(v), v);
    for (const k of [
      "gpu",
      "nvidia.com/gpu.product",
      "node.kubernetes.io/instance-type",
      `${"a".repeat(253)}/x`,
      "x".repeat(63),
    ])
      assert.equal(qualifiedNameProblem(k), undefined, k);
    for (const k of [
      "a/b/c",
      "/x",
      "example.com/",
      "Example.com/x",
      `${"a".repeat(254)}/x`,
      "x".repeat(64),
      "-x",
      "a b",
    ])
      assert.ok(qualifiedNameProblem(k), k);
  });

  it("rejects invalid node selectors, GPU products and label-valued settings, naming the path", () => {
    const found = problemsOf((c) => {
      c.capacity[M].nodeSelector = {
        "cloud.google.com/gke-nodepool": "x".repeat(64),
        "a/b/c": "y",
      };
      c.capacity[M].gpu.product = "NVIDIA A100";
      c.monitoring = { prometheusRelease: "kube prometheus" };
    });
    for (const prefix of [
      `capacity.${M}.nodeSelector.cloud.google.com/gke-nodepool: nodeSelector value must be at most 63 characters`,
      `capacity.${M}.nodeSelector.a/b/c: nodeSelector key must be a qualified name`,
      `capacity.${M}.gpu.product: gpu.product must be a label value`,
      "monitoring.prometheusRelease: monitoring.prometheusRelease must be a label value",
    ])
      assert.ok(
        found.some((p) => p.startsWith(prefix)),
        `${prefix} in\n${found.join("\n")}`,
      );
  });

  // kubernetes pkg/apis/core/helper IsExtendedResourceName / IsNativeResource.
  it("extended resource names are domain-qualified, outside kubernetes.io, without requests.", () => {
    for (const r of ["nvidia.com/gpu", "amd.com/gpu", "gpu.intel.com/xe", "nvidia.com/mig-1g.5gb"])
      assert.equal(extendedResourceNameProblem(r), undefined, r);
    for (const r of [
      "gpu",
      "kubernetes.io/gpu",
      "foo.kubernetes.io/gpu",
      "requests.nvidia.com/gpu",
      "nvidia.com/gpu_",
      "a/b/c",
    ])
      assert.ok(extendedResourceNameProblem(r), r);
    const [p] = problemsOf((c) => (c.capacity[M].gpu.resourceName = "gpu"));
    assert.match(
      p,
      new RegExp(
        `^capacity\\.${M}\\.gpu\\.resourceName: gpu\\.resourceName must be domain-qualified`,
      ),
    );
  });

  // kubernetes pkg/apis/core/validation ValidateTolerations.
  it("toleration combinations follow ValidateTolerations", () => {
    const at = `capacity.${M}.tolerations`;
    const cases: [object, string][] = [
      [
        { key: "nvidia.com/gpu", operator: "Exists", value: "present" },
        `${at}[0].value: must be empty when operator is Exists`,
      ],
      [
        { key: "nvidia.com/gpu", value: "present" },
        `${at}[0].value: must be empty when operator is Exists (the default)`,
      ],
      [{ operator: "Equal", value: "x" }, `${at}[0].operator: must be Exists when key is empty`],
      [
        { key: "x", effect: "NoSchedule", tolerationSeconds: 60 },
        `${at}[0].effect: must be NoExecute when tolerationSeconds is set`,
      ],
      [{ key: "x", effect: "Never" }, `${at}[0].effect:`],
      [{ key: "a/b/c" }, `${at}[0].key: toleration key must be a qualified name`],
      [
        { key: "x", operator: "Equal", value: "-bad" },
        `${at}[0].value: toleration value must be a label value`,
      ],
    ];
    for (const [t, prefix] of cases) {
      const found = problemsOf((c) => (c.capacity[M].tolerations = [t]));
      assert.ok(
        found.some((p) => p.startsWith(prefix)),
        `${JSON.stringify(t)}: ${prefix} in\n${found.join("\n")}`,
      );
    }
    for (const t of [
      {},
      { key: "x", operator: "Equal", value: "y", effect: "NoExecute", tolerationSeconds: 300 },
      { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" },
    ])
      assert.deepEqual(
        problemsOf((c) => (c.capacity[M].tolerations = [t])),
        [],
        JSON.stringify(t),
      );
  });

  // ValidatePersistentVolumeClaimSpec -> ValidateClassName (a DNS subdomain).
  it("storage class names are DNS subdomains", () => {
    assert.deepEqual(
      problemsOf((c) => (c.capacity[M].cache.storageClass = "ebs.csi.aws.com")),
      [],
    );
    const [p] = problemsOf((c) => (c.capacity[M].cache.storageClass = "Fast_SSD"));
    assert.match(
      p,
      new RegExp(
        `^capacity\\.${M}\\.cache\\.storageClass: cache\\.storageClass must be a DNS subdomain`,
      ),
    );
  });
});

describe("config: extraArgs never override the flags the program manages", () => {
  // vLLM FlexibleArgumentParser.parse_args (vllm/utils/argparse_utils.py): `_` -> `-` in names,
  // `--model` moved to the positional; argparse's allow_abbrev accepts unambiguous prefixes.
  const KEYS: Record<string, string> = {
    port: "the program",
    host: "the program",
    "tensor-parallel-size": "capacity.<model>.gpu.count",
    "served-model-name": "releases[].servedModelName",
    "gpu-memory-utilization": "releases[].args.gpuMemoryUtilization",
    dtype: "releases[].args.dtype",
    revision: "releases[].revision",
    "max-model-len": "releases[].args.maxModelLen",
    quantization: "releases[].args.quantization",
    model: "releases[].source",
  };
  for (const [flag, key] of Object.entries(KEYS)) {
    it(`refuses --${flag} in every spelling, naming ${key}`, () => {
      const underscore = flag.replace(/-/g, "_");
      for (const arg of [
        `--${flag}=1`,
        `--${flag}`,
        `--${flag} 1`,
        `--${underscore}=1`,
        `--${flag.slice(0, -1)}=1`,
      ]) {
        const p = extraArgProblem(arg);
        assert.ok(
          p?.includes(`sets --${flag}, which the program manages; set ${key}`),
          `${arg}: ${p}`,
        );
      }
      assert.ok(MANAGED_VLLM_FLAGS[flag]);
    });
  }

  it("refuses separate values, short flags and positionals (they would replace the model)", () => {
    for (const arg of ["9000", "-tp", "-q=awq", "Qwen/Qwen2.5-7B"])
      assert.match(
        extraArgProblem(arg)!,
        /is not a long flag: use --flag or --flag=value in one entry/,
        arg,
      );
    assert.match(
      extraArgProblem("--pipeline-parallel-size=2")!,
      /set capacity\.<model>\.gpu\.count/,
    );
    assert.match(extraArgProblem("--config=/etc/vllm.yaml")!, /which the program manages/);
  });

  it("accepts other flags, JSON sub-keys and values with spaces", () => {
    for (const arg of [
      "--enable-prefix-caching",
      "--max-num-seqs=64",
      "--compilation-config.level=3",
      "--enable_chunked_prefill",
      "--chat-template=a b",
    ])
      assert.equal(extraArgProblem(arg), undefined, arg);
  });

  it("names the release entry in the config error", () => {
    const found = problemsOf(
      (c) =>
        (c.releases[1].args.extraArgs = ["--enable-prefix-caching", "--tensor_parallel_size=4"]),
    );
    assert.deepEqual(found, [
      "releases[1].args.extraArgs[1]: '--tensor_parallel_size=4' sets --tensor-parallel-size, which the program manages; set capacity.<model>.gpu.count instead",
    ]);
  });

  it("refuses a source that vLLM would read as a flag", () => {
    const [p] = problemsOf((c) => (c.releases[0].source = "--port=9000"));
    assert.match(p, /^releases\[0\]\.source: source must not start with '-'/);
  });
});

describe("config: accelerator node labels per vendor", () => {
  const deploymentFor = (gpu: Raw) => {
    const cfg = production();
    cfg.capacity[M].gpu = { count: 1, ...gpu };
    cfg.capacity[M].tolerations = [];
    const spec = parseStackConfig(cfg);
    return buildModelDeployment(
      spec,
      spec.models.find((m) => m.name === M)!,
    );
  };
  const cases: [string, Raw, Record<string, string>][] = [
    [
      "NVIDIA (GPU feature discovery)",
      { product: "NVIDIA-A100-SXM4-80GB" },
      { "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB" },
    ],
    [
      "AMD (GPU operator NFD rule, node labeller)",
      { resourceName: "amd.com/gpu", product: "Instinct_MI300X" },
      {
        "feature.node.kubernetes.io/amd-gpu": "true",
        "amd.com/gpu.product-name": "Instinct_MI300X",
      },
    ],
    [
      "Intel i915 (NFD rules of intel-device-plugins)",
      { resourceName: "gpu.intel.com/i915", product: "Max_1550" },
      { "intel.feature.node.kubernetes.io/gpu": "true", "gpu.intel.com/product": "Max_1550" },
    ],
    [
      "Intel xe",
      { resourceName: "gpu.intel.com/xe" },
      { "intel.feature.node.kubernetes.io/gpu": "true" },
    ],
    [
      "an explicit selector and product label",
      {
        resourceName: "habana.ai/gaudi",
        nodeSelector: { "habana.ai/gaudi.present": "true" },
        productLabel: "habana.ai/gaudi.product",
        product: "HL-225",
      },
      { "habana.ai/gaudi.present": "true", "habana.ai/gaudi.product": "HL-225" },
    ],
  ];
  for (const [vendor, gpu, selector] of cases) {
    it(`${vendor}: selects the vendor's labels and passes gpu-node-selector`, async () => {
      const d = deploymentFor(gpu);
      assert.deepEqual(d.spec!.template.spec!.nodeSelector, selector);
      const found = await evaluatePolicies(
        [gpuNodeSelector],
        [
          {
            type: TYPES.deployment,
            name: d.metadata.name,
            inputs: d as unknown as Record<string, unknown>,
          },
        ],
        packConfig("production"),
      );
      assert.deepEqual(found, []);
    });
  }

  it("gpu-node-selector still fails an AMD pod that selects no GPU nodes", async () => {
    const d = deploymentFor({ resourceName: "amd.com/gpu" });
    d.spec!.template.spec!.nodeSelector = {};
    const found = await evaluatePolicies(
      [gpuNodeSelector],
      [
        {
          type: TYPES.deployment,
          name: d.metadata.name,
          inputs: d as unknown as Record<string, unknown>,
        },
      ],
      packConfig("production"),
    );
    assert.equal(found.length, 1);
  });

  it("an unknown resource name needs gpu.nodeSelector (and gpu.productLabel with a product)", () => {
    const found = problemsOf(
      (c) => (c.capacity[M].gpu = { count: 1, resourceName: "habana.ai/gaudi", product: "HL-225" }),
    );
    assert.deepEqual(found, [
      `capacity.${M}.gpu.nodeSelector: is required for gpu.resourceName 'habana.ai/gaudi': its nodes' labels are not known (defaults exist for ${Object.keys(ACCELERATOR_VENDORS).join(", ")}); set the labels its device plugin puts on GPU nodes`,
      `capacity.${M}.gpu.productLabel: is required with gpu.product for gpu.resourceName 'habana.ai/gaudi': set the node label that carries the product name`,
    ]);
  });
});

/**
 * Every key of the README's config reference (rows `| \`key\` |`, and the sub-keys a row lists
 * in its type column), in the form `capacity.<model>.resources.cpu`.
 */
function readmeConfigKeys(): string[] {
  const readme = fs.readFileSync(path.join(PROJECT_DIR, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Config reference"));
  const table = section.slice(0, section.indexOf("\n## ", 1));
  const keys = new Set<string>();
  for (const row of table.split("\n").filter((l) => l.startsWith("| `"))) {
    const [, key, type] = row.split(/\s*\|\s*/);
    const name = key.replace(/`/g, "");
    const subKeys = /^`[A-Za-z]+`(, `[A-Za-z]+`)+$/.test(type)
      ? type.replace(/`/g, "").split(", ")
      : [];
    if (subKeys.length) subKeys.forEach((s) => keys.add(`${name}.${s}`));
    else keys.add(name);
  }
  return [...keys];
}

/** An invalid value per documented key (and the base config and secrets it is tried on). */
const INVALID: Record<string, { mutate: (c: Raw) => void; base?: () => Raw; secrets?: string[] }> =
  {
    environment: { mutate: (c) => (c.environment = "prod") },
    namespace: { mutate: (c) => (c.namespace = "LLM_Prod") },
    gpuQuota: { mutate: (c) => (c.gpuQuota = -1) },
    "releases[]": { mutate: (c) => (c.releases = []) },
    "releases[].name": { mutate: (c) => (c.releases[0].name = "Llama_3") },
    "releases[].source": { mutate: (c) => (c.releases[0].source = "-x") },
    "releases[].revision": { mutate: (c) => (c.releases[0].revision = "main") },
    "releases[].servedModelName": { mutate: (c) => (c.releases[0].servedModelName = "") },
    "releases[].image": { mutate: (c) => (c.releases[0].image = "vllm openai") },
    "releases[].args.maxModelLen": { mutate: (c) => (c.releases[0].args.maxModelLen = 100) },
    "releases[].args.gpuMemoryUtilization": {
      mutate: (c) => (c.releases[0].args.gpuMemoryUtilization = 0),
    },
    "releases[].args.dtype": { mutate: (c) => (c.releases[0].args.dtype = "fp4") },
    "releases[].args.quantization": { mutate: (c) => (c.releases[0].args.quantization = "int3") },
    "releases[].args.extraArgs": {
      mutate: (c) => (c.releases[0].args.extraArgs = ["--port=9000"]),
    },
    "releases[].fallbacks": { mutate: (c) => (c.releases[0].fallbacks = ["gpt-4"]) },
    "releases[].gated": { mutate: (c) => (c.releases[0].gated = "yes") },
    "capacity.<model>.replicas": { mutate: (c) => (c.capacity[M].replicas = -1) },
    "capacity.<model>.gpu.count": { mutate: (c) => (c.capacity[M].gpu.count = 0) },
    "capacity.<model>.gpu.resourceName": {
      mutate: (c) => (c.capacity[M].gpu.resourceName = "gpu"),
    },
    "capacity.<model>.gpu.product": { mutate: (c) => (c.capacity[M].gpu.product = "NVIDIA A100") },
    "capacity.<model>.gpu.nodeSelector": {
      mutate: (c) => (c.capacity[M].gpu.nodeSelector = { "a/b/c": "true" }),
    },
    "capacity.<model>.gpu.productLabel": { mutate: (c) => (c.capacity[M].gpu.productLabel = "-x") },
    "capacity.<model>.nodeSelector": {
      mutate: (c) => (c.capacity[M].nodeSelector = { pool: "-gpu" }),
    },
    "capacity.<model>.tolerations": {
      mutate: (c) => (c.capacity[M].tolerations = [{ key: "x", value: "y" }]),
    },
    "capacity.<model>.resources.cpu": { mutate: (c) => (c.capacity[M].resources.cpu = "8 cores") },
    "capacity.<model>.resources.memory": {
      mutate: (c) => (c.capacity[M].resources.memory = "48gi"),
    },
    "capacity.<model>.resources.cpuLimit": {
      mutate: (c) => (c.capacity[M].resources.cpuLimit = "1"),
    },
    "capacity.<model>.resources.memoryLimit": {
      mutate: (c) => (c.capacity[M].resources.memoryLimit = "8Gi"),
    },
    "capacity.<model>.cache.size": { mutate: (c) => (c.capacity[M].cache.size = "60GB") },
    "capacity.<model>.cache.storageClass": {
      mutate: (c) => (c.capacity[M].cache.storageClass = "Fast_SSD"),
    },
    "capacity.<model>.cache.accessMode": {
      mutate: (c) => (c.capacity[M].cache.accessMode = "ReadOnlyMany"),
    },
    "capacity.<model>.startupBudgetMinutes": {
      mutate: (c) => (c.capacity[M].startupBudgetMinutes = 1),
    },
    "capacity.<model>.enabled": { mutate: (c) => (c.capacity[M].enabled = "no") },
    "router.replicas": { mutate: (c) => (c.router.replicas = 0) },
    "router.apiKeysSecret": { mutate: (c) => (c.router.apiKeysSecret = "Router Keys") },
    "router.imageRegistry": { mutate: (c) => (c.router = { replicas: 2 }), base: staging },
    "router.imageRegistryUsername": { mutate: (c) => (c.router.imageRegistryUsername = 5) },
    "router.image": { mutate: (c) => (c.router.image = "ghcr.io/acme/vllm-router:v1") },
    "router.routing": { mutate: (c) => (c.router.routing = "scored") },
    "router.routing.mode": { mutate: (c) => (c.router.routing = { mode: "round-robin" }) },
    "router.routing.affinityLoadFactor": {
      mutate: (c) => (c.router.routing = { mode: "scored", affinityLoadFactor: 0.5 }),
    },
    routerImageRegistryPassword: {
      mutate: (c) => (c.router.imageRegistryUsername = "ci-bot"),
      base: staging,
      secrets: ["registryAdminPassword", "huggingFaceToken"],
    },
    "registry.stack": { mutate: (c) => (c.registry.stack = "shared") },
    "registry.host": { mutate: (c) => (c.registry.host = "") },
    "registry.port": { mutate: (c) => (c.registry.port = 70000) },
    "registry.database": { mutate: (c) => (c.registry.database = "Model-Registry") },
    "registry.adminUser": { mutate: (c) => (c.registry.adminUser = "") },
    "registry.sslmode": { mutate: (c) => (c.registry.sslmode = "prefer") },
    "registry.sslrootcert": { mutate: (c) => (c.registry.sslrootcert = "certs/missing.pem") },
    registryAdminPassword: { mutate: () => undefined, secrets: ["huggingFaceToken"] },
    huggingFaceToken: { mutate: () => undefined, secrets: ["registryAdminPassword"] },
    "redis.url": { mutate: (c) => (c.redis.url = "localhost:6379") },
    "monitoring.serviceMonitor": { mutate: (c) => (c.monitoring = { serviceMonitor: "yes" }) },
    "monitoring.alerts": { mutate: (c) => (c.monitoring = { alerts: "yes" }) },
    "monitoring.dashboard": { mutate: (c) => (c.monitoring = { dashboard: "yes" }) },
    "monitoring.prometheusRelease": {
      mutate: (c) => (c.monitoring = { prometheusRelease: "kube prometheus" }),
    },
    "monitoring.prometheusNamespace": {
      mutate: (c) => (c.monitoring = { prometheusNamespace: "Monitoring" }),
    },
    "kubernetes.context": { mutate: (c) => (c.kubernetes = { context: 5 }) },
    "kubernetes.kubeconfig": { mutate: (c) => (c.kubernetes = { kubeconfig: 5 }) },
  };

describe("config: every documented key is validated before anything is created", () => {
  const keys = readmeConfigKeys();

  it("has an invalid value for every key of the README's config reference, and no stale ones", () => {
    assert.ok(keys.length > 40, `found ${keys.length} keys`);
    assert.deepEqual(
      keys.filter((k) => !INVALID[k]),
      [],
      "README keys without an invalid case",
    );
    assert.deepEqual(
      Object.keys(INVALID).filter((k) => !keys.includes(k)),
      [],
      "cases for keys the README does not document",
    );
  });

  for (const key of Object.keys(INVALID)) {
    it(`rejects an invalid ${key}, naming it`, () => {
      const { mutate, base, secrets = ALL_SECRETS } = INVALID[key];
      const at = key
        .replace("<model>", M)
        .replace(/\[\]\./g, "[0].")
        .replace(/\[\]$/, "");
      const found = problemsOf(mutate, base, secrets);
      assert.ok(
        found.some(
          (p) => p.startsWith(`${at}:`) || p.startsWith(`${at}.`) || p.startsWith(`${at}[`),
        ),
        `${key}: expected a problem at ${at} in\n${found.join("\n")}`,
      );
    });
  }
});
