// A model's row in the PostgreSQL registry as a Pulumi resource (dynamic provider).
// The provider is serialized into state and run by the engine in another process, so it
// captures no secrets and no clients: credentials arrive as (secret) inputs on every call,
// and each method opens its own bounded connection. check/diff never touch the database,
// because they also run in preview. Where the row sits in the data flow: docs/architecture.md.
import * as pulumi from "@pulumi/pulumi";
import {
  invalidateCache,
  InvalidateOutcome,
  withRegistryClient,
  getEntry,
  setStatus,
  CheckedRegistration,
  ModelRegistration,
  registerModel,
  registrationProblems,
  RegistryEntry as RegistryRow,
  RegistryStatus,
  RegistryTarget,
  Environment,
} from "@vllm-fleet/registry";

/**
 * Resolved inputs of a registry entry, as the provider receives them: where the row is written
 * (the CA as PEM text, not a path: the provider runs serialized elsewhere) and the registration.
 */
export type RegistryEntryInputs = RegistryTarget & ModelRegistration;

/** State of a registry entry: the inputs (as last written or read back) plus the live row. */
export interface RegistryEntryOutputs extends RegistryEntryInputs {
  entryId: number;
  status: RegistryStatus;
  updatedAt: string;
  /** What the last write did to the Redis cache (`deleted`, `absent`, `skipped`, `failed: ...`). */
  cacheInvalidation: string;
}

/** Inputs whose change makes a different row: the engine replaces instead of updating. */
const IDENTITY: (keyof RegistryEntryInputs)[] = ["environment", "modelName"];
/**
 * Inputs compared by diff. Credentials count too: the state must hold the current ones, because
 * read and delete only get the state (an update with new credentials is a harmless upsert).
 */
const COMPARED: (keyof RegistryEntryInputs)[] = [
  ...IDENTITY,
  "connectionString",
  "caCertificate",
  "redisUrl",
  "endpoint",
  "namespace",
  "servedModelName",
  "fallbacks",
  "revision",
  "enabled",
  "disabledReason",
  "managedBy",
];
/** The engine's placeholder for values not known yet (preview). */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function outputsOf(
  inputs: RegistryEntryInputs,
  row: RegistryRow,
  cacheInvalidation: string,
): RegistryEntryOutputs {
  return {
    ...inputs,
    entryId: row.id,
    status: row.status,
    updatedAt: row.updatedAt,
    cacheInvalidation,
  };
}

/** An invalidation's outcome as the `cacheInvalidation` output says it. */
function describeInvalidation(outcome: InvalidateOutcome): string {
  return outcome.error ? `${outcome.result}: ${outcome.error}` : outcome.result;
}

/**
 * Create and update write the inputs check accepted: the engine calls Check before every Create
 * and Update and stops on its failures ("resource ... is invalid", pulumi/pulumi
 * pkg/resource/deploy/step_generator.go), so the registration is validated there, once.
 */
async function write(inputs: RegistryEntryInputs): Promise<RegistryEntryOutputs> {
  const registration: ModelRegistration = inputs;
  const { entry, cache } = await registerModel(inputs, registration as CheckedRegistration);
  return outputsOf(inputs, entry, describeInvalidation(cache));
}

function entryId(inputs: Pick<RegistryEntryInputs, "environment" | "modelName">): string {
  return `${inputs.environment}/${inputs.modelName}`;
}

