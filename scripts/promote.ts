// npm run promote -- --from staging --to production: gate on the source stack's verification,
// copy ONLY the release keys with `pulumi config cp`, preview the target, confirm, up, verify.
// Stops at the first failed gate with its own exit code (see --help).
import { Command } from "commander";
import { commanderOutput, main, runScript, ScriptError, ScriptIo } from "./lib/cli";
import {
  applyReleaseChange,
  EXIT,
  EXIT_HELP,
  gate,
  pulumiFor,
  RELEASE_KEY,
  formatReleaseChanges,
} from "./lib/rollout";
import { loadStack } from "./lib/stack";
import { formatResults, passed, verifyStack } from "./lib/verification";

export { EXIT } from "./lib/rollout";

const TOTAL_GATES = 5;

interface PromoteOptions {
  from: string;
  to: string;
  yes?: boolean;
  fromRouterUrl?: string;
  toRouterUrl?: string;
}

export async function run(args: string[], io: ScriptIo): Promise<number> {
  return runScript(io, EXIT.usage, async () => {
    const program = new Command("npm run promote --")
      .description(
        "Promote the release config (releases: images, revisions, vLLM args) of one stack to another: verify the source, `pulumi config cp` the release keys only, preview, confirm, up, verify the target.",
      )
      .requiredOption("--from <stack>", "stack whose verified releases are promoted (e.g. staging)")
      .requiredOption("--to <stack>", "stack receiving them (e.g. production)")
      .option("--yes", "apply without asking (CI)")
      .option(
        "--from-router-url <url>",
        "router of the source stack (default: its routerUrl output)",
      )
      .option("--to-router-url <url>", "router of the target stack (default: its routerUrl output)")
      .addHelpText(
        "after",
        `
Environment: DATABASE_URL (the registry both stacks write to), ROUTER_API_KEY (when the
routers authenticate); \`pulumi\` on PATH, logged in to the stacks' backend.

${EXIT_HELP}`,
      )
      .exitOverride()
      .configureOutput(commanderOutput(io));
    program.parse(args, { from: "user" });
    const o = program.opts<PromoteOptions>();
    if (o.from === o.to)
      throw new ScriptError("--from and --to must be different stacks", EXIT.usage);
    const pulumi = pulumiFor(io);

    let done = gate(io, 1, TOTAL_GATES, `verify ${o.from}`);
    let source;
    try {
      source = await loadStack(o.from, pulumi);
    } catch (e) {
      throw new ScriptError(
        `cannot read stack ${o.from}: ${(e as Error).message}`,
        EXIT.sourceUnverified,
      );
    }
    const results = await verifyStack(source, io, o.fromRouterUrl, undefined, "--from-router-url");
    io.out(formatResults(results));
    if (!passed(results))
      throw new ScriptError(
        `stack ${o.from} failed verification; nothing was promoted. Fix ${o.from} first (see the failing checks above).`,
        EXIT.sourceUnverified,
      );
    done("all checks passed");

    done = gate(io, 2, TOTAL_GATES, `copy ${RELEASE_KEY} from ${o.from} to ${o.to}`);
    let before;
    let after;
    try {
      before = (await pulumi.config(o.to))[RELEASE_KEY];
      await pulumi.configCopy(o.from, o.to, "releases");
      after = (await pulumi.config(o.to))[RELEASE_KEY];
    } catch (e) {
      throw new ScriptError(
        `stopped at config cp: ${(e as Error).message}\nNothing was deployed; check \`pulumi config --stack ${o.to}\`.`,
        EXIT.configFailed,
      );
    }
    io.out(formatReleaseChanges(before, after));
    done();

    return applyReleaseChange({
      io,
      pulumi,
      stack: o.to,
      yes: !!o.yes,
      routerUrl: o.toRouterUrl,
      routerFlag: "--to-router-url",
      message: `promote releases from ${o.from}`,
      previous: before,
      first: 3,
      total: TOTAL_GATES,
    });
  });
}

if (require.main === module) main(run);
