// Runs the whole Pulumi program (index.ts) under the SDK's mocks for one real stack file,
// with Pulumi.yaml defaults merged as the CLI does.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { loadStackConfig } from "../../components/stackFile";
import { PROJECT } from "../../components/config";

export interface MockedResource {
  type: string;
  name: string;
  inputs: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  provider?: string;
  urn: string;
  /** Order in which the (mock) engine finished creating the resource. */
  createdSeq?: number;
}

export interface ProgramRun {
  resources: MockedResource[];
  outputs: Record<string, unknown>;
  /** Resources of one type (`kubernetes:apps/v1:Deployment`). */
  ofType(type: string): MockedResource[];
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

const INDEX = path.resolve(__dirname, "../../index.ts");

/** Resolves an Output to its value (mocks run as an update, so values are known). */
export function valueOf<T>(o: pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(o).apply((v) => resolve(v as T)));
}

async function resolveDeep(v: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(v)) return resolveDeep(await valueOf(v));
  if (Array.isArray(v)) return Promise.all(v.map(resolveDeep));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = await resolveDeep(x);
    return out;
  }
  return v;
}

export const MOCK_IMAGE_DIGEST = `sha256:${"d".repeat(64)}`;

function computedOutputs(type: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
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
}

export const MOCK_ADMIN_PASSWORD = "mock-admin-password-3f9a";
export const MOCK_GENERATED_PASSWORD = "mock-generated-password-8c1d";
export const MOCK_HF_TOKEN = "hf_mockToken5e2b";

export async function runProgram(stack: string, options: RunOptions = {}): Promise<ProgramRun> {
  const {
    overrides = {},
    secrets = { registryAdminPassword: MOCK_ADMIN_PASSWORD, huggingFaceToken: MOCK_HF_TOKEN },
    createDelays = {},
  } = options;
  const resources: MockedResource[] = [];
  let seq = 0;
  pulumi.runtime.setMocks(
    {
      async newResource(args) {
        const id = `${args.name}-id`;
        const record: MockedResource = {
          type: args.type,
          name: args.name,
          inputs: args.inputs,
          provider: args.provider,
          urn: `urn:pulumi:${stack}::${PROJECT}::${args.type}::${args.name}`,
        };
        resources.push(record);
        const delay = createDelays[args.type];
        if (delay) await new Promise((r) => setTimeout(r, delay));
        record.createdSeq = ++seq;
        // Outputs the real providers compute that the program reads back.
        const computed = computedOutputs(args.type, args.inputs);
        return { id, state: { ...args.inputs, ...computed } };
      },
      call(args) {
        return args.inputs;
      },
    },
    PROJECT,
    stack,
    false,
  );
  const config = loadStackConfig(stack);
  for (const [k, v] of Object.entries(overrides)) {
    config[`${PROJECT}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  }
  for (const [k, v] of Object.entries(secrets)) config[`${PROJECT}:${k}`] = v;
  pulumi.runtime.setAllConfig(
    config,
    Object.keys(secrets).map((k) => `${PROJECT}:${k}`),
  );

  delete require.cache[require.resolve(INDEX)];
  let mod: Record<string, unknown>;
  try {
    // require, not import(): the program is TypeScript loaded through ts-node's CommonJS hook.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(INDEX) as Record<string, unknown>;
  } catch (e) {
    throw new ProgramError((e as Error).message, resources);
  }
  const outputs = (await resolveDeep({ ...mod })) as Record<string, unknown>;
  // Let registrations still in flight (children created in apply callbacks) reach the mocks.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return { resources, outputs, ofType: (type) => resources.filter((r) => r.type === type) };
}
