// The gates promote and rollback share once a stack's release config has changed: validate,
// preview with the policy pack, commit the stack file on a branch (and open a pull request),
// and for break-glass confirm, up, verify. Each gate stops the run with its own exit code and
// a message saying what state the stack is in; before the commit the stack file is restored.
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT, StackConfigError } from "../../components/spec";
import { EXIT, ScriptError, ScriptIo } from "./cli";
import { createPullRequest, Git } from "./git";
import {
  ConfigValueJson,
  configText,
  mandatoryViolations,
  onPath,
  policyPackConfigPath,
  PulumiCli,
  PulumiCommandError,
  stackFileName,
} from "./pulumi";
import { loadStackView, StackView } from "./stack";
import { formatResults, passed, verifyStack } from "./verification";

/** The config key promotion copies and rollback restores: everything else is per environment. */
export const RELEASE_KEY = `${PROJECT}:releases`;

/** A PulumiCli in the project `cwd` whose streamed output (preview, up) goes to stdout. */
export function pulumiFor(io: ScriptIo, cwd: string): PulumiCli {
  if (!onPath("pulumi", io.env))
    throw new ScriptError(
      "the pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/install/) and `pulumi login` to the stacks' backend",
      EXIT.unavailable,
    );
  return new PulumiCli({ env: io.env, cwd, onOutput: (line) => io.out(`  │ ${line}`) });
}

/** A numbered gate: prints its start and returns a function reporting its success. */
export function gate(io: ScriptIo, n: number, total: number, label: string): (d?: string) => void {
  io.err(`\n[${n}/${total}] ${label}`);
  return (detail) => io.err(`✓ ${label}${detail ? `: ${detail}` : ""}`);
}

interface ReleaseSummary {
  name: string;
  image?: string;
  revision?: string;
}

function releasesOf(v: ConfigValueJson | undefined): ReleaseSummary[] {
  const text = v && configText(v);
  if (!text) return [];
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) ? (parsed as ReleaseSummary[]) : [];
  } catch {
    return [];
  }
}

/** `tag@digest rev commit` of one release, short enough for a table cell. */
function describeRelease(r: ReleaseSummary): string {
  const digest = r.image?.match(/@sha256:([0-9a-f]{8})/)?.[1];
  const tag = r.image?.split("@")[0].split(":").slice(1).join(":") || "latest";
  return `${tag}${digest ? `@${digest}` : ""}${r.revision ? ` rev ${r.revision.slice(0, 8)}` : ""}`;
}

/** Every model of a release config as `name tag@digest rev commit`. */
export function describeReleases(v: ConfigValueJson | undefined): string {
  return (
    releasesOf(v)
      .map((r) => `${r.name} ${describeRelease(r)}`)
      .join(", ") || "(none)"
  );
}

/** Whether two release configs are the same (compared as parsed JSON). */
export function sameReleases(
  a: ConfigValueJson | undefined,
  b: ConfigValueJson | undefined,
): boolean {
  return JSON.stringify(releasesOf(a)) === JSON.stringify(releasesOf(b));
}

/** What changes per model between two release configs, one line each. */
export function releaseChanges(
  before: ConfigValueJson | undefined,
  after: ConfigValueJson | undefined,
): string[] {
  const b = new Map(releasesOf(before).map((r) => [r.name, r]));
  const a = new Map(releasesOf(after).map((r) => [r.name, r]));
  const lines: string[] = [];
  for (const [name, r] of a) {
    const old = b.get(name);
    if (!old) lines.push(`+ ${name}: ${describeRelease(r)}`);
    else if (JSON.stringify(old) !== JSON.stringify(r))
      lines.push(`~ ${name}: ${describeRelease(old)} -> ${describeRelease(r)}`);
  }
  for (const name of b.keys()) if (!a.has(name)) lines.push(`- ${name}: removed`);
  return lines.length ? lines : ["(no release changes)"];
}

/** `releaseChanges` as indented lines, for printing under a gate. */
export function formatReleaseChanges(
  before: ConfigValueJson | undefined,
  after: ConfigValueJson | undefined,
): string {
  return releaseChanges(before, after)
    .map((l) => `  ${l}`)
    .join("\n");
}

/** The remote promote and rollback push their branch to. */
export const REMOTE = "origin";

