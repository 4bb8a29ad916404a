// npm run registry -- <command>: the model registry for operators (emergencies, inspection).
// Reads DATABASE_URL (else, with --stack, the stack's registryUrl output) and REDIS_URL (optional, for cache invalidation and status).
// Writes run in a transaction that --dry-run rolls back, so a dry run shows the exact result
// (including constraint errors) and sends no NOTIFY.
import { Command, Option } from "commander";
import type { Client } from "pg";
import {
  decodeEntry,
  invalidateCache,
  InvalidateOutcome,
  connectClient,
  connectRedis,
  redactUrl,
  readCaFile,
  currentVersion,
  LATEST_VERSION,
  migrate,
  MigrateResult,
  migrationRoleProblem,
  planMigration,
  printable,
  quoted,
  getEntry,
  listEntries,
  setStatus,
  writeEntry,
  CheckedEntry,
  checkedEntry,
  Environment,
  environmentProblems,
  FieldNames,
  modelNameProblems,
  REASON_MAX,
  RegistryEntry,
  RegistryInputError,
  registryKey,
  RegistryStatus,
  STATUSES,
} from "@vllm-fleet/registry";
import { EXIT, main, runScript, scriptCommand, ScriptError, ScriptIo } from "./lib/cli";
import {
  Format,
  formatCsv,
  formatOption,
  formatTable,
  minuteCell,
  printResult,
} from "./lib/format";
import { onPath, PulumiCli } from "./lib/pulumi";
import { stackRegistryUrl } from "./lib/stack";

/** Exit codes: the table every script shares (printed by --help). */
export { EXIT };

/** Who the CLI records as `managed_by` on rows it registers. */
export const CLI_MANAGER = "registry-cli";

/** The script's io, with where DATABASE_URL came from when --stack set it (for messages). */
type CliIo = ScriptIo & { databaseUrlFrom?: string };

// ---- output ----------------------------------------------------------------------------

const TABLE_HEADERS = [
  "ID",
  "Model Name",
  "Endpoint",
  "Status",
  "Environment",
  "Namespace",
  "Last Health",
  "Updated",
];
const tableRow = (e: RegistryEntry) => [
  String(e.id),
  e.modelName,
  e.endpoint,
  e.status,
  e.environment,
  e.namespace,
  minuteCell(e.lastHealthCheckAt),
  minuteCell(e.updatedAt),
];

const CSV_HEADERS = [
  "id",
  "model_name",
  "deployment_environment",
  "endpoint",
  "namespace",
  "served_model_name",
  "status",
  "disabled_reason",
  "fallbacks",
  "last_health_check_at",
  "managed_by",
  "revision",
  "created_at",
  "updated_at",
];
const csvRow = (e: RegistryEntry) => [
  String(e.id),
  e.modelName,
  e.environment,
  e.endpoint,
  e.namespace,
  e.servedModelName,
  e.status,
  e.disabledReason ?? "",
  e.fallbacks.join(";"),
  e.lastHealthCheckAt ?? "",
  e.managedBy ?? "",
  e.revision ?? "",
  e.createdAt,
  e.updatedAt,
];

/** Rows as CSV: every column, exact but for neutralised formula cells. */
const entriesCsv = (entries: RegistryEntry[]) => formatCsv(CSV_HEADERS, entries.map(csvRow));

/** `list` as text: "Found N model deployment(s)" and a table. */
function listText(entries: RegistryEntry[]): string {
  const found = `Found ${entries.length} model deployment(s)`;
  return entries.length
    ? `${found}\n\n${formatTable(TABLE_HEADERS, entries.map(tableRow))}`
    : found;
}

function describeCache(outcome: InvalidateOutcome): string {
  switch (outcome.result) {
    case "deleted":
      return `Cache: ${outcome.key} deleted`;
    case "absent":
      return `Cache: ${outcome.key} was not cached`;
    case "skipped":
      return "Cache: REDIS_URL unset, not invalidated here; routers drop the entry on NOTIFY";
    case "failed":
      return `Cache: could not delete ${outcome.key} (${outcome.error}); routers drop it on NOTIFY`;
  }
}

