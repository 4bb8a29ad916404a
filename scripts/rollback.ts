// npm run rollback -- --stack production [--to <update>]: list the stack's recent releases
// from `pulumi stack history`, restore the release config of the chosen update (default: the
// newest earlier release that differs from the current one) in the stack file, preview with the
// policy pack, commit the stack file on a new branch (so the next deploy keeps the rollback),
// then confirm, up and verify (`--no-apply` stops after the commit).
import * as path from "node:path";
import { InvalidArgumentError } from "commander";
import { EXIT, main, runScript, scriptCommand, ScriptError, ScriptIo } from "./lib/cli";
import { formatTable, minuteCell } from "./lib/format";
import { stackShortName, UpdateInfo } from "./lib/pulumi";
import { unreadableStack } from "./lib/stack";
import {
  applyChange,
  changeBranch,
  ChangeContext,
  describeReleases,
  gate,
  nextGate,
  prepareChange,
  previewChange,
  pulumiFor,
  recordChange,
  RELEASE_KEY,
  formatReleaseChanges,
  sameReleases,
} from "./lib/rollout";

/** Exit codes: the table every script shares (printed by --help). */
export { EXIT };

const HISTORY_PAGE = 20;

interface RollbackOptions {
  stack: string;
  to?: number;
  apply?: boolean;
  yes?: boolean;
  list?: boolean;
  pullRequest?: boolean;
  branch?: string;
  cwd?: string;
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
      minuteCell(h.endTime ?? h.startTime),
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
  const program = scriptCommand(io, {
    name: "npm run rollback --",
    description:
      "Roll a stack's release config back to an earlier successful update from `pulumi stack history`, then preview, confirm, up and verify.",
    help: `Only the release config (${RELEASE_KEY}) is restored; capacity stays as it is now. The
restored config is written to Pulumi.<stack>.yaml, validated, previewed with the policy pack
(policies/config/<stack>.json) and committed on its own on a new branch. A rollback is an
emergency, so by default it is then applied at once (pulumi up after confirmation, or --yes,
then verification) instead of waiting for the deploy workflow; merge the branch afterwards, or
the next deploy from the repository's stack file undoes the rollback. --no-apply only commits
(merging deploys it). Refuses to run when Pulumi.<stack>.yaml has uncommitted changes.

Environment: DATABASE_URL (registry; default: the stack's registryUrl output), ROUTER_API_KEY; \`pulumi\` on PATH; \`git\`; \`gh\`
(logged in) for --pull-request.`,
  })
    .requiredOption("--stack <name>", "stack to roll back (e.g. production)")
    .option(
      "--to <update>",
      "update number to restore (default: the previous release)",
      parseUpdate,
    )
    .option("--list", "only show the recent releases")
    .option("--apply", "run pulumi up now, after the commit (the default)")
    .option("--no-apply", "only commit the rollback; merging the branch deploys it")
    .option("--yes", "apply without asking (CI)")
    .option(
      "--pull-request",
      "push the branch to origin and open a pull request into the current branch with gh",
    )
    .option(
      "--branch <name>",
      "branch the change is committed on (default: rollback/<stack>-to-update-<n>-<UTC time>)",
    )
    .option(
      "-C, --cwd <dir>",
      "the Pulumi project, a git work tree (default: the current directory)",
    )
    .option("--router-url <url>", "router of the stack (default: its routerUrl output)");
  return runScript<RollbackOptions>(io, program, args, async (o) => {
    const apply = o.apply ?? true;
    const cwd = path.resolve(o.cwd ?? process.cwd());
    const pulumi = pulumiFor(io, cwd);
    const total = 4 + (o.pullRequest ? 1 : 0) + (apply ? 2 : 0);
    // --list only reads; anything else edits the stack file, so check it can be committed first.
    const c: ChangeContext | undefined = o.list
      ? undefined
      : await prepareChange(
          { io, cwd, stack: o.stack, pulumi, gates: { next: 2, total } },
          !!o.pullRequest,
        );

    let done = gate(io, 1, o.list ? 1 : total, `read the release history of ${o.stack}`);
    let releases: UpdateInfo[];
    let current: UpdateInfo["config"];
    try {
      [releases, current] = await Promise.all([
        pulumi.history(o.stack, HISTORY_PAGE).then(releaseHistory),
        pulumi.config(o.stack),
      ]);
    } catch (e) {
      // Reading is a precondition, for --list and a rollback alike: nothing was changed.
      throw unreadableStack(o.stack, e);
    }
    const none = `stack ${o.stack} has no successful update with a release config in its last ${HISTORY_PAGE} updates`;
    if (!c) {
      io.out(releases.length ? historyTable(releases, current) : `${none}.`);
      return EXIT.ok;
    }
    if (!releases.length)
      throw new ScriptError(`${none}; nothing to roll back to`, EXIT.configFailed);
    io.out(historyTable(releases, current));

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

    done = nextGate(c, `restore the release config of update ${target.version}`);
    const restored = target.config![RELEASE_KEY];
    try {
      await pulumi.configSetAll(o.stack, { [RELEASE_KEY]: restored });
    } catch (e) {
      await c.git.restore(c.stackFile).catch(() => undefined);
      throw new ScriptError(
        `stopped at config set-all: ${(e as Error).message}\nNothing was deployed; ${c.stackFile} was restored from git.`,
        EXIT.configFailed,
      );
    }
    const changes = formatReleaseChanges(current[RELEASE_KEY], restored);
    io.out(changes);
    done();

    await previewChange(c);

    const branch =
      o.branch ??
      changeBranch("rollback", `${stackShortName(o.stack)}-to-update-${target.version}`);
    await recordChange(c, {
      branch,
      title: `Roll ${o.stack} back to the releases of update ${target.version}`,
      body: changes,
      pullRequest: !!o.pullRequest,
    });
    if (!apply) {
      io.out(
        `Committed ${c.stackFile} on branch ${branch}; nothing was deployed (--no-apply). Merge it to deploy: the deploy workflow runs pulumi up on ${o.stack}.`,
      );
      return EXIT.ok;
    }
    return applyChange(c, {
      yes: !!o.yes,
      routerUrl: o.routerUrl,
      routerFlag: "--router-url",
      message: `rollback to the releases of update ${target.version}`,
      branch,
    });
  });
}

if (require.main === module) main(run);