/** Where a release change happens: the Pulumi project, a git work tree. */
export interface ChangeContext {
  io: ScriptIo;
  pulumi: PulumiCli;
  git: Git;
  /** The Pulumi project directory. */
  cwd: string;
  stack: string;
  /** The stack's config file, relative to cwd. */
  stackFile: string;
  /** Branch the change is based on (the pull request's base). */
  base?: string;
  /** Numbered gates: the next number and the total. */
  gates: { next: number; total: number };
}

/** Starts the next numbered gate of a change. */
export function nextGate(c: ChangeContext, label: string): (d?: string) => void {
  return gate(c.io, c.gates.next++, c.gates.total, label);
}

/**
 * Checks before anything changes: the stack's policy pack config exists, the project is a git
 * work tree and the stack file has no uncommitted edits (the change is committed on its own,
 * and restored from HEAD when a gate fails); for a pull request, `gh` and a base branch.
 */
export async function prepareChange(
  c: Pick<ChangeContext, "io" | "cwd" | "stack" | "pulumi" | "gates">,
  pullRequest: boolean,
): Promise<ChangeContext> {
  const { io, cwd, stack } = c;
  const policyConfig = policyPackConfigPath(stack);
  if (!fs.existsSync(path.join(cwd, policyConfig)))
    throw new ScriptError(
      `${path.join(cwd, policyConfig)} does not exist: every preview and up of ${stack} runs the policy pack with its config; add it (copy policies/config/staging.json) or run from the project directory (--cwd)`,
      EXIT.usage,
    );
  const git = new Git(cwd, io.env);
  const stackFile = stackFileName(stack);
  let dirty: boolean;
  let base: string | undefined;
  try {
    dirty = await git.dirty(stackFile);
    base = await git.currentBranch();
  } catch (e) {
    throw new ScriptError(
      `${cwd} must be a git work tree of the project: ${(e as Error).message}`,
      EXIT.usage,
    );
  }
  if (dirty)
    throw new ScriptError(
      `${stackFile} has uncommitted changes; commit or stash them first (\`git stash push -- ${stackFile}\`): the change is committed on its own and restored from HEAD when a gate fails`,
      EXIT.usage,
    );
  if (pullRequest && !onPath("gh", io.env))
    throw new ScriptError(
      "--pull-request needs the GitHub CLI: install gh (https://cli.github.com) and `gh auth login`, or drop --pull-request and push the branch yourself",
      EXIT.usage,
    );
  if (pullRequest && !base)
    throw new ScriptError(
      "--pull-request needs a checked-out branch as the pull request's base (HEAD is detached): `git switch main` first",
      EXIT.usage,
    );
  return { ...c, git, stackFile, base };
}

async function restore(c: ChangeContext): Promise<string> {
  try {
    await c.git.restore(c.stackFile);
    return `${c.stackFile} was restored from git; nothing was deployed`;
  } catch (e) {
    return `restoring ${c.stackFile} failed too (${(e as Error).message}); run \`git restore -- ${c.stackFile}\``;
  }
}

/** After the stack file changed: validate the new config, then preview with the policy pack. */
export async function previewChange(c: ChangeContext): Promise<void> {
  const { pulumi, stack } = c;
  const done = nextGate(c, `preview ${stack} with the policy pack`);
  try {
    await loadStackView(stack, pulumi);
  } catch (e) {
    const why = e instanceof StackConfigError ? e.message : (e as Error).message;
    throw new ScriptError(
      `the new config of ${stack} is invalid, so it was not previewed:\n${why}\n${await restore(c)}`,
      EXIT.configFailed,
    );
  }
  try {
    await pulumi.preview(stack);
  } catch (e) {
    const violations = e instanceof PulumiCommandError ? mandatoryViolations(e.result) : [];
    if (violations.length)
      throw new ScriptError(
        `the change violates mandatory policies of ${stack} (${policyPackConfigPath(stack)}):\n${violations.map((v) => `  - ${v}`).join("\n")}\n${await restore(c)}`,
        EXIT.policyViolation,
      );
    throw new ScriptError(
      `stopped at preview: ${(e as Error).message}\n${await restore(c)}`,
      EXIT.previewFailed,
    );
  }
  done();
}

export interface RecordOptions {
  branch: string;
  /** First line of the commit and title of the pull request. */
  title: string;
  /** The change (body of the commit and the pull request). */
  body: string;
  /** Push the branch and open a pull request with `gh`. */
  pullRequest: boolean;
}