// ---- database access -------------------------------------------------------------------

async function withDb<T>(io: CliIo, fn: (db: Client) => Promise<T>): Promise<T> {
  const url = io.env.DATABASE_URL;
  if (!url)
    throw new ScriptError(
      "DATABASE_URL is not set: export DATABASE_URL=postgresql://user:password@host:5432/model_registry, or pass --stack <name> to use the stack's registryUrl output",
      EXIT.usage,
    );
  let ca: string | undefined;
  if (io.env.PGSSLROOTCERT) {
    try {
      ca = readCaFile(io.env.PGSSLROOTCERT, "--sslrootcert / PGSSLROOTCERT");
    } catch (e) {
      throw new ScriptError(printable((e as Error).message), EXIT.usage);
    }
  }
  let db: Client;
  try {
    db = await connectClient(url, { ca });
  } catch (e) {
    throw new ScriptError(
      `${printable((e as Error).message)}; check ${io.databaseUrlFrom ?? "DATABASE_URL"} and that PostgreSQL is running`,
      EXIT.unavailable,
    );
  }
  try {
    return await fn(db);
  } catch (e) {
    if ((e as { code?: string }).code === "42P01")
      throw new ScriptError(
        "the registry table does not exist: the registry is not migrated; `pulumi -C registry-stack up` migrates the shared registry (a database of your own: `npm run registry -- migrate` as its owner)",
        EXIT.unavailable,
      );
    throw e;
  } finally {
    await db.end().catch(() => undefined);
  }
}

interface WriteOptions {
  modelName: string;
  environment: Environment;
  dryRun?: boolean;
  format: Format;
}

/** The library's input rules name the field and quote the value: their errors are usage errors. */
function usageError(e: unknown): unknown {
  return e instanceof RegistryInputError ? new ScriptError(e.message, EXIT.usage) : e;
}

/** Runs one write in a transaction (rolled back on --dry-run), invalidates the cache, reports. */
async function write(
  io: CliIo,
  opts: WriteOptions,
  verb: string,
  change: (db: Client) => Promise<RegistryEntry | undefined>,
): Promise<void> {
  const entry = await withDb(io, async (db) => {
    await db.query("BEGIN");
    try {
      const result = await change(db);
      await db.query(result && !opts.dryRun ? "COMMIT" : "ROLLBACK");
      return result;
    } catch (e) {
      await db.query("ROLLBACK");
      throw usageError(e);
    }
  });
  if (!entry)
    throw new ScriptError(
      `model not found in registry: ${opts.modelName} (environment ${opts.environment}); see \`npm run registry -- list --environment ${opts.environment}\``,
      EXIT.notFound,
    );
  const cache = opts.dryRun
    ? undefined
    : await invalidateCache(io.env.REDIS_URL, entry.environment, entry.modelName);
  if (cache?.result === "failed") io.err(`warning: ${printable(describeCache(cache))}`);
  if (entry.managedBy && entry.managedBy !== CLI_MANAGER && !opts.dryRun)
    io.err(
      `note: this row is managed by stack ${entry.managedBy}; \`pulumi refresh\` shows the change as drift and \`pulumi up\` reverts it`,
    );
  printResult(io, opts.format, {
    json: { action: verb, dryRun: !!opts.dryRun, entry, cache: cache ?? null },
    csv: () => entriesCsv([entry]),
    text: () => {
      // Each line is one value's line, escaped: nothing a row holds can add a line of its own.
      const head = opts.dryRun
        ? `[dry-run] would be ${verb} (nothing written): ${entry.modelName} (${entry.environment})`
        : `✓ Model ${verb}: ${entry.modelName} (${entry.environment})`;
      const reason = entry.disabledReason ? `\nReason: ${printable(entry.disabledReason)}` : "";
      const cacheLine = cache ? describeCache(cache) : "Cache: untouched (dry run)";
      return `${printable(head)}${reason}\n\n${formatTable(TABLE_HEADERS, [tableRow(entry)])}\n\n${printable(cacheLine)}`;
    },
  });
}

// ---- option parsing --------------------------------------------------------------------

