// npm run verify -- --stack <name>: post-deploy checks of a stack through its router.
// Reads DATABASE_URL (registry), ROUTER_URL / --router-url and ROUTER_API_KEY from the
// environment, so no credential ever appears on a command line.
import { Command, InvalidArgumentError, Option } from "commander";
import { withRegistryClient } from "../router/src/registry/connect";
import { listEntries } from "../router/src/registry/queries";
import { Environment, ENVIRONMENTS } from "../router/src/registry/types";
import { commanderOutput, main, runScript, ScriptError, ScriptIo, USAGE_EXIT } from "./lib/cli";
import { readStack, registryCa, requireDatabaseUrl } from "./lib/stack";
import {
  CheckResult,
  COMPLETION_BUDGET_MS,
  ExpectedModel,
  formatResults,
  passed,
  verifyPlatform,
  verifyStack,
} from "./lib/verification";

/** Exit codes (also in --help). */
export const EXIT = { ok: 0, failed: 1, usage: USAGE_EXIT } as const;

/** Without a stack: every row of the environment is expected as it stands. */
async function modelsFromRegistry(
  databaseUrl: string,
  ca: string | undefined,
  environment: Environment,
): Promise<ExpectedModel[]> {
  try {
    const rows = await withRegistryClient(databaseUrl, (db) => listEntries(db, { environment }), {
      ca,
    });
    return rows.map((r) => ({
      name: r.modelName,
      enabled: r.status === "ready",
      endpoint: r.endpoint,
    }));
  } catch (e) {
    throw new ScriptError((e as Error).message, EXIT.failed);
  }
}

interface VerifyOptions {
  stack?: string;
  environment?: Environment;
  routerUrl?: string;
  format: "table" | "json";
  timeoutMs: number;
}

export async function run(args: string[], io: ScriptIo): Promise<number> {
  return runScript(io, EXIT.usage, async () => {
    const program = new Command("npm run verify --")
      .description(
        "Verify a deployed stack: registry rows ready at the Service endpoints, a completion per model through the router within the budget, disabled models denied, /metrics only on the metrics port.",
      )
      .option("--stack <name>", "stack whose config (and outputs) say what should be deployed")
      .addOption(
        new Option(
          "--environment <env>",
          "without --stack: verify every registry row of this environment as it stands",
        ).choices(ENVIRONMENTS),
      )
      .option(
        "--router-url <url>",
        "router base URL (default: ROUTER_URL, or the stack's routerUrl output)",
      )
      .addOption(
        new Option("--format <format>", "output format")
          .choices(["table", "json"])
          .default("table"),
      )
      .option(
        "--timeout-ms <ms>",
        "budget of one test completion",
        (v) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 1)
            throw new InvalidArgumentError("--timeout-ms must be a positive integer");
          return n;
        },
        COMPLETION_BUDGET_MS,
      )
      .addHelpText(
        "after",
        `
Environment: DATABASE_URL (registry, required), PGSSLROOTCERT (the registry's CA, default the
stack's registry.sslrootcert), ROUTER_URL, ROUTER_METRICS_URL (the router's metrics port, e.g.
http://127.0.0.1:9090; checked when set), ROUTER_API_KEY (when the router authenticates). With \`pulumi\` on PATH the stack's config and outputs come from
\`pulumi config --json\` / \`pulumi stack output --json\`; otherwise from Pulumi.<stack>.yaml.

Exit codes: 0 all checks passed, 1 a check failed, 2 invalid usage or config.`,
      )
      .exitOverride()
      .configureOutput(commanderOutput(io));
    program.parse(args, { from: "user" });
    const o = program.opts<VerifyOptions>();
    if (!o.stack && !o.environment)
      throw new ScriptError(
        "pass --stack <name>, or --environment <env> with --router-url",
        EXIT.usage,
      );

    let results: CheckResult[];
    let subject: string;
    if (o.stack) {
      const view = await readStack(o.stack, io);
      subject = `stack ${o.stack} (${view.spec.environment}, config from ${view.source === "pulumi" ? "pulumi" : `Pulumi.${o.stack}.yaml`})`;
      results = await verifyStack(view, io, o.routerUrl ?? io.env.ROUTER_URL, o.timeoutMs);
    } else {
      const environment = o.environment!;
      const routerUrl = o.routerUrl ?? io.env.ROUTER_URL;
      if (!routerUrl)
        throw new ScriptError(
          "--router-url (or ROUTER_URL) is required without --stack",
          EXIT.usage,
        );
      const databaseUrl = requireDatabaseUrl(io.env);
      const ca = registryCa(io.env);
      subject = `environment ${environment}`;
      results = await verifyPlatform({
        environment,
        routerUrl: routerUrl.replace(/\/+$/, ""),
        metricsUrl: io.env.ROUTER_METRICS_URL?.replace(/\/+$/, ""),
        databaseUrl,
        registryCa: ca,
        apiKey: io.env.ROUTER_API_KEY,
        models: await modelsFromRegistry(databaseUrl, ca, environment),
        completionTimeoutMs: o.timeoutMs,
      });
    }
    const ok = passed(results);
    if (o.format === "json") io.out(JSON.stringify({ subject, ok, results }, null, 2));
    else io.out(`Verifying ${subject}\n\n${formatResults(results)}`);
    return ok ? EXIT.ok : EXIT.failed;
  });
}

if (require.main === module) main(run);
