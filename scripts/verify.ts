// npm run verify -- --stack <name>: post-deploy checks of a stack through its router.
// Reads DATABASE_URL (registry; else the stack's registryUrl output), ROUTER_URL / --router-url and ROUTER_API_KEY from the
// environment, so no credential ever appears on a command line.
import { InvalidArgumentError, Option } from "commander";
import { Environment, ENVIRONMENTS } from "@vllm-fleet/registry";
import { EXIT, main, runScript, scriptCommand, ScriptError, ScriptIo } from "./lib/cli";
import { requireStackView, registryCa, requireDatabaseUrl } from "./lib/stack";
import { Format, formatOption, printResult } from "./lib/format";
import {
  CheckResult,
  COMPLETION_BUDGET_MS,
  formatResults,
  metricsBaseUrl,
  passed,
  routerBaseUrl,
  verifyPlatform,
  verifyStack,
} from "./lib/verification";

/** Exit codes: the table every script shares (printed by --help). */
export { EXIT };

interface VerifyOptions {
  stack?: string;
  environment?: Environment;
  routerUrl?: string;
  format: Format;
  timeoutMs: number;
}

export async function run(args: string[], io: ScriptIo): Promise<number> {
  const program = scriptCommand(io, {
    name: "npm run verify --",
    description:
      "Verify a deployed stack: registry rows ready at the Service endpoints, a completion per model through the router within the budget, disabled models denied, /metrics only on the metrics port.",
    help: `Registry: DATABASE_URL when set, else (with --stack) the stack's registryUrl output, its
environment's writer role (\`pulumi stack output --show-secrets\`); --environment needs
DATABASE_URL. PGSSLROOTCERT (the registry's CA, default the
stack's registry.sslrootcert), ROUTER_URL, ROUTER_METRICS_URL (the router's metrics port, e.g.
http://127.0.0.1:9090; checked when set), ROUTER_API_KEY (when the router authenticates). With \`pulumi\` on PATH the stack's config and outputs come from
\`pulumi config --json\` / \`pulumi stack output --json\`; otherwise from Pulumi.<stack>.yaml.

It fails (exit 4) when a check fails and also when there is nothing to verify: no enabled model
of the stack (or, with --environment, no row) has a ready registry row, or the router says it
serves another environment.`,
  })
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
    .addOption(formatOption(["table", "json"]))
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
    );
  return runScript<VerifyOptions>(io, program, args, async (o) => {
    if (!o.stack && !o.environment)
      throw new ScriptError(
        "pass --stack <name>, or --environment <env> with --router-url",
        EXIT.usage,
      );

    let results: CheckResult[];
    let subject: string;
    if (o.stack) {
      const view = await requireStackView(o.stack, io);
      subject = `stack ${o.stack} (${view.spec.environment}, config from ${view.source === "pulumi" ? "pulumi" : `Pulumi.${o.stack}.yaml`})`;
      const flag = o.routerUrl || !io.env.ROUTER_URL ? "--router-url" : "ROUTER_URL";
      results = await verifyStack(view, io, o.routerUrl ?? io.env.ROUTER_URL, o.timeoutMs, flag);
    } else {
      const environment = o.environment!;
      const routerUrl = o.routerUrl ?? io.env.ROUTER_URL;
      if (!routerUrl)
        throw new ScriptError(
          "--router-url (or ROUTER_URL) is required without --stack",
          EXIT.usage,
        );
      subject = `environment ${environment}`;
      results = await verifyPlatform({
        environment,
        routerUrl: routerBaseUrl(routerUrl, o.routerUrl ? "--router-url" : "ROUTER_URL"),
        metricsUrl: metricsBaseUrl(io.env),
        databaseUrl: requireDatabaseUrl(io.env),
        registryCa: registryCa(io.env),
        apiKey: io.env.ROUTER_API_KEY,
        completionTimeoutMs: o.timeoutMs,
      });
    }
    const ok = passed(results);
    printResult(io, o.format, {
      json: { subject, ok, results },
      text: () => `Verifying ${subject}\n\n${formatResults(results)}`,
    });
    return ok ? EXIT.ok : EXIT.unverified;
  });
}

if (require.main === module) main(run);