/**
 * An option parser from a registry rule. Its error is the rule's message (naming the flag, the
 * value escaped and cut short), not commander's, which would echo the whole value raw.
 */
function validated<T extends string>(
  problems: (v: string, field: string) => string[],
  flag: string,
) {
  return (value: string): T => {
    const p = problems(value, flag);
    if (p.length) throw new ScriptError(p.join("; "), EXIT.usage);
    return value as T;
  };
}

// --model-name and --environment are checked as they are parsed, unless (`check` false) their
// command checks them with the whole row they belong to.
const modelNameOption = (check = true) => {
  const o = new Option("--model-name <name>", "model identifier, e.g. llama-2-7b");
  if (check) o.argParser(validated(modelNameProblems, "--model-name"));
  return o.makeOptionMandatory();
};
const environmentOption = (mandatory: boolean, check = true) => {
  const o = new Option(
    "--environment <env>",
    "deployment environment (development, staging, production)",
  );
  if (check) o.argParser(validated<Environment>(environmentProblems, "--environment"));
  return mandatory ? o.makeOptionMandatory() : o;
};
const FORMATS: Format[] = ["table", "json", "csv"];
const dryRunOption = () => new Option("--dry-run", "show the result without writing anything");

/** `register`'s flags, as the row's rules name them in messages. */
const REGISTER_FLAGS: FieldNames = {
  modelName: "--model-name",
  environment: "--environment",
  endpoint: "--endpoint",
  namespace: "--namespace",
  servedModelName: "--served-model-name",
  fallbacks: "--fallbacks",
};

interface RegisterOptions extends WriteOptions {
  endpoint: string;
  namespace: string;
  servedModelName?: string;
  fallbacks?: string[];
}

/** `register`'s flags as the row they make, checked as a whole before connecting. */
function registerEntry(o: RegisterOptions): CheckedEntry {
  try {
    return checkedEntry(
      {
        modelName: o.modelName,
        environment: o.environment,
        endpoint: o.endpoint,
        namespace: o.namespace,
        servedModelName: o.servedModelName,
        fallbacks: o.fallbacks ?? [],
        managedBy: CLI_MANAGER,
      },
      REGISTER_FLAGS,
    );
  } catch (e) {
    throw usageError(e);
  }
}

