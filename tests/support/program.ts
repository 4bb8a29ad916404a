// Runs a whole Pulumi program (index.ts, or registry-stack/index.ts) under the SDK's mocks for
// one real stack file, with Pulumi.yaml defaults merged as the CLI does.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT, REGISTRY_PROJECT, ENVIRONMENTS, stackFileConfig } from "../../components/spec";
import { type RegistryStackOutputs, ACCESS_ROLES } from "../../components/resources";
import { LATEST_VERSION, environmentRole } from "@vllm-fleet/registry";

export interface MockedResource {
  type: string;
  name: string;
  inputs: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  provider?: string;
  urn: string;
  /** Order in which the (mock) engine finished creating the resource. */
  createdSeq?: number;
  /** The resource options `protect` and `retainOnDelete` as the program set them. */
  protect?: boolean;
  retainOnDelete?: boolean;
}

export interface ProgramRun {
  resources: MockedResource[];
  outputs: Record<string, unknown>;
  /**
   * The same outputs with every secret Output in the engine's wire form
   * (`{ [specialSigKey]: specialSecretSig, value }`): what state encrypts.
   */
  wireOutputs: Record<string, unknown>;
  /** Resources of one type (`kubernetes:apps/v1:Deployment`). */
  ofType(type: string): MockedResource[];
}

/** The part of the engine's RegisterResourceRequest read here. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getProtect(): boolean;
  getRetainondelete(): boolean;
}

/** The program threw; `resources` are those registered before it did. */
export class ProgramError extends Error {
  constructor(
    message: string,
    readonly resources: MockedResource[],
  ) {
    super(message);
  }
}

const ROOT = path.resolve(__dirname, "../..");
/** Directory and entry point of each Pulumi project in the repository. */
const PROGRAMS: Record<string, { dir: string; index: string }> = {
  [PROJECT]: { dir: ROOT, index: path.join(ROOT, "index.ts") },
  [REGISTRY_PROJECT]: {
    dir: path.join(ROOT, "registry-stack"),
    index: path.join(ROOT, "registry-stack/index.ts"),
  },
};

/** Resolves an Output to its value (mocks run as an update, so values are known). */
export function valueOf<T>(o: pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(o).apply((v) => resolve(v as T)));
}

/** Resolves Outputs deeply; with `wire`, a secret Output becomes the engine's secret wire form. */
async function resolveDeep(v: unknown, wire = false): Promise<unknown> {
  if (pulumi.Output.isInstance(v)) {
    const value = await resolveDeep(await valueOf(v), wire);
    return wire && (await pulumi.isSecret(v))
      ? { [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value }
      : value;
  }
  if (Array.isArray(v)) return Promise.all(v.map((x) => resolveDeep(x, wire)));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = await resolveDeep(x, wire);
    return out;
  }
  return v;
}

export const MOCK_IMAGE_DIGEST = `sha256:${"d".repeat(64)}`;

/** What a registry stack deployed for `registry` config would export. */
export function registryStackOutputsFor(registry: {
  host: string;
  port?: number;
  database?: string;
  sslmode?: string;
  adminUser?: string;
}): RegistryStackOutputs {
  return {
    host: registry.host,
    port: registry.port ?? 5432,
    database: registry.database ?? "model_registry",
    sslmode: registry.sslmode ?? "require",
    adminUser: registry.adminUser ?? "postgres",
    schemaVersion: LATEST_VERSION,
    environmentRoles: Object.fromEntries(
      ENVIRONMENTS.map((e) => [e, environmentRole(e)]),
    ) as RegistryStackOutputs["environmentRoles"],
    accessRoles: { ...ACCESS_ROLES },
  };
}

function computedOutputs(
  type: string,
  inputs: Record<string, unknown>,
  registryStack: () => object,
): Record<string, unknown> {
  switch (type) {
    case "pulumi-nodejs:dynamic/vllm-registry:RegistryMigrations":
      return { version: LATEST_VERSION, applied: inputs.migrations };
    case "pulumi:pulumi:StackReference":
      return { outputs: registryStack(), secretOutputNames: [] };
    case "random:index/randomPassword:RandomPassword":
      return { result: MOCK_GENERATED_PASSWORD };
    case "docker-build:index:Image":
      return {
        ref: `${(inputs.tags as string[])[0]}@${MOCK_IMAGE_DIGEST}`,
        digest: MOCK_IMAGE_DIGEST,
      };
    default:
      return {};
  }
}

