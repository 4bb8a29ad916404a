// The registry row as every part of the platform sees it, and the rules its fields follow.
// Shared by the Pulumi provider, the CLI, the local platform and the router: no Pulumi imports.
import { ENVIRONMENTS, Environment, isEnvironment } from "./environments";
import { quoted, UNSAFE_TEXT } from "./text";

export const STATUSES = ["ready", "disabled"] as const;
export type RegistryStatus = (typeof STATUSES)[number];

/** Registry table name (shared with the registry's other clients). */
export const REGISTRY_TABLE = "model_registry_entries";

/** Model names: lowercase DNS-like labels that may contain dots (`qwen2.5-7b`), at most 63 chars. */
export const MODEL_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
export const MODEL_NAME_MAX = 63;

/** Endpoint example for messages. */
const ENDPOINT_EXAMPLE = "llama-2-7b-development.system.svc.cluster.local:8000";

/** Host name limits of RFC 1035 section 2.3.4 (as Kubernetes' IsDNS1123Subdomain applies them). */
export const HOST_MAX = 253;
export const LABEL_MAX = 63;
/** Longest endpoint: a longest host name, ':' and a five-digit port. */
export const ENDPOINT_MAX = HOST_MAX + 6;
/** Longest disable reason (it is shown to clients in the router's 403 answer). */
export const REASON_MAX = 500;
/** Longest served model name, revision or manager (free text that is printed). */
export const TEXT_MAX = 512;

/** An RFC 1123 label, lowercase (k8s.io/apimachinery/pkg/util/validation dns1123LabelFmt). */
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
/** Dotted-quad IPv4 without leading zeros (which URL parsers read as octal). */
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);
/** A last label the WHATWG URL parser reads as an IPv4 number (its "ends in a number" checker). */
const NUMERIC_LABEL = /^([0-9]+|0x[0-9a-f]*)$/;
/** A port without sign or leading zero. */
const PORT = /^[1-9][0-9]{0,4}$/;

/**
 * Why `host` is not a host the router reaches exactly as written (undefined when it is): an
 * RFC 1123 host name (labels of 1-63 [a-z0-9-], not starting or ending with '-', <= 253 in all)
 * or a dotted-quad IPv4 address. IPv6 literals are refused: the table's endpoint_format
 * constraint (migration 1) cannot store them, so they would fail at the database instead.
 */
function hostProblem(host: string): string | undefined {
  if (host.startsWith("["))
    return "the registry stores no IPv6 literals; use the model Service's DNS name or an IPv4 address";
  if (IPV4.test(host)) return undefined;
  if (host.length > HOST_MAX)
    return `the host is ${host.length} characters; use at most ${HOST_MAX}`;
  const labels = host.split(".");
  for (const label of labels) {
    if (label.length > LABEL_MAX)
      return `the host's label ${quoted(label)} is ${label.length} characters; use at most ${LABEL_MAX}`;
    if (!LABEL.test(label))
      return `the host's label ${quoted(label)} is invalid: use lowercase letters, digits and '-', starting and ending with a letter or digit`;
  }
  if (NUMERIC_LABEL.test(labels[labels.length - 1]))
    return "the host ends in a number, so URL parsers read it as an IPv4 address, but it is not one in the form a.b.c.d";
  return undefined;
}

/** Problems with a `host:port` endpoint (no scheme); `field` is how the caller spells it. */
export function endpointProblems(endpoint: unknown, field = "endpoint"): string[] {
  if (typeof endpoint !== "string" || endpoint === "") return [`${field} is required`];
  const usage = `use host:port without a scheme, e.g. ${ENDPOINT_EXAMPLE}`;
  if (endpoint.length > ENDPOINT_MAX)
    return [
      `${field} ${quoted(endpoint)} is ${endpoint.length} characters; use at most ${ENDPOINT_MAX}: ${usage}`,
    ];
  const colon = endpoint.lastIndexOf(":");
  const port = endpoint.slice(colon + 1);
  // "" when the shape is wrong (no port, a scheme or path): the usage says it all.
  const problem =
    colon < 1 || endpoint.includes("/")
      ? ""
      : !PORT.test(port) || Number(port) > 65535
        ? `the port ${quoted(port)} is not a number from 1 to 65535`
        : hostProblem(endpoint.slice(0, colon));
  if (problem === undefined) return [];
  return [`${field} ${quoted(endpoint)} is invalid: ${usage}${problem ? ` (${problem})` : ""}`];
}

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
  /** Defaults to `modelName` when absent. */
  servedModelName?: string;
  /** Defaults to `ready`; `disabled` needs `disabledReason`. */
  status?: RegistryStatus;
  disabledReason?: string | null;
  fallbacks?: string[];
  managedBy?: string | null;
  revision?: string | null;
  metadata?: Record<string, unknown>;
}

declare const CHECKED_ENTRY: unique symbol;
/**
 * An entry input that passed `entryProblems`. The writers that take it do not check it again, so
 * each write path validates once, where its input arrives: `upsertEntry` for library callers,
 * the CLI's options, the registration paths (registration.ts).
 */
export type CheckedEntry = EntryInput & { readonly [CHECKED_ENTRY]: true };

