// npm run promote -- --from staging --to production: check that the source stack runs what its
// config says (registry rows ready at each release's revision, router image pinned by digest),
// verify it, copy ONLY the release keys and the router image into the target's stack file,
// preview with the policy pack, and commit the stack file on a new branch (optionally a pull
// request): merging deploys it. `--apply` also runs `pulumi up` now (break-glass).
import * as path from "node:path";
import { PROJECT, StackConfigError } from "../components/spec";
import { releaseRevision } from "../components/manifests";
import {
  withRegistryClient,
  listEntries,
  printable,
  type RegistryEntry,
} from "@vllm-fleet/registry";
import { EXIT, main, runScript, scriptCommand, ScriptError, ScriptIo } from "./lib/cli";
import { ConfigJson, stackShortName } from "./lib/pulumi";
import {
  applyChange,
  changeBranch,
  nextGate,
  prepareChange,
  previewChange,
  pulumiFor,
  recordChange,
  formatReleaseChanges,
  RELEASE_KEY,
} from "./lib/rollout";
import {
  loadStackView,
  registryCa,
  stackRegistryUrl,
  StackView,
  unreadableStack,
} from "./lib/stack";
import { formatResults, passed, verifyStack } from "./lib/verification";

/** Exit codes: the table every script shares (printed by --help). */
export { EXIT };

/** Config path of the router image promotion copies (`pulumi config set --path`). */
const ROUTER_IMAGE_PATH = "router.image";
const ROUTER_KEY = `${PROJECT}:router`;

/**
 * An image reference pinned by a sha256 digest: `@sha256:` and 64 lowercase hex characters
 * (opencontainers/image-spec descriptor.md, "Digests": the sha256 encoded part matches
 * /[a-f0-9]{64}/).
 */
const PINNED = /@sha256:[a-f0-9]{64}$/;

interface PromoteOptions {
  from: string;
  to: string;
  apply?: boolean;
  yes?: boolean;
  pullRequest?: boolean;
  branch?: string;
  cwd?: string;
  fromRouterUrl?: string;
  toRouterUrl?: string;
}

/**
 * Why the source stack does not verifiably run its releases: per release, its registry row must
 * be `ready` and record the release's revision (image and model revision, as the program writes it).
 */
export function releaseProblems(view: StackView, rows: RegistryEntry[]): string[] {
  return view.spec.models.flatMap((m) => {
    const row = rows.find((r) => r.modelName === m.name);
    const env = view.spec.environment;
    if (!row)
      return [
        `${m.name}: no registry row in ${env}; ${view.name} never ran this release (pulumi up registers a model once its pods are ready)`,
      ];
    if (row.status !== "ready")
      return [
        `${m.name}: the ${env} registry row is ${row.status}${row.disabledReason ? ` (${printable(row.disabledReason)})` : ""}; only releases ${view.name} serves can be promoted`,
      ];
    const expected = releaseRevision(m);
    if (row.revision !== expected)
      return [
        `${m.name}: ${view.name} runs '${printable(row.revision ?? "(no revision)")}' but Pulumi.${stackShortName(view.name)}.yaml says '${expected}'; run pulumi up on ${view.name} and verify it before promoting`,
      ];
    return [];
  });
}

/** The digest-pinned router image the source stack exports as `routerImage`, or why not. */
export function routerImageOf(view: StackView): { image?: string; problem?: string } {
  const image = view.outputs.routerImage;
  if (typeof image !== "string" || !image)
    return {
      problem: `${view.name} exports no routerImage output; run pulumi up on ${view.name} with the current program first`,
    };
  if (!PINNED.test(image))
    return {
      problem: `router image '${image}' of ${view.name} is not pinned by digest ('<image>@sha256:<64 hex>'); production runs only digest-pinned images`,
    };
  return { image };
}

function routerImageIn(config: ConfigJson): string | undefined {
  const router = config[ROUTER_KEY]?.objectValue as { image?: unknown } | undefined;
  return typeof router?.image === "string" ? router.image : undefined;
}

