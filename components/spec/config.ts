// The stack config, validated once into a typed StackSpec. Every error names the config path
// and the fix; all errors are reported together; nothing is created when config is invalid.
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { ACCELERATOR_VENDORS, acceleratorNodeSelector } from "./accelerators";
import {
  dnsLabelProblem,
  dnsSubdomainProblem,
  extendedResourceNameProblem,
  labelValueProblem,
  parseQuantity,
  qualifiedNameProblem,
} from "./kubeSyntax";
import {
  AFFINITY_LOAD_FACTOR,
  DNS_LABEL,
  ENVIRONMENTS,
  Environment,
  ROUTING_MODES,
  STACK_ENVIRONMENTS,
  serviceName,
  stackEnvironment,
} from "./naming";

/** The project directory (Pulumi.yaml): relative config paths start here, as for the providers. */
export const PROJECT_DIR = path.resolve(__dirname, "../..");

/** Pulumi project name: stack config keys carry it as a prefix (`vllm-fleet:releases`). */
export const PROJECT = "vllm-fleet";

const DIGEST = /@sha256:[a-f0-9]{64}$/;
const REVISION = /^[0-9a-f]{40}$/;

/** Access modes of the model cache volume; a PVC's access modes are immutable once created. */
export const CACHE_ACCESS_MODES = ["ReadWriteOnce", "ReadWriteMany"] as const;

/** The Hugging Face token: a secret config key, turned into a Secret per gated model. */
export const HF_TOKEN_KEY = "huggingFaceToken";
/** Secret config key: password of `registry.adminUser` on the registry server. */
export const REGISTRY_ADMIN_PASSWORD_KEY = "registryAdminPassword";
/** Secret config key: password or token of `router.imageRegistryUsername`. */
export const ROUTER_REGISTRY_PASSWORD_KEY = "routerImageRegistryPassword";

// The provider writes every object, Secrets included, in plain text to the directory
// (pulumi/pulumi-kubernetes provider/pkg/provider/provider.go, renderYaml) and applies nothing,
// so nothing waits for pods and registry rows would turn ready with no model running.
const RENDER_YAML_REJECTED =
  "not supported: the Kubernetes provider would write Secrets (registry password, Hugging Face token) in plain text and mark models ready without deploying them; remove it and use `npm run render -- --stack <stack>` for reviewable manifests (Secrets stay with `pulumi up`)";

const dnsName = (what: string) =>
  z
    .string({ required_error: `${what} is required` })
    .regex(
      DNS_LABEL,
      `${what} must be a DNS label: lowercase letters, digits and '-', starting with a letter`,
    )
    .max(63, `${what} must be at most 63 characters`);

/** A positive resource.Quantity (requests, limits and volume sizes must be > 0). */
const quantity = (what: string) =>
  z
    .union([z.string(), z.number()])
    .transform(String)
    .refine(
      (v) => (parseQuantity(v) ?? 0) > 0,
      `${what} must be a Kubernetes quantity above 0 such as "8", "500m", "32Gi" (suffixes n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or an exponent such as 1e3; 'mi' is not one)`,
    );

