// The registry row as every part of the platform sees it, and the rules its fields follow.
// Shared by the Pulumi provider, the CLI, the local platform and the router: no Pulumi imports.

export const ENVIRONMENTS = ["development", "staging", "production"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export const STATUSES = ["ready", "disabled"] as const;
export type RegistryStatus = (typeof STATUSES)[number];

/** Registry table name (shared with the registry's other clients). */
export const REGISTRY_TABLE = "model_registry_entries";

/** Model names: lowercase DNS-like labels that may contain dots (`qwen2.5-7b`), at most 63 chars. */
export const MODEL_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
export const MODEL_NAME_MAX = 63;

/** Endpoints are `host:port` without a scheme, e.g. `llama-2-7b-development.system.svc.cluster.local:8000`. */
export const ENDPOINT = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[0-9]{1,5}$/;

/** Redis key of a model's registry entry: `model_registry:{env}:{model}` (other cache readers use this format). */
export function registryKey(environment: string, model: string): string {
  return `model_registry:${environment}:${model}`;
}

/** One row of `model_registry_entries`, camelCased; timestamps are ISO strings so JSON round-trips. */
export interface RegistryEntry {
  id: number;
  modelName: string;
  environment: Environment;
  endpoint: string;
  namespace: string;
  servedModelName: string;
  status: RegistryStatus;
  disabledReason: string | null;
  fallbacks: string[];
  lastHealthCheckAt: string | null;
  managedBy: string | null;
  revision: string | null;
  metadata: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** What a writer supplies to create or replace a row; the database owns id and timestamps. */
export interface EntryInput {
  modelName: string;
  environment: Environment;
  endpoint: string;
  namespace: string;
  /** Defaults to `modelName`. */
  servedModelName?: string;
  /** Defaults to `ready`; `disabled` needs `disabledReason`. */
  status?: RegistryStatus;
  disabledReason?: string | null;
  fallbacks?: string[];
  managedBy?: string | null;
  revision?: string | null;
  metadata?: Record<string, unknown>;
}

/** Thrown for invalid registry input; the message names the field and the fix. */
export class RegistryInputError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
    this.name = "RegistryInputError";
  }
}

export function isEnvironment(value: unknown): value is Environment {
  return typeof value === "string" && (ENVIRONMENTS as readonly string[]).includes(value);
}

export function isStatus(value: unknown): value is RegistryStatus {
  return typeof value === "string" && (STATUSES as readonly string[]).includes(value);
}

/** Problems with a model name (empty when valid); `field` is how the caller spells it. */
export function modelNameProblems(name: unknown, field = "modelName"): string[] {
  if (typeof name !== "string" || name === "") return [`${field} is required`];
  if (name.length > MODEL_NAME_MAX)
    return [`${field} '${name}' is ${name.length} characters; use at most ${MODEL_NAME_MAX}`];
  if (!MODEL_NAME.test(name))
    return [
      `${field} '${name}' is invalid: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. llama-2-7b)`,
    ];
  return [];
}

export function environmentProblems(env: unknown, field = "environment"): string[] {
  return isEnvironment(env)
    ? []
    : [`${field} '${String(env ?? "")}' is invalid: use one of ${ENVIRONMENTS.join(", ")}`];
}

export function endpointProblems(endpoint: unknown, field = "endpoint"): string[] {
  if (typeof endpoint !== "string" || endpoint === "") return [`${field} is required`];
  const port = Number(endpoint.slice(endpoint.lastIndexOf(":") + 1));
  if (!ENDPOINT.test(endpoint) || port < 1 || port > 65535)
    return [
      `${field} '${endpoint}' is invalid: use host:port without a scheme, e.g. llama-2-7b-development.system.svc.cluster.local:8000`,
    ];
  return [];
}

/** Every problem with an entry input, each naming its field. */
export function entryInputProblems(input: Partial<EntryInput>): string[] {
  const problems = [
    ...modelNameProblems(input.modelName),
    ...environmentProblems(input.environment),
    ...endpointProblems(input.endpoint),
  ];
  if (typeof input.namespace !== "string" || input.namespace === "")
    problems.push("namespace is required");
  if (input.status !== undefined && !isStatus(input.status))
    problems.push(`status '${String(input.status)}' is invalid: use one of ${STATUSES.join(", ")}`);
  if (input.status === "disabled" && !input.disabledReason)
    problems.push("disabledReason is required when status is disabled");
  (input.fallbacks ?? []).forEach((f, i) => {
    problems.push(...modelNameProblems(f, `fallbacks[${i}]`));
    if (f === input.modelName) problems.push(`fallbacks[${i}]: a model cannot fall back to itself`);
  });
  return problems;
}

/** Throws RegistryInputError unless the input is valid. */
export function assertEntryInput(input: Partial<EntryInput>): asserts input is EntryInput {
  const problems = entryInputProblems(input);
  if (problems.length) throw new RegistryInputError(problems);
}

function iso(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString();
}

/** Maps a raw `model_registry_entries` row (as `pg` returns it) to a RegistryEntry. */
export function rowToEntry(row: Record<string, unknown>): RegistryEntry {
  return {
    id: Number(row.id),
    modelName: String(row.model_name),
    environment: row.deployment_environment as Environment,
    endpoint: String(row.endpoint),
    namespace: String(row.namespace),
    servedModelName: String(row.served_model_name),
    status: row.status as RegistryStatus,
    disabledReason: (row.disabled_reason as string | null) ?? null,
    fallbacks: (row.fallbacks as string[] | null) ?? [],
    lastHealthCheckAt: iso(row.last_health_check_at),
    managedBy: (row.managed_by as string | null) ?? null,
    revision: (row.revision as string | null) ?? null,
    metadata: (row.metadata as Record<string, unknown> | null) ?? {},
    createdAt: iso(row.created_at) as string,
    updatedAt: iso(row.updated_at) as string,
  };
}
