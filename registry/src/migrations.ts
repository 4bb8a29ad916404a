// Versioned up/down SQL for the registry schema, embedded as strings so they ship in dist/.
// Applied one transaction per version under a session advisory lock, so concurrent
// migrators (several `pulumi up`s, the CLI, the local platform) serialize instead of racing.
import type { ClientBase, Pool, PoolClient } from "pg";
import type { Environment } from "./environments";
import { REGISTRY_TABLE } from "./types";

/** Channel of the trigger's NOTIFY; payload is `{"environment": ..., "model": ...}`. */
export const REGISTRY_CHANNEL = "model_registry_changed";

/**
 * Table recording applied versions. Not `schema_migrations`: a registry database shared
 * with other services may already have golang-migrate's table of that name.
 */
export const MIGRATIONS_TABLE = "model_registry_migrations";

/** Key of the advisory lock held while migrating (any constant bigint shared by all migrators). */
export const MIGRATION_LOCK_KEY = 7_300_417_912;

/**
 * Prefix of the NOLOGIN group role of each environment (`vllm_registry_env_staging`): row-level
 * security lets members of that role see and write only that environment's rows.
 */
export const ENVIRONMENT_ROLE_PREFIX = "vllm_registry_env_";

/** The group role whose members may read and write `environment`'s rows. */
export function environmentRole(environment: Environment): string {
  return `${ENVIRONMENT_ROLE_PREFIX}${environment}`;
}

export interface Migration {
  version: number;
  name: string;
  up: string;
  down: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "create_model_registry_entries",
    up: `
CREATE TABLE ${REGISTRY_TABLE} (
  id bigserial PRIMARY KEY,
  model_name text NOT NULL
    CONSTRAINT model_name_format CHECK (model_name ~ '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' AND length(model_name) <= 63),
  deployment_environment text NOT NULL
    CONSTRAINT deployment_environment_valid CHECK (deployment_environment IN ('development', 'staging', 'production')),
  endpoint text NOT NULL
    CONSTRAINT endpoint_format CHECK (endpoint ~ '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[0-9]{1,5}$'),
  namespace text NOT NULL DEFAULT 'system'
    CONSTRAINT namespace_not_empty CHECK (namespace <> ''),
  served_model_name text NOT NULL
    CONSTRAINT served_model_name_not_empty CHECK (served_model_name <> ''),
  status text NOT NULL DEFAULT 'ready'
    CONSTRAINT status_valid CHECK (status IN ('ready', 'disabled')),
  disabled_reason text,
  fallbacks text[] NOT NULL DEFAULT '{}',
  last_health_check_at timestamptz,
  managed_by text,
  revision text,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT disabled_needs_reason CHECK (status <> 'disabled' OR coalesce(disabled_reason, '') <> ''),
  CONSTRAINT model_registry_entries_model_environment_key UNIQUE (model_name, deployment_environment)
);
CREATE INDEX model_registry_entries_environment_status_idx
  ON ${REGISTRY_TABLE} (deployment_environment, status);
CREATE FUNCTION model_registry_entries_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER model_registry_entries_touch BEFORE UPDATE ON ${REGISTRY_TABLE}
  FOR EACH ROW EXECUTE FUNCTION model_registry_entries_touch();
`,
    down: `
DROP TABLE ${REGISTRY_TABLE};
DROP FUNCTION model_registry_entries_touch();
`,
  },
  {
    version: 2,
    name: "notify_model_registry_changed",
    // A trigger, not the writers, sends the NOTIFY: every writer (program, CLI, psql) invalidates.
    up: `
CREATE FUNCTION model_registry_entries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM pg_notify('${REGISTRY_CHANNEL}',
      json_build_object('environment', OLD.deployment_environment, 'model', OLD.model_name)::text);
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.model_name, NEW.deployment_environment)
      IS DISTINCT FROM (OLD.model_name, OLD.deployment_environment)) THEN
    PERFORM pg_notify('${REGISTRY_CHANNEL}',
      json_build_object('environment', NEW.deployment_environment, 'model', NEW.model_name)::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER model_registry_entries_notify AFTER INSERT OR UPDATE OR DELETE ON ${REGISTRY_TABLE}
  FOR EACH ROW EXECUTE FUNCTION model_registry_entries_notify();
`,
    down: `
DROP TRIGGER model_registry_entries_notify ON ${REGISTRY_TABLE};
DROP FUNCTION model_registry_entries_notify();
`,
  },
  {
    version: 3,
    name: "environment_row_level_security",
    // Membership in the environment's group role decides, not a session setting: a login role
    // cannot SET its way into another group (that needs ADMIN on the group role). pg_roles is
    // looked up instead of calling pg_has_role(name), which raises for a role that does not
    // exist (a server without a registry stack's roles). Superusers and the table owner (the
    // registry stack's owner role, which runs the migrations) bypass these policies; FORCE
    // would not hold the owner anyway, since it may turn FORCE off again.
    up: `
ALTER TABLE ${REGISTRY_TABLE} ENABLE ROW LEVEL SECURITY;
CREATE POLICY model_registry_entries_environment ON ${REGISTRY_TABLE}
  USING (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
    WHERE r.rolname = '${ENVIRONMENT_ROLE_PREFIX}' || deployment_environment
      AND pg_catalog.pg_has_role(r.oid, 'MEMBER')))
  WITH CHECK (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
    WHERE r.rolname = '${ENVIRONMENT_ROLE_PREFIX}' || deployment_environment
      AND pg_catalog.pg_has_role(r.oid, 'MEMBER')));
`,
    down: `
DROP POLICY model_registry_entries_environment ON ${REGISTRY_TABLE};
ALTER TABLE ${REGISTRY_TABLE} DISABLE ROW LEVEL SECURITY;
`,
  },
];