/** A string checked by one of Kubernetes' syntax rules (components/spec/kubeSyntax.ts). */
const k8sString = (what: string, problem: (v: string) => string | undefined) =>
  z.string().superRefine((v, ctx) => {
    const p = problem(v);
    if (p) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${what} ${p}` });
  });

/** Labels as a node selector or pod labels take them: qualified-name keys, label values. */
const labelMap = (what: string) =>
  z.record(
    k8sString(`${what} key`, qualifiedNameProblem),
    k8sString(`${what} value`, labelValueProblem),
  );

const intAtLeast = (min: number, what: string) =>
  z
    .number({ invalid_type_error: `${what} must be an integer >= ${min}` })
    .int(`${what} must be an integer >= ${min}`)
    .min(min, `${what} must be an integer >= ${min}`);

/** Connection settings of the registry's PostgreSQL server, read by both Pulumi projects. */
const registryServerFields = {
  host: z.string().min(1, "registry.host is required"),
  port: z.number().int().min(1).max(65535).default(5432),
  database: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/, "registry.database must be a lowercase SQL identifier")
    .default("model_registry"),
  adminUser: z
    .string()
    .min(1, "registry.adminUser must be a PostgreSQL role name")
    .default("postgres"),
  sslmode: z.enum(["disable", "require", "verify-ca", "verify-full"]).default("require"),
  sslrootcert: z.string().min(1, "registry.sslrootcert must be a file path").optional(),
};

/** Project of the registry stack (registry-stack/Pulumi.yaml). */
export const REGISTRY_PROJECT = "vllm-registry";
const STACK_NAME = new RegExp(`^[A-Za-z0-9_.-]+/${REGISTRY_PROJECT}/[A-Za-z0-9_.-]+$`);

/**
 * vLLM flags the program sets, by the config key that controls each. A second occurrence in
 * extraArgs would override it (argparse keeps the last value), breaking the GPU count, the
 * Service port, the probes or the registry's served name.
 */
export const MANAGED_VLLM_FLAGS: Record<string, string> = {
  host: "the program (vLLM listens on all interfaces for its Service and probes)",
  port: "the program (port 8000: the Service, probes and NetworkPolicy use it)",
  "tensor-parallel-size": "capacity.<model>.gpu.count",
  // vLLM's world size is pipeline x tensor parallel (vllm/config/parallel.py,
  // ParallelConfig.__post_init__); data parallel multiplies it again. Left at 1, a pod uses
  // exactly the gpu.count GPUs it requests.
  "pipeline-parallel-size": "capacity.<model>.gpu.count (one replica uses gpu.count GPUs)",
  "data-parallel-size": "capacity.<model>.replicas (one replica uses gpu.count GPUs)",
  "served-model-name": "releases[].servedModelName",
  "gpu-memory-utilization": "releases[].args.gpuMemoryUtilization",
  dtype: "releases[].args.dtype",
  revision: "releases[].revision",
  "max-model-len": "releases[].args.maxModelLen",
  quantization: "releases[].args.quantization",
  model: "releases[].source",
  // A YAML file of flags could set any of the above.
  config: "the release's keys (a config file could set the flags above)",
};

/**
 * Why an extraArgs entry is refused, or undefined. vLLM's FlexibleArgumentParser
 * (vllm/utils/argparse_utils.py) turns `_` into `-` in flag names, reads `--flag.key` as JSON
 * config of `--flag`, and argparse accepts unambiguous prefixes (allow_abbrev), so names are
 * compared in that form. Values go in the same entry (`--flag=value`): a separate entry would
 * be a positional argument, which is the model.
 */
export function extraArgProblem(arg: string): string | undefined {
  const m = /^--([A-Za-z0-9][A-Za-z0-9_.+-]*)(=[\s\S]*)?$/.exec(arg);
  if (!m) {
    const name = /^--([^=\s]+)\s/.exec(arg)?.[1];
    return name && managedFlag(name)
      ? managedMessage(arg, managedFlag(name)!)
      : `'${arg}' is not a long flag: use --flag or --flag=value in one entry (a separate value or a short flag such as -tp is not accepted; a positional argument would replace the model, releases[].source)`;
  }
  const flag = managedFlag(m[1]);
  return flag ? managedMessage(arg, flag) : undefined;
}

function managedFlag(name: string): string | undefined {
  const normalized = name.split(".")[0].replace(/_/g, "-");
  return Object.keys(MANAGED_VLLM_FLAGS).find((f) => f.startsWith(normalized));
}

function managedMessage(arg: string, flag: string): string {
  return `'${arg}' sets --${flag}, which the program manages; set ${MANAGED_VLLM_FLAGS[flag]} instead`;
}

const argsSchema = z
  .object({
    maxModelLen: intAtLeast(256, "maxModelLen").optional(),
    gpuMemoryUtilization: z
      .number()
      .gt(0, "gpuMemoryUtilization must be in (0, 1], e.g. 0.9")
      .max(1, "gpuMemoryUtilization must be in (0, 1], e.g. 0.9")
      .default(0.9),
    // Once a second number for gpu.count that had to equal it; now derived (vllmArgs).
    tensorParallelSize: z
      .never({
        errorMap: (_, ctx) => ({
          message: `is no longer a setting: vLLM's --tensor-parallel-size is capacity.<model>.gpu.count (1 for a model without gpu); remove it${typeof ctx.data === "number" ? ` and set gpu.count to ${ctx.data} if that is what you meant` : ""}`,
        }),
      })
      .optional(),
    dtype: z.enum(["auto", "half", "float16", "bfloat16", "float", "float32"]).default("auto"),
    quantization: z.enum(["awq", "gptq", "fp8", "bitsandbytes", "compressed-tensors"]).optional(),
    extraArgs: z
      .array(
        z.string().superRefine((v, ctx) => {
          const p = extraArgProblem(v);
          if (p) ctx.addIssue({ code: z.ZodIssueCode.custom, message: p });
        }),
      )
      .default([]),
  })
  .strict();