/** `a, b` as a list of names (each checked with the row). */
function splitNames(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

// ---- commands --------------------------------------------------------------------------

function buildProgram(io: CliIo): Command {
  const program = scriptCommand(io, {
    name: "npm run registry --",
    description:
      "Operate the model registry (PostgreSQL, cached in Redis). Reads DATABASE_URL (or, with --stack, the stack's registryUrl output) and optional REDIS_URL.",
    help: "Rows managed by a stack (managed_by) are reverted by its next `pulumi up`; `pulumi refresh` shows edits as drift.",
  })
    // --stack and --sslrootcert apply to every command: show them in each command's help.
    .configureHelp({ showGlobalOptions: true })
    .option(
      "--sslrootcert <file>",
      "PEM file of the registry's CA, for sslmode require/verify-ca/verify-full in DATABASE_URL (default: PGSSLROOTCERT)",
    )
    .option(
      "--stack <name>",
      "without DATABASE_URL: connect with the stack's registryUrl output, its environment's writer role (pulumi stack output --show-secrets)",
    )
    // The flag wins over the environment, as libpq's sslrootcert over PGSSLROOTCERT.
    .hook("preAction", async () => {
      const { sslrootcert, stack } = program.opts<{ sslrootcert?: string; stack?: string }>();
      if (sslrootcert) io = { ...io, env: { ...io.env, PGSSLROOTCERT: sslrootcert } };
      if (stack) {
        const from = io.env.DATABASE_URL
          ? "DATABASE_URL"
          : `the registryUrl output of stack ${stack}`;
        const pulumi = onPath("pulumi", io.env) ? new PulumiCli({ env: io.env }) : undefined;
        const url = await stackRegistryUrl(stack, io.env, pulumi);
        io = { ...io, env: { ...io.env, DATABASE_URL: url }, databaseUrlFrom: from };
      }
    });

  program
    .command("migrate")
    .description(
      "apply (or revert) registry schema migrations under an advisory lock, as the role that owns the registry " +
        "(a database of your own, or the registry's owner role); environments' login roles cannot, and " +
        "`pulumi -C registry-stack up` migrates the shared registry",
    )
    .addOption(new Option("--down", "revert instead of apply"))
    .addOption(
      new Option("--target <version>", `version to end at (0..${LATEST_VERSION})`).argParser(
        (v) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 0 || n > LATEST_VERSION)
            throw new ScriptError(
              `--target ${quoted(v)} is invalid: use a version between 0 and ${LATEST_VERSION}`,
              EXIT.usage,
            );
          return n;
        },
      ),
    )
    .addOption(dryRunOption())
    .addOption(formatOption(FORMATS))
    .action(async (o: { down?: boolean; target?: number; dryRun?: boolean; format: Format }) => {
      const direction: "up" | "down" = o.down ? "down" : "up";
      const result: MigrateResult = await withDb(io, async (db) => {
        const problem = await migrationRoleProblem(db);
        if (problem)
          throw new ScriptError(
            `${printable(problem)} (DATABASE_URL); \`pulumi -C registry-stack up\` migrates the shared registry as its owner role`,
            EXIT.usage,
          );
        if (!o.dryRun)
          return migrate(db, {
            direction,
            target: o.target,
            onStep: (s) =>
              o.format === "table" &&
              io.out(`${s.direction === "up" ? "applied" : "reverted"} ${s.version} ${s.name}`),
          });
        const from = await currentVersion(db);
        const { to, pending } = planMigration(from, direction, o.target);
        const steps = pending.map((m) => ({ direction, version: m.version, name: m.name }));
        return { from, to, steps };
      });
      printResult(io, o.format, {
        json: { dryRun: !!o.dryRun, ...result },
        text: () =>
          o.dryRun
            ? `[dry-run] schema at version ${result.from}; would ${direction === "up" ? "apply" : "revert"}: ${
                result.steps.map((s) => `${s.version} ${s.name}`).join(", ") || "nothing"
              }`
            : `Registry schema at version ${result.to} (latest ${LATEST_VERSION}); ${result.steps.length} migration(s) ${direction === "up" ? "applied" : "reverted"}`,
      });
    });

  program
    .command("list")
    .description("list registered model deployments")
    .addOption(environmentOption(false))
    .addOption(new Option("--status <status>", "only rows with this status").choices(STATUSES))
    .addOption(
      new Option("--model-name <name>", "only this model").argParser(
        validated(modelNameProblems, "--model-name"),
      ),
    )
    .addOption(formatOption(FORMATS))
    .action(
      async (o: {
        environment?: Environment;
        status?: RegistryStatus;
        modelName?: string;
        format: Format;
      }) => {
        const entries = await withDb(io, (db) => listEntries(db, o));
        printResult(io, o.format, {
          json: entries,
          csv: () => entriesCsv(entries),
          text: () => listText(entries),
        });
      },
    );

  program
    .command("status")
    .description("show one model's row and the state of its Redis cache entry")
    .addOption(modelNameOption())
    .addOption(environmentOption(true))
    .addOption(formatOption(FORMATS))
    .action(async (o: { modelName: string; environment: Environment; format: Format }) => {
      const entry = await withDb(io, (db) => getEntry(db, o.environment, o.modelName));
      if (!entry)
        throw new ScriptError(
          `model not found in registry: ${o.modelName} (environment ${o.environment})`,
          EXIT.notFound,
        );
      const cache = await cacheState(io, entry);
      printResult(io, o.format, {
        json: { entry, cache },
        csv: () => entriesCsv([entry]),
        // One line per field, each escaped as a whole.
        text: () =>
          [
            `Model: ${entry.modelName}`,
            `Environment: ${entry.environment}`,
            `Status: ${entry.status}${entry.disabledReason ? ` (${entry.disabledReason})` : ""}`,
            `Endpoint: ${entry.endpoint}`,
            `Namespace: ${entry.namespace}`,
            `Served model name: ${entry.servedModelName}`,
            `Fallbacks: ${entry.fallbacks.join(", ") || "none"}`,
            `Revision: ${entry.revision ?? ""}`,
            `Managed by: ${entry.managedBy ?? ""}`,
            `Last health check: ${minuteCell(entry.lastHealthCheckAt) || "never"}`,
            `Updated: ${minuteCell(entry.updatedAt)}`,
            `Cache: ${cache.state}${cache.detail ? ` (${cache.detail})` : ""}`,
          ]
            .map((line) => printable(line))
            .join("\n"),
      });
    });

  program
    .command("register")
    .description("register (or re-register) a model deployment as ready")
    // Its flags make one row, checked as a whole (registerEntry) before connecting.
    .addOption(modelNameOption(false))
    .addOption(
      new Option("--endpoint <host:port>", "Service endpoint with port").makeOptionMandatory(),
    )
    .addOption(environmentOption(true, false))
    .addOption(new Option("--namespace <namespace>", "Kubernetes namespace").default("system"))
    .addOption(
      new Option(
        "--served-model-name <name>",
        "name vLLM serves the model as (default: --model-name)",
      ),
    )
    .addOption(
      new Option(
        "--fallbacks <names>",
        "comma-separated models tried when this one fails",
      ).argParser(splitNames),
    )
    .addOption(dryRunOption())
    .addOption(formatOption(FORMATS))
    .action(async (o: RegisterOptions) => {
      const entry = registerEntry(o);
      return write(io, o, "registered", (db) => writeEntry(db, entry));
    });

  const statusCommand = (
    name: string,
    description: string,
    verb: string,
    status: RegistryStatus,
    reason: Option | undefined,
    defaultReason?: string,
  ) => {
    const cmd = program
      .command(name)
      .description(description)
      .addOption(modelNameOption())
      .addOption(environmentOption(true));
    if (reason) cmd.addOption(reason);
    cmd
      .addOption(dryRunOption())
      .addOption(formatOption(FORMATS))
      .action(async (o: WriteOptions & { reason?: string }) =>
        write(io, o, verb, (db) =>
          setStatus(db, o.environment, o.modelName, status, o.reason ?? defaultReason, "--reason"),
        ),
      );
  };
  statusCommand("enable", "route traffic to a model again", "enabled", "ready", undefined);
  statusCommand(
    "disable",
    "stop routing to a model (routers deny it at once)",
    "disabled",
    "disabled",
    new Option(
      "--reason <text>",
      `why, one line of at most ${REASON_MAX} characters (shown to clients and operators)`,
    ).makeOptionMandatory(),
  );
  statusCommand(
    "deregister",
    "remove a model from routing (the row stays, disabled, for the record)",
    "deregistered",
    "disabled",
    new Option("--reason <text>", `why, one line of at most ${REASON_MAX} characters`).default(
      "deregistered",
    ),
  );
  return program;
}

