// npm run rollback -- --stack production [--to <update>]: list the stack's recent releases
// from `pulumi stack history`, restore the release config of the chosen update (default: the
// newest earlier release that differs from the current one), preview, confirm, up, verify.
import { Command, InvalidArgumentError } from "commander";
import { commanderOutput, formatTable, main, runScript, ScriptError, ScriptIo } from "./lib/cli";
import { UpdateInfo } from "./lib/pulumi";
import {
  applyReleaseChange,
  describeReleases,
  EXIT,
  EXIT_HELP,
  gate,
  pulumiFor,
  RELEASE_KEY,
  formatReleaseChanges,
  sameReleases,
} from "./lib/rollout";

export { EXIT } from "./lib/rollout";

const TOTAL_GATES = 5;
const HISTORY_PAGE = 20;

interface RollbackOptions {
  stack: string;
  to?: number;
  yes?: boolean;
  list?: boolean;
  routerUrl?: string;
}

/** Successful updates that recorded a release config, newest first. */
export function releaseHistory(history: UpdateInfo[]): UpdateInfo[] {
  return history
    .filter((h) => h.kind === "update" && h.result === "succeeded" && h.config?.[RELEASE_KEY])
    .sort((a, b) => b.version - a.version);
}

function historyTable(releases: UpdateInfo[], current: UpdateInfo["config"]): string {
  return formatTable(
    ["UPDATE", "FINISHED", "MESSAGE", "RELEASES", ""],
    releases.map((h) => [
      String(h.version),
      (h.endTime ?? h.startTime).slice(0, 16).replace("T", " "),
      (h.message ?? "").split("\n")[0].slice(0, 40),
      describeReleases(h.config![RELEASE_KEY]),
      sameReleases(h.config![RELEASE_KEY], current?.[RELEASE_KEY]) ? "(current config)" : "",
    ]),
  );
}

function parseUpdate(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError("--to takes an update number from the history (e.g. 41)");
  return n;
}

export async function run(args: string[], io: ScriptIo): Promise<number> {
  return runScript(io, EXIT.usage, async () => {
    const program = new Command("npm run rollback --")
      .description(
        "Roll a stack's release config back to an earlier successful update from `pulumi stack history`, then preview, confirm, up and verify.",
      )
      .requiredOption("--stack <name>", "stack to roll back (e.g. production)")
      .option(
        "--to <update>",
        "update number to restore (default: the previous release)",
        parseUpdate,
      )
      .option("--list", "only show the recent releases")
      .option("--yes", "apply without asking (CI)")
      .option("--router-url <url>", "router of the stack (default: its routerUrl output)")
      .addHelpText(
        "after",
        `
Only the release config (${RELEASE_KEY}) is restored; capacity stays as it is now.
Environment: DATABASE_URL (registry), ROUTER_API_KEY; \`pulumi\` on PATH.

${EXIT_HELP}`,
      )
      .exitOverride()
      .configureOutput(commanderOutput(io));
    program.parse(args, { from: "user" });
    const o = program.opts<RollbackOptions>();
    const pulumi = pulumiFor(io);

    let done = gate(io, 1, TOTAL_GATES, `read the release history of ${o.stack}`);
    let releases: UpdateInfo[];
    let current: UpdateInfo["config"];
    try {
      [releases, current] = await Promise.all([
        pulumi.history(o.stack, HISTORY_PAGE).then(releaseHistory),
        pulumi.config(o.stack),
      ]);
    } catch (e) {
      throw new ScriptError(
        `cannot read stack ${o.stack}: ${(e as Error).message}`,
        EXIT.configFailed,
      );
    }
    if (!releases.length)
      throw new ScriptError(
        `stack ${o.stack} has no successful update with a release config in its last ${HISTORY_PAGE} updates; nothing to roll back to`,
        EXIT.configFailed,
      );
    io.out(historyTable(releases, current));
    if (o.list) return EXIT.ok;

    const target =
      o.to === undefined
        ? releases.find((h) => !sameReleases(h.config![RELEASE_KEY], current[RELEASE_KEY]))
        : releases.find((h) => h.version === o.to);
    if (!target)
      throw new ScriptError(
        o.to === undefined
          ? `every recent release of ${o.stack} equals its current release config; pick one with --to <update>`
          : `update ${o.to} is not a successful update with a release config of ${o.stack}; pick one of ${releases.map((h) => h.version).join(", ")}`,
        EXIT.usage,
      );
    done(`update ${target.version} (${describeReleases(target.config![RELEASE_KEY])})`);

    done = gate(io, 2, TOTAL_GATES, `restore the release config of update ${target.version}`);
    const before = current[RELEASE_KEY];
    try {
      await pulumi.configSetAll(o.stack, { [RELEASE_KEY]: target.config![RELEASE_KEY] });
    } catch (e) {
      throw new ScriptError(
        `stopped at config set-all: ${(e as Error).message}\nNothing was deployed.`,
        EXIT.configFailed,
      );
    }
    io.out(formatReleaseChanges(before, target.config![RELEASE_KEY]));
    done();

    return applyReleaseChange({
      io,
      pulumi,
      stack: o.stack,
      yes: !!o.yes,
      routerUrl: o.routerUrl,
      routerFlag: "--router-url",
      message: `rollback to the releases of update ${target.version}`,
      previous: before,
      first: 3,
      total: TOTAL_GATES,
    });
  });
}

if (require.main === module) main(run);