const releaseSchema = z
  .object({
    name: dnsName("name"),
    source: z
      .string()
      .min(1, "source is required: a Hugging Face repo id or a path in the model cache")
      // It is vLLM's positional argument: a leading '-' would make it a flag.
      .regex(/^[^-\s]\S*$/, "source must not start with '-' or contain spaces"),
    revision: z.string().optional(),
    servedModelName: z.string().min(1).optional(),
    image: z
      .string({
        required_error:
          "image is required: a vLLM OpenAI server image such as vllm/vllm-openai:v0.11.0",
      })
      .regex(/^[^\s]+$/, "image must not contain spaces"),
    args: argsSchema.default({}),
    fallbacks: z.array(z.string()).default([]),
    gated: z.boolean().default(false),
  })
  .strict();

// ValidateTolerations (kubernetes pkg/apis/core/validation/validation.go): the key is a label
// name; an empty key needs operator Exists; Exists takes no value; Equal's value is a label
// value; tolerationSeconds only with effect NoExecute.
const tolerationSchema = z
  .object({
    key: k8sString("toleration key", qualifiedNameProblem).optional(),
    operator: z.enum(["Exists", "Equal"]).default("Exists"),
    value: k8sString("toleration value", labelValueProblem).optional(),
    effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
    tolerationSeconds: z.number().int("tolerationSeconds must be a whole number").optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
    if (!t.key && t.operator !== "Exists")
      issue("operator", "must be Exists when key is empty (an empty key matches every taint)");
    if (t.operator === "Exists" && t.value)
      issue(
        "value",
        "must be empty when operator is Exists (the default); set operator: Equal to match a value",
      );
    if (t.tolerationSeconds !== undefined && t.effect !== "NoExecute")
      issue("effect", "must be NoExecute when tolerationSeconds is set");
  });

const capacitySchema = z
  .object({
    replicas: intAtLeast(0, "replicas").default(1),
    // Omitted: the model runs without GPUs (the vLLM simulator, a CPU build); never in production.
    gpu: z
      .object({
        count: intAtLeast(1, "gpu.count"),
        resourceName: k8sString("gpu.resourceName", extendedResourceNameProblem).default(
          "nvidia.com/gpu",
        ),
        product: k8sString("gpu.product", labelValueProblem).optional(),
        // Override the vendor's node labels (required for a resource name without defaults).
        nodeSelector: labelMap("gpu.nodeSelector").optional(),
        productLabel: k8sString("gpu.productLabel", qualifiedNameProblem).optional(),
      })
      .strict()
      .optional(),
    nodeSelector: labelMap("nodeSelector").default({}),
    tolerations: z.array(tolerationSchema).optional(),
    resources: z
      .object({
        cpu: quantity("resources.cpu").default("4"),
        memory: quantity("resources.memory").default("32Gi"),
        cpuLimit: quantity("resources.cpuLimit").optional(),
        memoryLimit: quantity("resources.memoryLimit").optional(),
      })
      .strict()
      .default({}),
    cache: z
      .object({
        size: quantity("cache.size").default("50Gi"),
        // ValidatePersistentVolumeClaimSpec checks storageClassName with ValidateClassName.
        storageClass: k8sString("cache.storageClass", dnsSubdomainProblem).optional(),
        accessMode: z
          .enum(CACHE_ACCESS_MODES, {
            errorMap: () => ({
              message: `cache.accessMode must be one of ${CACHE_ACCESS_MODES.join(", ")}`,
            }),
          })
          .default("ReadWriteOnce"),
      })
      .strict()
      .default({}),
    startupBudgetMinutes: z
      .number()
      .int("startupBudgetMinutes must be a whole number of minutes")
      .min(2, "startupBudgetMinutes must be at least 2: vLLM needs time to load weights")
      .max(240, "startupBudgetMinutes must be at most 240")
      .default(15),
    enabled: z.boolean().default(true),
  })
  .strict();