/** Commits the stack file on a new branch and, when asked, pushes it and opens a pull request. */
export async function recordChange(c: ChangeContext, o: RecordOptions): Promise<void> {
  const { io, git, stackFile } = c;
  let done = nextGate(c, `commit ${stackFile} on branch ${o.branch}`);
  const { body } = o;
  try {
    const commit = await git.commitOnNewBranch(o.branch, stackFile, `${o.title}\n\n${body}\n`);
    done(commit.slice(0, 12));
  } catch (e) {
    throw new ScriptError(
      `stopped at the commit: ${(e as Error).message}\nNothing was deployed; ${stackFile} keeps the change in the working tree (\`git status\`).`,
      EXIT.commitFailed,
    );
  }
  if (!o.pullRequest) return;
  done = nextGate(c, `open a pull request into ${c.base}`);
  try {
    await git.push(REMOTE, o.branch);
    const url = await createPullRequest(c.cwd, io.env, {
      base: c.base!,
      head: o.branch,
      title: o.title,
      body: `${body}\n\nMerging deploys it: the deploy workflow runs \`pulumi up\` from ${stackFile}.`,
    });
    io.out(`pull request: ${url}`);
    done(url);
  } catch (e) {
    throw new ScriptError(
      `stopped at the pull request: ${(e as Error).message}\nThe change is committed on branch ${o.branch}; push it and open the pull request by hand.`,
      EXIT.commitFailed,
    );
  }
}

export interface ApplyOptions {
  /** Apply without asking. */
  yes: boolean;
  /** Router URL for the final verification (else the stack's routerUrl output). */
  routerUrl?: string;
  routerFlag: string;
  /** `--message` of the update. */
  message: string;
  /** The branch holding the change, which must still be merged. */
  branch: string;
}

/** Break-glass: confirm, `pulumi up` with the policy pack, verify. */
export async function applyChange(c: ChangeContext, o: ApplyOptions): Promise<number> {
  const { io, pulumi, stack } = c;
  const merge = `merge branch ${o.branch} so the next deploy keeps this config`;
  const confirmed =
    o.yes || (io.confirm ? await io.confirm(`Apply this update to stack ${stack}?`) : false);
  if (!confirmed) {
    const why = io.confirm
      ? "not confirmed"
      : "no terminal to confirm on; pass --yes to apply without a prompt";
    throw new ScriptError(
      `stopped before pulumi up (${why}); nothing was deployed. The change is committed on branch ${o.branch}: merge it to deploy through the deploy workflow, or delete the branch.`,
      EXIT.notConfirmed,
    );
  }

  let done = nextGate(c, `pulumi up ${stack} with the policy pack`);
  try {
    await pulumi.up(stack, o.message);
  } catch (e) {
    const violations = e instanceof PulumiCommandError ? mandatoryViolations(e.result) : [];
    throw new ScriptError(
      `stopped at pulumi up: ${(e as Error).message}${violations.length ? `\nmandatory policy violations:\n${violations.map((v) => `  - ${v}`).join("\n")}` : ""}\nThe update may be partly applied: check \`npm run status -- --stack ${stack}\`, fix and re-run, or \`npm run rollback -- --stack ${stack}\`.`,
      EXIT.upFailed,
    );
  }
  done();

  done = nextGate(c, `verify ${stack}`);
  const view: StackView = await loadStackView(stack, pulumi);
  const results = await verifyStack(view, io, o.routerUrl, undefined, o.routerFlag);
  io.out(formatResults(results));
  if (!passed(results))
    throw new ScriptError(
      `stack ${stack} failed verification after the update: roll back with \`npm run rollback -- --stack ${stack}\`; then ${merge}`,
      EXIT.targetUnverified,
    );
  done("all checks passed");
  io.out(`Applied. Now ${merge}.`);
  return EXIT.ok;
}

/**
 * `<prefix>/<what>-<UTC timestamp>`: a branch name that sorts by time. Milliseconds included:
 * two changes within one second (a retry after a declined --apply) must not collide.
 */
export function changeBranch(prefix: string, what: string, at = new Date()): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.(\d+)Z$/, "$1Z")
    .replace("T", "-");
  return `${prefix}/${what}-${stamp}`;
}