/** How a caller spells an entry's fields in messages (the CLI: its flags); the field's name otherwise. */
export type FieldNames = Partial<Record<keyof EntryInput, string>>;

/** A problem with one field of an entry input; the message names the field as the caller spells it. */
export interface FieldProblem {
  field: keyof EntryInput;
  message: string;
}

/** Thrown for invalid registry input; the message names the field and the fix. */
export class RegistryInputError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
    this.name = "RegistryInputError";
  }
}

export function isStatus(value: unknown): value is RegistryStatus {
  return typeof value === "string" && (STATUSES as readonly string[]).includes(value);
}

/** Problems with a model name (empty when valid); `field` is how the caller spells it. */
export function modelNameProblems(name: unknown, field = "modelName"): string[] {
  if (typeof name !== "string" || name === "") return [`${field} is required`];
  if (name.length > MODEL_NAME_MAX)
    return [`${field} ${quoted(name)} is ${name.length} characters; use at most ${MODEL_NAME_MAX}`];
  if (!MODEL_NAME.test(name))
    return [
      `${field} ${quoted(name)} is invalid: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. llama-2-7b)`,
    ];
  return [];
}

export function environmentProblems(env: unknown, field = "environment"): string[] {
  return isEnvironment(env)
    ? []
    : [`${field} ${quoted(env)} is invalid: use one of ${ENVIRONMENTS.join(", ")}`];
}

/** Problems with a Kubernetes namespace name: an RFC 1123 label (apimachinery ValidateNamespaceName). */
export function namespaceProblems(namespace: unknown, field = "namespace"): string[] {
  if (typeof namespace !== "string" || namespace === "") return [`${field} is required`];
  if (namespace.length > LABEL_MAX || !LABEL.test(namespace))
    return [
      `${field} ${quoted(namespace)} is invalid: use at most ${LABEL_MAX} lowercase letters, digits and '-', starting and ending with a letter or digit`,
    ];
  return [];
}

/**
 * Problems with free text that operators read (a disable reason, a served model name): one
 * line of at most `max` characters without control or bidirectional-override characters.
 */
export function textProblems(text: unknown, field: string, max = TEXT_MAX): string[] {
  if (typeof text !== "string" || text.trim() === "") return [`${field} is required`];
  if (text.length > max)
    return [`${field} ${quoted(text)} is ${text.length} characters; use at most ${max}`];
  if (UNSAFE_TEXT.test(text))
    return [
      `${field} ${quoted(text)} contains control or bidirectional-override characters; write it as one line of plain text`,
    ];
  return [];
}

/** Problems with the reason a model is disabled. */
export function reasonProblems(reason: unknown, field = "disabledReason"): string[] {
  return textProblems(reason, field, REASON_MAX);
}

/** Every problem with an entry input, by field. */
export function entryProblems(input: Partial<EntryInput>, names: FieldNames = {}): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const add = (field: keyof EntryInput, messages: string[]) =>
    messages.forEach((message) => problems.push({ field, message }));
  const name = (field: keyof EntryInput) => names[field] ?? field;
  add("modelName", modelNameProblems(input.modelName, name("modelName")));
  add("environment", environmentProblems(input.environment, name("environment")));
  add("endpoint", endpointProblems(input.endpoint, name("endpoint")));
  add("namespace", namespaceProblems(input.namespace, name("namespace")));
  // Optional free text, checked when given: an absent served name is the model name, an empty
  // manager or revision is none.
  if (input.servedModelName !== undefined)
    add("servedModelName", textProblems(input.servedModelName, name("servedModelName")));
  for (const field of ["managedBy", "revision"] as const)
    if (input[field]) add(field, textProblems(input[field], name(field)));
  if (input.status !== undefined && !isStatus(input.status))
    add("status", [
      `${name("status")} '${String(input.status)}' is invalid: use one of ${STATUSES.join(", ")}`,
    ]);
  if (input.status === "disabled")
    add("disabledReason", reasonProblems(input.disabledReason, name("disabledReason")));
  (input.fallbacks ?? []).forEach((f, i) => {
    const at = `${name("fallbacks")}[${i}]`;
    add("fallbacks", modelNameProblems(f, at));
    if (f === input.modelName) add("fallbacks", [`${at}: a model cannot fall back to itself`]);
  });
  return problems;
}

/** Every problem with an entry input, each naming its field. */
export function entryInputProblems(input: Partial<EntryInput>): string[] {
  return entryProblems(input).map((p) => p.message);
}

/** The input, checked; throws RegistryInputError with every problem otherwise. */
export function checkedEntry(input: Partial<EntryInput>, names?: FieldNames): CheckedEntry {
  const problems = entryProblems(input, names);
  if (problems.length) throw new RegistryInputError(problems.map((p) => p.message));
  return input as CheckedEntry;
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

/** Size of a router process's registry pool (lookups and the scrape-time registry read). */
export const ROUTER_POOL_MAX = 10;
/**
 * Registry connections one router process may hold at once: its pool, its LISTEN connection, and
 * a LISTEN replacement that can overlap the dead one it replaces.
 */
export const ROUTER_CONNECTIONS_PER_PROCESS = ROUTER_POOL_MAX + 2;