const { min: FACTOR_MIN, max: FACTOR_MAX } = AFFINITY_LOAD_FACTOR;
const FACTOR_RANGE = `must be a number above ${FACTOR_MIN} and at most ${FACTOR_MAX} (the router refuses others): a pod takes a prefix's requests while its load stays within this factor times the mean load`;

/** How the router picks where a model's request goes (README, Endpoint-aware routing). */
const routingSchema = z
  .object({
    mode: z
      .enum(ROUTING_MODES, {
        errorMap: () => ({
          message: `must be one of ${ROUTING_MODES.join(", ")}: service sends a model's requests to its Service, least-loaded to its least loaded ready pod, scored by prompt prefix within a load bound`,
        }),
      })
      .default("service"),
    affinityLoadFactor: z
      .number({ invalid_type_error: FACTOR_RANGE })
      .gt(FACTOR_MIN, FACTOR_RANGE)
      .lte(FACTOR_MAX, FACTOR_RANGE)
      .optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    // Only the scorer bounds load; elsewhere a set factor would be silently ignored.
    if (r.affinityLoadFactor !== undefined && r.mode !== "scored")
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["affinityLoadFactor"],
        message: `only applies in mode scored (router.routing.mode is '${r.mode}'); remove it, or set router.routing.mode: scored`,
      });
  })
  .default({});

const configSchema = z
  .object({
    environment: z.enum(ENVIRONMENTS, {
      errorMap: () => ({ message: `environment must be one of ${ENVIRONMENTS.join(", ")}` }),
    }),
    namespace: dnsName("namespace"),
    gpuQuota: intAtLeast(0, "gpuQuota"),
    releases: z.array(releaseSchema).min(1, "releases must list at least one model"),
    capacity: z.record(capacitySchema),
    router: z
      .object({
        replicas: intAtLeast(1, "router.replicas").default(2),
        apiKeysSecret: k8sString(
          "router.apiKeysSecret (a Secret name)",
          dnsSubdomainProblem,
        ).optional(),
        imageRegistry: z.string().optional(),
        imageRegistryUsername: z.string().optional(),
        image: z.string().optional(),
        routing: routingSchema,
      })
      .strict()
      .default({}),
    registry: z
      .object({
        ...registryServerFields,
        stack: z
          .string({
            required_error:
              "is required: the registry stack this environment uses, e.g. acme-ml/vllm-registry/shared",
          })
          .regex(
            STACK_NAME,
            "must be a fully-qualified stack name <organization>/vllm-registry/<stack>, e.g. acme-ml/vllm-registry/shared",
          ),
        manageDatabase: z
          .never({
            invalid_type_error:
              "is no longer supported: the registry stack (registry-stack/, read through registry.stack) owns the database and its migrations; remove this key",
          })
          .optional(),
      })
      .strict(),
    redis: z
      .object({
        url: z
          .string()
          .regex(/^rediss?:\/\//, "redis.url must start with redis:// or rediss://")
          .optional(),
      })
      .strict()
      .default({}),
    monitoring: z
      .object({
        serviceMonitor: z.boolean().default(true),
        alerts: z.boolean().default(true),
        dashboard: z.boolean().default(true),
        // The ServiceMonitor's `release` label and the namespace the NetworkPolicy admits.
        prometheusRelease: k8sString("monitoring.prometheusRelease", labelValueProblem).default(
          "kube-prometheus-stack",
        ),
        prometheusNamespace: k8sString("monitoring.prometheusNamespace", dnsLabelProblem).default(
          "monitoring",
        ),
      })
      .strict()
      .default({}),
    kubernetes: z
      .object({
        context: z.string().optional(),
        kubeconfig: z.string().optional(),
        renderYamlToDirectory: z
          .never({ errorMap: () => ({ message: RENDER_YAML_REJECTED }) })
          .optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

type RawConfig = z.infer<typeof configSchema>;
export type Release = z.infer<typeof releaseSchema> & { servedModelName: string };
export type Capacity = z.infer<typeof capacitySchema>;
export type Toleration = z.infer<typeof tolerationSchema>;

/** One model as deployed in one environment: the promoted release plus this environment's capacity. */
export interface ModelSpec extends Release, Omit<Capacity, "tolerations" | "gpu"> {
  /** The GPU config, with the node labels that select its nodes (vendor defaults applied). */
  gpu?: NonNullable<Capacity["gpu"]> & { nodeLabels: Record<string, string> };
  /** Tolerations actually applied (defaults to tolerating the GPU taint when the model has GPUs). */
  tolerations: Toleration[];
}

/** The validated stack config. */
export interface StackSpec {
  project: string;
  environment: Environment;
  namespace: string;
  gpuQuota: number;
  models: ModelSpec[];
  router: RawConfig["router"];
  registry: RawConfig["registry"] & RegistryServer;
  redis: RawConfig["redis"];
  monitoring: RawConfig["monitoring"];
  kubernetes: RawConfig["kubernetes"];
}

/** Thrown for invalid config; `problems` holds one line per error, each naming its path. */
export class StackConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n") +
        `\nFix them with \`pulumi config set --path <path> <value>\` or in Pulumi.<stack>.yaml.`,
    );
    this.name = "StackConfigError";
  }
}

function formatPath(path: (string | number)[]): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p),
    "",
  );
}