/** Runs index.ts for `stack` under mocks. */
export interface RunOptions {
  /** Config keys to replace (without the project prefix, values as in the stack file). */
  overrides?: Record<string, unknown>;
  /** Secret config keys. */
  secrets?: Record<string, string>;
  /** Milliseconds the mock engine takes to create resources of a type (to observe ordering). */
  createDelays?: Record<string, number>;
  /** Pulumi project to run: vllm-fleet (index.ts, the default) or vllm-registry (registry-stack/). */
  project?: string;
  /** Outputs of the registry stack the StackReference reads (default: what the stack's registry config expects). */
  registryStack?: Record<string, unknown>;
}

export const MOCK_ADMIN_PASSWORD = "mock-admin-password-3f9a";
export const MOCK_GENERATED_PASSWORD = "mock-generated-password-8c1d";
export const MOCK_HF_TOKEN = "hf_mockToken5e2b";

export async function runProgram(stack: string, options: RunOptions = {}): Promise<ProgramRun> {
  const { project = PROJECT, overrides = {}, createDelays = {} } = options;
  const secrets =
    options.secrets ??
    (project === PROJECT
      ? { registryAdminPassword: MOCK_ADMIN_PASSWORD, huggingFaceToken: MOCK_HF_TOKEN }
      : { adminPassword: MOCK_ADMIN_PASSWORD });
  const program = PROGRAMS[project];
  const resources: MockedResource[] = [];
  const resourceOptions = new Map<string, Pick<MockedResource, "protect" | "retainOnDelete">>();
  let seq = 0;
  pulumi.runtime.setMocks(
    {
      async newResource(args) {
        const id = `${args.name}-id`;
        const opts = resourceOptions.get(`${args.type}::${args.name}`);
        const record: MockedResource = {
          type: args.type,
          name: args.name,
          inputs: args.inputs,
          provider: args.provider,
          urn: `urn:pulumi:${stack}::${project}::${args.type}::${args.name}`,
          protect: opts?.protect,
          retainOnDelete: opts?.retainOnDelete,
        };
        resources.push(record);
        const delay = createDelays[args.type];
        if (delay) await new Promise((r) => setTimeout(r, delay));
        record.createdSeq = ++seq;
        // Outputs the real providers compute that the program reads back.
        const computed = computedOutputs(
          args.type,
          args.inputs,
          () => options.registryStack ?? registryStackOutputsFor(registryConfig()),
        );
        return { id, state: { ...args.inputs, ...computed } };
      },
      call(args) {
        return args.inputs;
      },
    },
    project,
    stack,
    false,
  );
  // Mocks are not told resource options; the engine's request carries them.
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, callback: unknown): void;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    resourceOptions.set(`${req.getType()}::${req.getName()}`, {
      protect: req.getProtect(),
      retainOnDelete: req.getRetainondelete(),
    });
    register(req, callback);
  };
  const config = stackFileConfig(stack, program.dir, project);
  for (const [k, v] of Object.entries(overrides)) {
    config[`${project}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  }
  for (const [k, v] of Object.entries(secrets)) config[`${project}:${k}`] = v;
  pulumi.runtime.setAllConfig(
    config,
    Object.keys(secrets).map((k) => `${project}:${k}`),
  );
  const registryConfig = () => JSON.parse(config[`${project}:registry`] ?? "{}");

  delete require.cache[require.resolve(program.index)];
  let mod: Record<string, unknown>;
  try {
    // require, not import(): the program is TypeScript loaded through ts-node's CommonJS hook.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(program.index) as Record<string, unknown>;
  } catch (e) {
    throw new ProgramError((e as Error).message, resources);
  }
  const outputs = (await resolveDeep({ ...mod })) as Record<string, unknown>;
  const wireOutputs = (await resolveDeep({ ...mod }, true)) as Record<string, unknown>;
  // Let registrations still in flight (children created in apply callbacks) reach the mocks.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return {
    resources,
    outputs,
    wireOutputs,
    ofType: (type) => resources.filter((r) => r.type === type),
  };
}