/** The dynamic provider; exported so tests can drive and serialize exactly what the engine runs. */
export const registryEntryProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: RegistryEntryInputs, news: RegistryEntryInputs) {
    // Values still unknown in preview are checked once they are known (the update checks again).
    const unknown = new Set(
      Object.keys(news).filter((k) => news[k as keyof typeof news] === UNKNOWN),
    );
    // Whether the model is enabled decides whether it has a reason to check.
    if (unknown.has("enabled")) unknown.add("disabledReason");
    const known = Object.fromEntries(
      Object.entries(news).filter(([k]) => !unknown.has(k)),
    ) as Partial<RegistryEntryInputs>;
    const failures: pulumi.dynamic.CheckFailure[] = registrationProblems(known)
      .filter((p) => !unknown.has(p.field))
      .map((p) => ({ property: p.field, reason: p.message }));
    if (
      typeof known.connectionString === "string" &&
      !/^postgres(ql)?:\/\//.test(known.connectionString)
    )
      failures.push({
        property: "connectionString",
        reason: "connectionString must be a postgresql:// URL",
      });
    return { inputs: news, failures };
  },

  async diff(_id: string, olds: RegistryEntryOutputs, news: RegistryEntryInputs) {
    const changed = COMPARED.filter(
      (k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null),
    );
    return {
      changes: changed.length > 0,
      replaces: changed.filter((k) => IDENTITY.includes(k)),
      stables: ["entryId"],
    };
  },

  async create(inputs: RegistryEntryInputs) {
    const outs = await write(inputs);
    return { id: entryId(inputs), outs };
  },

  async update(_id: string, _olds: RegistryEntryOutputs, news: RegistryEntryInputs) {
    return { outs: await write(news) };
  },

  async read(id: string, props: RegistryEntryOutputs) {
    const row = await withRegistryClient(
      props.connectionString,
      (db) => getEntry(db, props.environment, props.modelName),
      { ca: props.caCertificate },
    );
    if (!row) return {}; // the row is gone: refresh drops it from state, the next up recreates it
    const live: RegistryEntryOutputs = {
      ...props,
      endpoint: row.endpoint,
      namespace: row.namespace,
      servedModelName: row.servedModelName,
      fallbacks: row.fallbacks,
      revision: row.revision ?? undefined,
      enabled: row.status === "ready",
      disabledReason:
        row.status === "ready" ? props.disabledReason : (row.disabledReason ?? undefined),
      managedBy: row.managedBy ?? "",
      entryId: row.id,
      status: row.status,
      updatedAt: row.updatedAt,
    };
    return { id, props: live };
  },

  async delete(_id: string, props: RegistryEntryOutputs) {
    // Routers must stop sending traffic before the Deployment goes: disable, never delete the row.
    await withRegistryClient(
      props.connectionString,
      (db) =>
        setStatus(
          db,
          props.environment,
          props.modelName,
          "disabled",
          `removed from stack ${props.managedBy}`,
        ),
      { ca: props.caCertificate },
    );
    await invalidateCache(props.redisUrl, props.environment, props.modelName);
  },
};

export interface RegistryEntryArgs {
  /** The environment's writer URL of the registry database (a secret). */
  connectionString: pulumi.Input<string>;
  /** CA certificate (PEM) the registry's TLS is verified against (`registry.sslrootcert`). */
  caCertificate?: pulumi.Input<string>;
  /** Redis URL whose cached copy of the entry is deleted on every write (optional). */
  redisUrl?: pulumi.Input<string>;
  /** Stack environment: development, staging or production. */
  environment: pulumi.Input<Environment>;
  /** Client-facing model name (the `model` field of requests). */
  modelName: pulumi.Input<string>;
  /** `host:port` of the model's Service. */
  endpoint: pulumi.Input<string>;
  /** Kubernetes namespace of the model's Service. */
  namespace: pulumi.Input<string>;
  /** Name vLLM serves the model under (`--served-model-name`). */
  servedModelName: pulumi.Input<string>;
  /** Models tried, in order, when this one is unreachable (default none). */
  fallbacks?: pulumi.Input<pulumi.Input<string>[]>;
  /** Release revision recorded on the row (image digest and model revision). */
  revision?: pulumi.Input<string>;
  /** false registers the model as `disabled` (with `disabledReason`). */
  enabled: pulumi.Input<boolean>;
  /** Why the model is disabled when `enabled` is false. */
  disabledReason?: pulumi.Input<string>;
  /** The stack that owns the row (`managed_by`). */
  managedBy: pulumi.Input<string>;
}

/**
 * A model's registry row. Make it depend on the model's Deployment and Service, so it turns
 * `ready` only after Kubernetes reports the pods ready, and is disabled before they go.
 */
export class RegistryEntry extends pulumi.dynamic.Resource {
  declare readonly entryId: pulumi.Output<number>;
  declare readonly status: pulumi.Output<RegistryStatus>;
  declare readonly endpoint: pulumi.Output<string>;
  declare readonly updatedAt: pulumi.Output<string>;
  declare readonly cacheInvalidation: pulumi.Output<string>;

  constructor(name: string, args: RegistryEntryArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      registryEntryProvider,
      name,
      {
        ...args,
        entryId: undefined,
        status: undefined,
        updatedAt: undefined,
        cacheInvalidation: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: [
          ...(opts?.additionalSecretOutputs ?? []),
          "connectionString",
          "redisUrl",
        ],
      },
      "vllm-registry",
      "RegistryEntry",
    );
  }
}