/** Highest known version: what `up` migrates to by default. */
export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

export interface MigrateOptions {
  /** `up` (default) applies pending versions; `down` reverts applied ones. */
  direction?: "up" | "down";
  /** Version to end at: `up` defaults to LATEST_VERSION, `down` to one step back (0 = empty). */
  target?: number;
  /** Called once per applied or reverted version (progress for CLIs). */
  onStep?: (step: MigrationStep) => void;
}

export interface MigrationStep {
  direction: "up" | "down";
  version: number;
  name: string;
}

export interface MigrateResult {
  from: number;
  to: number;
  steps: MigrationStep[];
}

type Queryable = ClientBase | Pool;

function isPool(db: Queryable): db is Pool {
  return typeof (db as Pool).totalCount === "number";
}

/** Version currently applied (0 when none); needs no lock. */
export async function currentVersion(db: Queryable): Promise<number> {
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [
    MIGRATIONS_TABLE,
  ]);
  if (!exists.rows[0].t) return 0;
  const res = await db.query<{ v: number | null }>(
    `SELECT max(version) AS v FROM ${MIGRATIONS_TABLE}`,
  );
  return res.rows[0].v ?? 0;
}

/**
 * Why the connected role cannot migrate the registry, or undefined when it can. Migrations create
 * objects in `public` (CREATE TABLE IF NOT EXISTS checks CREATE on the schema before it looks
 * for the table: https://www.postgresql.org/docs/current/ddl-priv.html) and alter the registry's
 * tables, which only their owner may (https://www.postgresql.org/docs/current/sql-altertable.html).
 * An environment's login role has neither.
 */
export async function migrationRoleProblem(db: Queryable): Promise<string | undefined> {
  const { rows } = await db.query<{ role: string; create: boolean; owners: string | null }>(
    `SELECT current_user AS role, has_schema_privilege('public', 'CREATE') AS create,
       (SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ', ') FROM pg_class
         WHERE oid IN (to_regclass($1), to_regclass($2)) AND NOT pg_has_role(relowner, 'USAGE')) AS owners`,
    [MIGRATIONS_TABLE, REGISTRY_TABLE],
  );
  const { role, create, owners } = rows[0];
  const why = [
    ...(create ? [] : ["it has no CREATE privilege on schema public"]),
    ...(owners ? [`the registry's tables belong to ${owners}`] : []),
  ].join(" and ");
  return (
    why && `role ${role} cannot migrate the registry: ${why}; migrate as the role that owns it`
  );
}

/**
 * Migrates the registry schema up or down to a target version. Takes a client or a pool
 * (the lock is session-level, so a pool lends one client for the whole run).
 */
export async function migrate(db: Queryable, options: MigrateOptions = {}): Promise<MigrateResult> {
  const direction = options.direction ?? "up";
  if (direction !== "up" && direction !== "down")
    throw new Error(`direction '${String(direction)}' is invalid: use up or down`);
  const target = options.target;
  if (target !== undefined && (!Number.isInteger(target) || target < 0 || target > LATEST_VERSION))
    throw new Error(`target ${target} is invalid: use a version between 0 and ${LATEST_VERSION}`);
  const problem = await migrationRoleProblem(db);
  if (problem) throw new Error(problem);
  const client: ClientBase = isPool(db) ? await db.connect() : db;
  try {
    await client.query(`SELECT pg_advisory_lock($1)`, [MIGRATION_LOCK_KEY]);
    try {
      return await migrateLocked(client, direction, target, options.onStep);
    } finally {
      await client.query(`SELECT pg_advisory_unlock($1)`, [MIGRATION_LOCK_KEY]);
    }
  } finally {
    if (isPool(db)) (client as PoolClient).release();
  }
}

async function migrateLocked(
  client: ClientBase,
  direction: "up" | "down",
  target: number | undefined,
  onStep?: (step: MigrationStep) => void,
): Promise<MigrateResult> {
  await client.query(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const from = await currentVersion(client);
  const { pending } = planMigration(from, direction, target);
  const steps: MigrationStep[] = [];
  for (const m of pending) {
    await client.query("BEGIN");
    try {
      await client.query(direction === "up" ? m.up : m.down);
      if (direction === "up")
        await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)`, [
          m.version,
          m.name,
        ]);
      else await client.query(`DELETE FROM ${MIGRATIONS_TABLE} WHERE version = $1`, [m.version]);
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK");
      throw new Error(
        `migration ${m.version} (${m.name}) ${direction} failed: ${(err as Error).message}`,
      );
    }
    const step = { direction, version: m.version, name: m.name };
    steps.push(step);
    onStep?.(step);
  }
  return { from, to: await currentVersion(client), steps };
}

/** The migrations that take the schema from version `from` towards `target`, in order. */
export function planMigration(
  from: number,
  direction: "up" | "down",
  target?: number,
): { to: number; pending: Migration[] } {
  const to = target ?? (direction === "up" ? LATEST_VERSION : Math.max(0, from - 1));
  const pending =
    direction === "up"
      ? MIGRATIONS.filter((m) => m.version > from && m.version <= to)
      : MIGRATIONS.filter((m) => m.version <= from && m.version > to).reverse();
  return { to: pending.length ? to : from, pending };
}