function issueMessage(issue: z.ZodIssue): string {
  const at = formatPath(issue.path) || "(config)";
  if (issue.code === "unrecognized_keys") {
    return `${at}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}; remove ${issue.keys.length > 1 ? "them" : "it"} or fix the spelling`;
  }
  if (issue.code === "invalid_type" && issue.received === "undefined") {
    // A required_error that starts "is required:" goes on to say how to fix it.
    return issue.message.startsWith("is required:")
      ? `${at}: ${issue.message}`
      : `${at}: is required`;
  }
  return `${at}: ${issue.message}`;
}

/**
 * The stack name decides the environment (STACK_ENVIRONMENTS): `environment` in the stack file
 * must agree, so a production stack cannot switch its guardrails off by calling itself staging.
 */
function environmentProblem(stack: string, declared: Environment): string | undefined {
  const bound = stackEnvironment(stack);
  if (!bound)
    return `environment: stack '${stack}' has no environment; name the stack after one (${Object.keys(STACK_ENVIRONMENTS).join(", ")}) or add it to STACK_ENVIRONMENTS in components/spec/naming.ts and policies/fleet.ts with its policies/config/<stack>.json`;
  if (bound !== declared)
    return `environment: is '${declared}' but stack '${stack}' is the ${bound} environment (the stack name decides it, with its guardrails); set environment: ${bound}`;
  return undefined;
}

/** Kubernetes rejects a limit below its request (ValidateResourceRequirements, pkg/apis/core/validation). */
function limitProblems(at: string, r: Capacity["resources"]): string[] {
  const pairs = [
    ["cpuLimit", r.cpuLimit, "cpu", r.cpu],
    ["memoryLimit", r.memoryLimit, "memory", r.memory],
  ] as const;
  return pairs
    .filter(([, limit, , request]) => limit && parseQuantity(limit)! < parseQuantity(request)!)
    .map(
      ([key, limit, req, request]) =>
        `${at}.resources.${key}: ${limit} is below the request resources.${req} ${request}; Kubernetes rejects a limit below its request, so raise ${key} or lower ${req}`,
    );
}

/** A GPU without vendor defaults must name the node labels that select its nodes. */
function acceleratorProblems(at: string, gpu: NonNullable<Capacity["gpu"]>): string[] {
  if (ACCELERATOR_VENDORS[gpu.resourceName]) return [];
  const known = Object.keys(ACCELERATOR_VENDORS).join(", ");
  const problems: string[] = [];
  if (!gpu.nodeSelector)
    problems.push(
      `${at}.gpu.nodeSelector: is required for gpu.resourceName '${gpu.resourceName}': its nodes' labels are not known (defaults exist for ${known}); set the labels its device plugin puts on GPU nodes`,
    );
  if (gpu.product && !gpu.productLabel)
    problems.push(
      `${at}.gpu.productLabel: is required with gpu.product for gpu.resourceName '${gpu.resourceName}': set the node label that carries the product name`,
    );
  return problems;
}

