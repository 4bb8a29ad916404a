// A model's registration: what a deployment says about one of its models, mapped to its registry
// row and written in one way for every deployment that registers models (the Pulumi program's
// RegistryEntry provider and `npm run local`).
import { invalidateCache, InvalidateOutcome } from "./cache";
import { withRegistryClient } from "./connect";
import type { Environment } from "./environments";
import { writeEntry } from "./queries";
import {
  CheckedEntry,
  EntryInput,
  entryProblems,
  FieldProblem,
  RegistryEntry,
  RegistryInputError,
} from "./types";

/** What a deployment says about one of its models. */
export interface ModelRegistration {
  environment: Environment;
  /** Client-facing model name (the `model` field of requests). */
  modelName: string;
  /** `host:port` of the model's Service. */
  endpoint: string;
  /** Kubernetes namespace of the model's Service. */
  namespace: string;
  /** Name vLLM serves the model under (`--served-model-name`). */
  servedModelName: string;
  /** Models tried, in order, when this one is unreachable (default none). */
  fallbacks?: string[];
  /** Release revision recorded on the row; empty records none. */
  revision?: string;
  /** false registers the model as `disabled`. */
  enabled: boolean;
  /** Why the model is disabled; empty gives the default reason naming the manager. */
  disabledReason?: string;
  /** Who registers the model (`managed_by`): the stack name, or `local`. */
  managedBy: string;
}

/** Where a registration is written: the registry database and, optionally, its Redis cache. */
export interface RegistryTarget {
  /** postgresql:// URL of a role that may write the registration's environment. */
  connectionString: string;
  /** CA certificate (PEM text) the database's TLS is verified against. */
  caCertificate?: string;
  /** Redis whose cached copy of the row is deleted after the write. */
  redisUrl?: string;
}

/**
 * The row a registration writes: enabled is `ready`, disabled is `disabled` with the given
 * reason or one naming the manager; an empty revision is none; no fallbacks is an empty list.
 */
export function registrationEntry(r: ModelRegistration): EntryInput;
export function registrationEntry(r: Partial<ModelRegistration>): Partial<EntryInput>;
export function registrationEntry(r: Partial<ModelRegistration>): Partial<EntryInput> {
  return {
    modelName: r.modelName,
    environment: r.environment,
    endpoint: r.endpoint,
    namespace: r.namespace,
    servedModelName: r.servedModelName,
    fallbacks: r.fallbacks ?? [],
    revision: r.revision || null,
    managedBy: r.managedBy,
    status: r.enabled ? "ready" : "disabled",
    disabledReason: r.enabled
      ? null
      : r.disabledReason || `disabled in the config of stack ${r.managedBy}`,
  };
}

/**
 * Every problem with a registration, by property: the rules of the row it writes, and a
 * manager. Registration properties are named as the row's fields (`enabled` cannot be wrong).
 */
export function registrationProblems(r: Partial<ModelRegistration>): FieldProblem[] {
  const problems = entryProblems(registrationEntry(r));
  if (typeof r.managedBy !== "string" || r.managedBy === "")
    problems.push({ field: "managedBy", message: "managedBy (the stack name) is required" });
  return problems;
}

declare const CHECKED_REGISTRATION: unique symbol;
/** A registration that passed `registrationProblems`: what registerModel writes, unchecked. */
export type CheckedRegistration = ModelRegistration & { readonly [CHECKED_REGISTRATION]: true };

/** The registration, checked; throws RegistryInputError with every problem otherwise. */
export function checkedRegistration(r: ModelRegistration): CheckedRegistration {
  const problems = registrationProblems(r);
  if (problems.length) throw new RegistryInputError(problems.map((p) => p.message));
  return r as CheckedRegistration;
}

/** What a registration did: the row as written and what became of its cached copy. */
export interface Registered {
  entry: RegistryEntry;
  cache: InvalidateOutcome;
}

/**
 * Writes a checked registration's row (one upsert on its own bounded connection; the trigger
 * NOTIFYs the routers), then deletes its Redis key, best effort: a Redis outage never fails a
 * registration.
 */
export async function registerModel(
  target: RegistryTarget,
  registration: CheckedRegistration,
): Promise<Registered> {
  // registrationProblems held this very entry to the row's rules.
  const row = registrationEntry(registration) as CheckedEntry;
  const entry = await withRegistryClient(target.connectionString, (db) => writeEntry(db, row), {
    ca: target.caCertificate,
  });
  const cache = await invalidateCache(
    target.redisUrl,
    registration.environment,
    registration.modelName,
  );
  return { entry, cache };
}
