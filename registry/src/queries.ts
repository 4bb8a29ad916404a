// Registry reads and writes. Parameterized SQL only; every function takes a client or a pool.
import type { ClientBase, Pool } from "pg";
import type { Environment } from "./environments";
import {
  CheckedEntry,
  checkedEntry,
  EntryInput,
  REGISTRY_TABLE,
  RegistryEntry,
  RegistryStatus,
  reasonProblems,
  RegistryInputError,
  rowToEntry,
} from "./types";

/** Anything with pg's `query`: a Client, a PoolClient or a Pool. */
export type Queryable = ClientBase | Pool;

/** One model's row in one environment, or undefined. */
export async function getEntry(
  db: Queryable,
  environment: Environment,
  modelName: string,
): Promise<RegistryEntry | undefined> {
  const res = await db.query(
    `SELECT * FROM ${REGISTRY_TABLE} WHERE deployment_environment = $1 AND model_name = $2`,
    [environment, modelName],
  );
  return res.rows[0] ? rowToEntry(res.rows[0]) : undefined;
}

export interface ListFilter {
  environment?: Environment;
  status?: RegistryStatus;
  modelName?: string;
}

/** Rows matching every given filter, ordered by id. */
export async function listEntries(
  db: Queryable,
  filter: ListFilter = {},
): Promise<RegistryEntry[]> {
  const res = await db.query(
    `SELECT * FROM ${REGISTRY_TABLE}
      WHERE ($1::text IS NULL OR deployment_environment = $1)
        AND ($2::text IS NULL OR status = $2)
        AND ($3::text IS NULL OR model_name = $3)
      ORDER BY id`,
    [filter.environment ?? null, filter.status ?? null, filter.modelName ?? null],
  );
  return res.rows.map(rowToEntry);
}

/**
 * Creates or replaces the row of (environment, modelName) and returns it; throws
 * RegistryInputError, naming every problem, for invalid input. For callers whose input arrives
 * here; those that checked it where it arrived (checkedEntry) call writeEntry.
 */
export async function upsertEntry(db: Queryable, input: EntryInput): Promise<RegistryEntry> {
  return writeEntry(db, checkedEntry(input));
}

/**
 * Creates or replaces the row of a checked entry and returns it. Enabling clears the disabled
 * reason; `created_at` and `id` survive replacement.
 */
export async function writeEntry(db: Queryable, input: CheckedEntry): Promise<RegistryEntry> {
  const status = input.status ?? "ready";
  const res = await db.query(
    `INSERT INTO ${REGISTRY_TABLE} AS e
       (model_name, deployment_environment, endpoint, namespace, served_model_name, status,
        disabled_reason, fallbacks, managed_by, revision, metadata)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[], $9, $10, $11::jsonb)
     ON CONFLICT (model_name, deployment_environment) DO UPDATE SET
       endpoint = EXCLUDED.endpoint,
       namespace = EXCLUDED.namespace,
       served_model_name = EXCLUDED.served_model_name,
       status = EXCLUDED.status,
       disabled_reason = EXCLUDED.disabled_reason,
       fallbacks = EXCLUDED.fallbacks,
       managed_by = EXCLUDED.managed_by,
       revision = EXCLUDED.revision,
       metadata = EXCLUDED.metadata
     RETURNING *`,
    [
      input.modelName,
      input.environment,
      input.endpoint,
      input.namespace,
      input.servedModelName ?? input.modelName,
      status,
      status === "disabled" ? input.disabledReason : null,
      input.fallbacks ?? [],
      input.managedBy ?? null,
      input.revision ?? null,
      JSON.stringify(input.metadata ?? {}),
    ],
  );
  return rowToEntry(res.rows[0]);
}

/**
 * Sets a row's status (`disabled` needs a reason, checked here and named as `reasonField`;
 * `ready` clears it). Returns the updated row, or undefined when there is no such row.
 */
export async function setStatus(
  db: Queryable,
  environment: Environment,
  modelName: string,
  status: RegistryStatus,
  reason?: string,
  reasonField = "reason",
): Promise<RegistryEntry | undefined> {
  if (status === "disabled") {
    const problems = reasonProblems(reason, reasonField);
    if (problems.length) throw new RegistryInputError(problems);
  }
  const res = await db.query(
    `UPDATE ${REGISTRY_TABLE} SET status = $3, disabled_reason = $4
      WHERE deployment_environment = $1 AND model_name = $2
      RETURNING *`,
    [environment, modelName, status, status === "disabled" ? reason : null],
  );
  return res.rows[0] ? rowToEntry(res.rows[0]) : undefined;
}

/** Records a health check time (now by default) for a row; returns whether the row exists. */
export async function recordHealthCheck(
  db: Queryable,
  environment: Environment,
  modelName: string,
  at: Date = new Date(),
): Promise<boolean> {
  const res = await db.query(
    `UPDATE ${REGISTRY_TABLE} SET last_health_check_at = $3
      WHERE deployment_environment = $1 AND model_name = $2`,
    [environment, modelName, at],
  );
  return (res.rowCount ?? 0) > 0;
}