export async function run(args: string[], io: ScriptIo): Promise<number> {
  const program = scriptCommand(io, {
    name: "npm run promote --",
    description:
      "Promote what the source stack verifiably runs to another stack: its releases (images, revisions, vLLM args) and its router image. By default the change is a commit of the target's stack file on a new branch, deployed by merging it; --apply also deploys it now.",
    help: `Gates: the source's registry rows are ready at each release's revision and its routerImage
output is pinned by digest; the source passes verification; \`pulumi config cp --path
releases\` and \`pulumi config set --path router.image\` edit Pulumi.<to>.yaml; the new config is
validated and previewed with the policy pack (policies/config/<to>.json); the stack file is
committed on its own on a new branch. Merging that branch deploys it (the deploy workflow runs
pulumi up from the repository's stack file); a change applied with --apply but never merged is
undone by the next deploy. Refuses to run when Pulumi.<to>.yaml has uncommitted changes; when a
gate before the commit fails, the file is restored from git.

Registry: the source's rows are read with the source stack's registryUrl output and the
target is verified with the target's (\`pulumi stack output --show-secrets\`; each its
environment's writer role); DATABASE_URL, when set, overrides both (e.g. a superuser).

Environment: DATABASE_URL (optional override), ROUTER_API_KEY (when the routers
authenticate); \`pulumi\` on PATH, logged in to the stacks' backend; \`git\`; \`gh\` (logged
in) for --pull-request.`,
  })
    .requiredOption("--from <stack>", "stack whose verified releases are promoted (e.g. staging)")
    .requiredOption("--to <stack>", "stack receiving them (e.g. production)")
    .option(
      "--pull-request",
      "push the branch to origin and open a pull request into the current branch with gh",
    )
    .option(
      "--branch <name>",
      "branch the change is committed on (default: promote/<from>-to-<to>-<UTC time>)",
    )
    .option(
      "--apply",
      "break-glass: also run pulumi up on the target now (asks first unless --yes)",
    )
    .option("--yes", "with --apply: apply without asking (CI)")
    .option(
      "-C, --cwd <dir>",
      "the Pulumi project, a git work tree (default: the current directory)",
    )
    .option("--from-router-url <url>", "router of the source stack (default: its routerUrl output)")
    .option(
      "--to-router-url <url>",
      "with --apply: router of the target stack (default: its routerUrl output)",
    );
  return runScript<PromoteOptions>(io, program, args, async (o) => {
    if (o.from === o.to)
      throw new ScriptError("--from and --to must be different stacks", EXIT.usage);
    if (o.yes && !o.apply)
      throw new ScriptError(
        "--yes only confirms --apply: without --apply nothing is deployed, so there is nothing to confirm",
        EXIT.usage,
      );
    const cwd = path.resolve(o.cwd ?? process.cwd());
    const pulumi = pulumiFor(io, cwd);
    const total = 5 + (o.pullRequest ? 1 : 0) + (o.apply ? 2 : 0);
    const c = await prepareChange(
      { io, cwd, stack: o.to, pulumi, gates: { next: 1, total } },
      !!o.pullRequest,
    );

    let done = nextGate(c, `check that ${o.from} runs its config`);
    let source: StackView;
    let rows: RegistryEntry[];
    try {
      source = await loadStackView(o.from, pulumi);
    } catch (e) {
      if (e instanceof StackConfigError)
        throw new ScriptError(
          `the config of ${o.from} is invalid; nothing was changed:\n${e.message}`,
          EXIT.sourceUnverified,
        );
      throw unreadableStack(o.from, e);
    }
    // The source's rows through the source's connection (its writer, under row-level security);
    // the target is verified through its own after --apply.
    const databaseUrl = await stackRegistryUrl(o.from, io.env, pulumi);
    try {
      rows = await withRegistryClient(
        databaseUrl,
        (db) => listEntries(db, { environment: source.spec.environment }),
        { ca: registryCa(io.env, source.spec) },
      );
    } catch (e) {
      throw new ScriptError(
        `cannot read the registry rows of ${o.from}; nothing was changed: ${(e as Error).message}`,
        EXIT.unavailable,
      );
    }
    const router = routerImageOf(source);
    const problems = [
      ...releaseProblems(source, rows),
      ...(router.problem ? [router.problem] : []),
    ];
    if (problems.length)
      throw new ScriptError(
        `${o.from} does not verifiably run what would be promoted; nothing was changed:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
        EXIT.sourceUnverified,
      );
    const image = router.image!;
    done(`${source.spec.models.length} releases ready at their revisions, router ${image}`);

    done = nextGate(c, `verify ${o.from}`);
    const results = await verifyStack(source, io, o.fromRouterUrl, undefined, "--from-router-url");
    io.out(formatResults(results));
    if (!passed(results))
      throw new ScriptError(
        `stack ${o.from} failed verification; nothing was promoted. Fix ${o.from} first (see the failing checks above).`,
        EXIT.sourceUnverified,
      );
    done("all checks passed");

    done = nextGate(c, `copy ${RELEASE_KEY} and ${ROUTER_IMAGE_PATH} from ${o.from} to ${o.to}`);
    let before: ConfigJson;
    let after: ConfigJson;
    try {
      before = await pulumi.config(o.to);
      await pulumi.configCopy(o.from, o.to, "releases");
      await pulumi.configSetPath(o.to, ROUTER_IMAGE_PATH, image);
      after = await pulumi.config(o.to);
    } catch (e) {
      await c.git.restore(c.stackFile).catch(() => undefined);
      throw new ScriptError(
        `stopped at the config change: ${(e as Error).message}\nNothing was deployed; ${c.stackFile} was restored from git.`,
        EXIT.configFailed,
      );
    }
    const previousImage = routerImageIn(before);
    const changes = `${formatReleaseChanges(before[RELEASE_KEY], after[RELEASE_KEY])}\n  ${
      previousImage === image
        ? `= router: ${image}`
        : `~ router: ${previousImage ?? "(built by the program)"} -> ${image}`
    }`;
    io.out(changes);
    done();

    await previewChange(c);

    const branch =
      o.branch ?? changeBranch("promote", `${stackShortName(o.from)}-to-${stackShortName(o.to)}`);
    await recordChange(c, {
      branch,
      title: `Promote ${o.from} to ${o.to}`,
      body: `${changes}\n\n${o.from} runs each release (registry row ready at its revision) and passed verification.`,
      pullRequest: !!o.pullRequest,
    });
    if (!o.apply) {
      io.out(
        `Committed ${c.stackFile} on branch ${branch}. Merge it to deploy: the deploy workflow runs pulumi up on ${o.to} (after its reviewers approve).${o.pullRequest ? "" : ` Push it and open a pull request (or re-run with --pull-request).`}`,
      );
      return EXIT.ok;
    }
    return applyChange(c, {
      yes: !!o.yes,
      routerUrl: o.toRouterUrl,
      routerFlag: "--to-router-url",
      message: `promote releases from ${o.from}`,
      branch,
    });
  });
}

if (require.main === module) main(run);
