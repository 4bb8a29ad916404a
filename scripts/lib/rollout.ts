// The gates promote and rollback share once a stack's release config has changed: validate,
// preview, confirm, up, verify. Each gate stops the run with its own exit code and a message
// saying what state the stack is in; before `up` the config change is reverted.
import { PROJECT, StackConfigError } from "../../components/config";
import { ScriptError, ScriptIo, USAGE_EXIT } from "./cli";
import { ConfigValueJson, PulumiCli, PulumiCommandError, configText, onPath } from "./pulumi";
import { loadStack, StackView } from "./stack";
import { formatResults, passed, verifyStack } from "./verification";

/** The config key promotion copies and rollback restores: everything else is per environment. */
export const RELEASE_KEY = `${PROJECT}:releases`;

/** Exit codes of promote and rollback: one per gate, so CI can tell where a run stopped. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: USAGE_EXIT,
  sourceUnverified: 3,
  configFailed: 4,
  previewFailed: 5,
  notConfirmed: 6,
  upFailed: 7,
  targetUnverified: 8,
} as const;

export const EXIT_HELP = `Exit codes: 0 applied and verified, 1 unexpected error, 2 invalid usage, 3 source stack
failed verification, 4 release config could not be changed (or is invalid), 5 preview failed,
6 not confirmed, 7 pulumi up failed, 8 the stack failed verification after the update.`;

/** A PulumiCli whose streamed output (preview, up) goes to the script's stdout. */
export function pulumiFor(io: ScriptIo): PulumiCli {
  if (!onPath("pulumi", io.env))
    throw new ScriptError(
      "the pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/install/) and `pulumi login` to the stacks' backend",
      EXIT.usage,
    );
  return new PulumiCli({ env: io.env, onOutput: (line) => io.out(`  │ ${line}`) });
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

export interface ApplyOptions {
  io: ScriptIo;
  pulumi: PulumiCli;
  stack: string;
  /** Apply without asking. */
  yes: boolean;
  /** Router URL for the final verification (else the stack's routerUrl output). */
  routerUrl?: string;
  routerFlag: string;
  /** `--message` of the update. */
  message: string;
  /** The release config before the change: restored when a gate before `up` fails. */
  previous: ConfigValueJson | undefined;
  /** Number of the first gate below (validation + preview) and the total. */
  first: number;
  total: number;
}

async function revert(o: ApplyOptions): Promise<string> {
  if (!o.previous) return `revert ${RELEASE_KEY} of ${o.stack} by hand (it had no previous value)`;
  try {
    await o.pulumi.configSetAll(o.stack, { [RELEASE_KEY]: o.previous });
    return `the release config of ${o.stack} was restored; nothing was deployed`;
  } catch (e) {
    return `restoring the release config failed too (${(e as Error).message}); restore ${RELEASE_KEY} of ${o.stack} by hand`;
  }
}

/** After the release config of `stack` changed: validate, preview, confirm, up, verify. */
export async function applyReleaseChange(o: ApplyOptions): Promise<number> {
  const { io, pulumi, stack } = o;
  let n = o.first;
  let done = gate(io, n++, o.total, `preview ${stack}`);
  try {
    await loadStack(stack, pulumi);
  } catch (e) {
    const why = e instanceof StackConfigError ? e.message : (e as Error).message;
    throw new ScriptError(
      `the new config of ${stack} is invalid, so it was not previewed:\n${why}\n${await revert(o)}`,
      EXIT.configFailed,
    );
  }
  try {
    await pulumi.preview(stack);
  } catch (e) {
    throw new ScriptError(
      `stopped at preview: ${(e as Error).message}\n${await revert(o)}`,
      EXIT.previewFailed,
    );
  }
  done();

  const confirmed =
    o.yes || (io.confirm ? await io.confirm(`Apply this update to stack ${stack}?`) : false);
  if (!confirmed) {
    const why = io.confirm
      ? "not confirmed"
      : "no terminal to confirm on; pass --yes to apply without a prompt";
    throw new ScriptError(
      `stopped before pulumi up (${why})\n${await revert(o)}`,
      EXIT.notConfirmed,
    );
  }

  done = gate(io, n++, o.total, `pulumi up ${stack}`);
  try {
    await pulumi.up(stack, o.message);
  } catch (e) {
    const err = e as PulumiCommandError;
    throw new ScriptError(
      `stopped at pulumi up: ${err.message}\nThe update may be partly applied: check \`npm run status -- --stack ${stack}\`, fix and re-run, or \`npm run rollback -- --stack ${stack}\`.`,
      EXIT.upFailed,
    );
  }
  done();

  done = gate(io, n++, o.total, `verify ${stack}`);
  const view: StackView = await loadStack(stack, pulumi);
  const results = await verifyStack(view, io, o.routerUrl, undefined, o.routerFlag);
  io.out(formatResults(results));
  if (!passed(results))
    throw new ScriptError(
      `stack ${stack} failed verification after the update: roll back with \`npm run rollback -- --stack ${stack}\``,
      EXIT.targetUnverified,
    );
  done("all checks passed");
  return EXIT.ok;
}