/** Rules that need the whole config: cross references, quotas and production pinning. */
function crossChecks(cfg: RawConfig, opts: ParseOptions): string[] {
  const setSecrets = opts.setSecrets;
  const problems: string[] = [];
  const bindProblem =
    opts.stack === undefined ? undefined : environmentProblem(opts.stack, cfg.environment);
  if (bindProblem) problems.push(bindProblem);
  const names = cfg.releases.map((r) => r.name);
  // The stack's own environment decides the guardrails when it is known.
  const prod =
    (opts.stack && stackEnvironment(opts.stack)) === "production" ||
    cfg.environment === "production";
  let gpus = 0;
  cfg.releases.forEach((r, i) => {
    const at = `releases[${i}]`;
    if (names.indexOf(r.name) !== i)
      problems.push(`${at}.name: '${r.name}' is listed twice; model names must be unique`);
    const svc = serviceName(r.name, cfg.environment);
    if (svc.length > 63) {
      problems.push(
        `${at}.name: Service name '${svc}' is ${svc.length} characters (max 63); shorten the model name`,
      );
    }
    r.fallbacks.forEach((f, j) => {
      if (f === r.name) problems.push(`${at}.fallbacks[${j}]: a model cannot fall back to itself`);
      else if (!names.includes(f))
        problems.push(
          `${at}.fallbacks[${j}]: '${f}' is not a model of this stack; use one of ${names.join(", ")}`,
        );
    });
    const cap = cfg.capacity[r.name];
    if (!cap) {
      problems.push(
        `capacity.${r.name}: is required: every release needs capacity (replicas, gpu.count) in this environment`,
      );
      return;
    }
    problems.push(...limitProblems(`capacity.${r.name}`, cap.resources));
    if (cap.gpu) problems.push(...acceleratorProblems(`capacity.${r.name}`, cap.gpu));
    if (!cap.gpu && prod)
      problems.push(
        `capacity.${r.name}.gpu: is required in production: production models run on GPUs; set gpu.count (and gpu.product)`,
      );
    if (cap.enabled) gpus += (cap.gpu?.count ?? 0) * cap.replicas;
    if (cap.enabled && cap.replicas === 0) {
      problems.push(
        `capacity.${r.name}.replicas: 0 replicas would register the model as ready with no pod serving it; set capacity.${r.name}.enabled: false to scale it to zero (the router then answers model_disabled)`,
      );
    }
    // A ReadWriteOnce volume attaches to one node, so replicas on other nodes never start.
    if (cap.cache.accessMode === "ReadWriteOnce" && cap.replicas > 1) {
      problems.push(
        `capacity.${r.name}.cache.accessMode: ReadWriteOnce attaches the cache to one node but replicas is ${cap.replicas}; set cache.accessMode: ReadWriteMany with a storageClass that supports it (NFS, CephFS, EFS, Filestore). Changing it creates a new, empty cache volume`,
      );
    }
    if (r.source.startsWith("meta-llama/") && !r.gated) {
      problems.push(
        `${at}.gated: ${r.source} is a gated Hugging Face model; set gated: true so the pods get the ${HF_TOKEN_KEY} secret`,
      );
    }

    if (prod) {
      if (!DIGEST.test(r.image)) {
        problems.push(
          `${at}.image: production images must be pinned by digest; use '${r.image.split("@")[0]}@sha256:<digest>'`,
        );
      }
      if (!r.revision || !REVISION.test(r.revision)) {
        problems.push(
          `${at}.revision: production models must pin the model revision to a 40-character commit hash`,
        );
      }
      if (cap.enabled && cap.replicas < 2) {
        problems.push(
          `capacity.${r.name}.replicas: production needs at least 2 replicas (got ${cap.replicas}) so a node loss or rollout keeps the model up`,
        );
      }
    } else if (r.revision !== undefined && !REVISION.test(r.revision)) {
      problems.push(`${at}.revision: must be a 40-character commit hash`);
    }
  });
  // Read by the program (requireSecret) only after it has started creating objects: checked here.
  if (setSecrets && !setSecrets.includes(REGISTRY_ADMIN_PASSWORD_KEY))
    problems.push(
      `${REGISTRY_ADMIN_PASSWORD_KEY}: is required: the password of registry.adminUser, which creates this environment's roles; set it with \`pulumi config set --secret ${REGISTRY_ADMIN_PASSWORD_KEY}\` (it prompts, or reads the value from stdin: never put it on the command line)`,
    );
  const gated = cfg.releases.filter((r) => r.gated).map((r) => r.name);
  if (gated.length && setSecrets && !setSecrets.includes(HF_TOKEN_KEY)) {
    problems.push(
      `${HF_TOKEN_KEY}: is required because ${gated.join(", ")} ${gated.length > 1 ? "are" : "is"} gated on Hugging Face; set it with \`pulumi config set --secret ${HF_TOKEN_KEY}\` (it prompts, or reads stdin; a token of an account that accepted the model's license)`,
    );
  }
  for (const name of Object.keys(cfg.capacity)) {
    if (!names.includes(name))
      problems.push(
        `capacity.${name}: no release named '${name}'; remove it or add it to releases`,
      );
  }
  if (gpus > cfg.gpuQuota) {
    problems.push(
      `gpuQuota: enabled models request ${gpus} GPUs but the quota is ${cfg.gpuQuota}; raise gpuQuota or lower replicas/gpu.count`,
    );
  }
  const router = cfg.router;
  if (router.image !== undefined && !DIGEST.test(router.image)) {
    problems.push(
      `router.image: must be pinned by digest ('${router.image.split("@")[0]}@sha256:<digest>'), or unset it and set router.imageRegistry to build the image`,
    );
  } else if (router.image === undefined && prod) {
    problems.push(
      `router.image: production never builds the router; set it to the image staging runs, pinned by digest (staging's routerImage output, which npm run promote copies)`,
    );
  } else if (router.image === undefined && !router.imageRegistry) {
    problems.push(
      `router.imageRegistry: is required to build and push the router image (e.g. ghcr.io/acme/platform); or set router.image to a prebuilt image pinned by digest`,
    );
  } else if (
    router.image === undefined &&
    router.imageRegistryUsername &&
    setSecrets &&
    !setSecrets.includes(ROUTER_REGISTRY_PASSWORD_KEY)
  ) {
    problems.push(
      `${ROUTER_REGISTRY_PASSWORD_KEY}: is required to push the router image as router.imageRegistryUsername '${router.imageRegistryUsername}'; set it with \`pulumi config set --secret ${ROUTER_REGISTRY_PASSWORD_KEY}\` (it prompts, or reads stdin; for ghcr.io a token with write:packages), or remove router.imageRegistryUsername to use the host's docker login`,
    );
  }
  if (prod) {
    if (cfg.router.replicas < 2)
      problems.push(
        `router.replicas: production needs at least 2 router replicas (got ${cfg.router.replicas})`,
      );
    if (cfg.registry.sslmode === "disable")
      problems.push(
        `registry.sslmode: production must not disable TLS; use require or verify-full`,
      );
  }
  return problems;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * `registry.sslrootcert`: a PEM file of CA certificates, relative to the project directory (the
 * postgresql provider reads it from there too). Read here, so a wrong path fails before anything.
 */
function readSslRootCert(
  registry: z.infer<typeof registryStackSchema>,
  projectDir: string,
): { pem?: string; problems: string[] } {
  const at = "registry.sslrootcert";
  const file = registry.sslrootcert;
  if (file === undefined)
    return {
      problems:
        registry.sslmode === "verify-ca"
          ? [
              `${at}: sslmode verify-ca needs the CA that signs the registry's certificate (a chain check against public CAs proves nothing); set ${at} to its PEM file, or use verify-full`,
            ]
          : [],
    };
  if (registry.sslmode === "disable")
    return {
      problems: [`${at}: has no effect with sslmode disable; remove it or use verify-full`],
    };
  let pem: string;
  try {
    pem = fs.readFileSync(path.resolve(projectDir, file), "utf8");
  } catch (e) {
    return {
      problems: [
        `${at}: cannot read '${file}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the path of the CA's PEM file relative to the project directory`,
      ],
    };
  }
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  const bad = blocks.findIndex((b) => {
    try {
      new X509Certificate(b);
      return false;
    } catch {
      return true;
    }
  });
  if (blocks.length === 0 || bad >= 0)
    return {
      problems: [
        `${at}: '${file}' is not a PEM certificate${bad >= 0 ? ` (certificate ${bad + 1} does not parse)` : ""}; use the CA certificate ('-----BEGIN CERTIFICATE-----'), not a key or a DER file`,
      ],
    };
  return { pem, problems: [] };
}

/** What the program knows besides the config: the stack it runs as, the secrets set. */
export interface ParseOptions {
  /** Stack name (pulumi.getStack(), or the stack file's): binds the environment to it. */
  stack?: string;
  /** The secret keys set (see setSecretKeys): also checks the secrets the config needs. */
  setSecrets?: string[];
}

/** Tolerate the GPU taint of GPU nodes; a model without GPUs needs none. */
function defaultTolerations(gpu: Capacity["gpu"]): Toleration[] {
  return gpu ? [{ key: gpu.resourceName, operator: "Exists", effect: "NoSchedule" }] : [];
}

/**
 * Parses the raw stack config (keys without the project prefix) into a StackSpec. Every entry
 * point passes the stack name; offline tools never see secrets and leave `setSecrets` out.
 * Throws StackConfigError listing every problem.
 */
export function parseStackConfig(raw: Record<string, unknown>, opts: ParseOptions = {}): StackSpec {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new StackConfigError(parsed.error.issues.map(issueMessage));
  const cfg = parsed.data;
  const ca = readSslRootCert(cfg.registry, PROJECT_DIR);
  const problems = [...crossChecks(cfg, opts), ...ca.problems];
  if (problems.length) throw new StackConfigError(problems);
  return {
    project: PROJECT,
    environment: cfg.environment,
    namespace: cfg.namespace,
    gpuQuota: cfg.gpuQuota,
    models: cfg.releases.map((r) => {
      const cap = cfg.capacity[r.name];
      return {
        ...r,
        servedModelName: r.servedModelName ?? r.name,
        ...cap,
        gpu: cap.gpu && { ...cap.gpu, nodeLabels: acceleratorNodeSelector(cap.gpu) },
        tolerations: cap.tolerations ?? defaultTolerations(cap.gpu),
      };
    }),
    router: cfg.router,
    registry: { ...cfg.registry, caCertificate: ca.pem },
    redis: cfg.redis,
    monitoring: cfg.monitoring,
    kubernetes: cfg.kubernetes,
  };
}

const registryStackSchema = z.object(registryServerFields).strict();

/** A registry's PostgreSQL server as a stack reaches it (the registry stack's whole config). */
export type RegistryServer = z.infer<typeof registryStackSchema> & {
  /** Contents of `sslrootcert` (PEM), for the clients that take text. */
  caCertificate?: string;
};

/** Directory of the registry stack's project: its `sslrootcert` path is relative to it. */
export const REGISTRY_PROJECT_DIR = path.join(PROJECT_DIR, "registry-stack");

/** Parses a registry stack's config (keys without the project prefix); throws StackConfigError. */
export function parseRegistryStackConfig(raw: Record<string, unknown>): RegistryServer {
  const parsed = registryStackSchema.safeParse(raw);
  if (!parsed.success) throw new StackConfigError(parsed.error.issues.map(issueMessage));
  const ca = readSslRootCert(parsed.data, REGISTRY_PROJECT_DIR);
  if (ca.problems.length) throw new StackConfigError(ca.problems);
  return { ...parsed.data, ...(ca.pem ? { caCertificate: ca.pem } : {}) };
}

/** Config keys read as secrets (`config.requireSecret`), never part of the StackSpec. */
export const SECRET_KEYS = [
  REGISTRY_ADMIN_PASSWORD_KEY,
  HF_TOKEN_KEY,
  "adminPassword",
  ROUTER_REGISTRY_PASSWORD_KEY,
];

/** Secret keys set in the running stack's config (names only; values stay with Pulumi). */
export function setSecretKeys(all: Record<string, string>): string[] {
  return SECRET_KEYS.filter((k) => all[`${PROJECT}:${k}`] !== undefined);
}

/**
 * Raw config (what parseStackConfig takes) from a stack's Pulumi config: the keys of `project`
 * without the prefix, JSON values parsed, secrets left out.
 */
export function rawConfig(all: Record<string, string>, project = PROJECT): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(all)) {
    if (!key.startsWith(`${project}:`)) continue;
    const k = key.slice(project.length + 1);
    if (SECRET_KEYS.includes(k)) continue;
    try {
      out[k] = JSON.parse(value);
    } catch {
      out[k] = value;
    }
  }
  return out;
}