interface CacheState {
  state: "cached" | "stale" | "not cached" | "not configured" | "unavailable";
  key: string;
  ttlSeconds?: number;
  detail?: string;
}

async function cacheState(io: CliIo, entry: RegistryEntry): Promise<CacheState> {
  const key = registryKey(entry.environment, entry.modelName);
  const url = io.env.REDIS_URL;
  if (!url) return { state: "not configured", key, detail: "REDIS_URL unset" };
  try {
    const redis = await connectRedis(url, { retryStrategy: () => null });
    try {
      const [value, ttl] = await Promise.all([redis.get(key), redis.ttl(key)]);
      if (value === null) return { state: "not cached", key };
      const cached = decodeEntry(value);
      const same = cached && JSON.stringify(cached) === JSON.stringify(entry);
      return {
        state: same ? "cached" : "stale",
        key,
        ttlSeconds: ttl,
        detail: `${key}, ttl ${ttl} s${same ? "" : ", differs from the database"}`,
      };
    } finally {
      redis.disconnect();
    }
  } catch (e) {
    return { state: "unavailable", key, detail: `${redactUrl(url)}: ${(e as Error).message}` };
  }
}

/** Runs the CLI with `args` (without node and script); resolves to the exit code. */
export async function run(args: string[], io: ScriptIo): Promise<number> {
  return runScript(io, buildProgram(io), args);
}

if (require.main === module) main(run);
