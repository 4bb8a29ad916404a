// The GitHub workflows, parsed: what they promise (checks before previews, policy-checked
// previews commented on PRs, ordered deploys, gated production, no credentials in the repo).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

const ROOT = path.resolve(__dirname, "..");
const GITHUB = path.join(ROOT, ".github");

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Job {
  uses?: string;
  needs?: string | string[];
  environment?: string | { name: string };
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
  strategy?: { matrix: { include?: Record<string, string>[] } };
  steps?: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
  jobs: Record<string, Job>;
}

function load<T>(file: string): T {
  return parse(fs.readFileSync(path.join(GITHUB, file), "utf8")) as T;
}

const preview = load<Workflow>("workflows/preview.yml");
const deploy = load<Workflow>("workflows/deploy.yml");
const checks = load<Workflow>("workflows/checks.yml");
const stackAction = load<{ inputs: Record<string, unknown>; runs: { steps: Step[] } }>(
  "actions/pulumi-stack/action.yml",
);

/** Stacks of this project: one Pulumi.<stack>.yaml each. */
const STACKS = fs
  .readdirSync(ROOT)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => Boolean(s))
  .sort();
/** Stacks of long-lived clusters; `ci` runs on a throwaway kind cluster (e2e.yml). */
const CLUSTER_STACKS = STACKS.filter((s) => s !== "ci");

const needsOf = (job: Job) => [job.needs ?? []].flat();
const stackStep = (job: Job) => {
  const step = job.steps?.find((s) => s.uses === "./.github/actions/pulumi-stack");
  assert.ok(step, "job runs the pulumi-stack action");
  return step;
};

describe("GitHub workflows", () => {
  it("checks run type check, lint and the tests on Node 20", () => {
    assert.ok("workflow_call" in checks.on);
    const steps = checks.jobs.checks.steps ?? [];
    const runs = steps.map((s) => s.run ?? "");
    for (const cmd of ["npm ci", "npm run typecheck", "npm run lint", "npm test"]) {
      assert.ok(
        runs.some((r) => r.includes(cmd)),
        `checks run '${cmd}'`,
      );
    }
    const node = steps.find((s) => s.uses?.startsWith("actions/setup-node@"));
    assert.equal(node?.with?.["node-version"], 20);
  });

  it("preview runs on pull requests, after the checks, for every stack", () => {
    assert.ok("pull_request" in preview.on);
    assert.equal(preview.jobs.checks.uses, "./.github/workflows/checks.yml");
    const job = preview.jobs.preview;
    assert.deepEqual(needsOf(job), ["checks"]);
    const stacks = (job.strategy?.matrix.include ?? []).map((m) => m.stack).sort();
    assert.deepEqual(stacks, CLUSTER_STACKS);
    const step = stackStep(job);
    assert.equal(step.with?.command, "preview");
    assert.equal(step.with?.stack, "${{ matrix.stack }}");
    assert.equal(step.with?.["comment-on-pr"], "true");
    assert.equal(preview.permissions?.["pull-requests"], "write", "may comment on the PR");
  });

  it("the stack action previews with --diff, the policy pack and the stack's pack config", () => {
    const pulumi = stackAction.runs.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
    assert.ok(pulumi, "uses pulumi/actions");
    assert.equal(pulumi.with?.command, "${{ inputs.command }}");
    assert.equal(pulumi.with?.["stack-name"], "${{ inputs.stack }}");
    assert.equal(pulumi.with?.diff, true);
    assert.equal(pulumi.with?.["comment-on-pr"], "${{ inputs.comment-on-pr }}");
    assert.equal(pulumi.with?.policyPacks, "policies");
    assert.equal(pulumi.with?.policyPackConfigs, "policies/config/${{ inputs.stack }}.json");
    assert.ok(fs.existsSync(path.join(ROOT, "policies", "PulumiPolicy.yaml")));
    for (const stack of STACKS) {
      assert.ok(
        fs.existsSync(path.join(ROOT, "policies", "config", `${stack}.json`)),
        `policy pack config for ${stack}`,
      );
    }
    assert.ok(
      stackAction.runs.steps.some((s) => s.run?.includes("npm ci")),
      "installs dependencies before pulumi runs the program",
    );
  });

  it("deploy runs on merge to main: development, then staging, then production", () => {
    assert.deepEqual((deploy.on.push as { branches: string[] }).branches, ["main"]);
    assert.deepEqual(needsOf(deploy.jobs.development), ["checks"]);
    assert.deepEqual(needsOf(deploy.jobs.staging), ["development"]);
    assert.deepEqual(needsOf(deploy.jobs.production), ["staging"]);
    for (const stack of ["development", "staging", "production"]) {
      const step = stackStep(deploy.jobs[stack]);
      assert.equal(step.with?.command, "up", stack);
      assert.equal(step.with?.stack, stack);
    }
  });

  it("production waits for approval in its environment and runs one at a time", () => {
    const prod = deploy.jobs.production;
    assert.equal(prod.environment, "production");
    assert.ok(prod.concurrency?.group, "production has a concurrency group");
    assert.equal(prod.concurrency?.["cancel-in-progress"], false, "never cancel a running up");
    assert.equal(deploy.concurrency?.["cancel-in-progress"], false);
  });

  it("takes credentials and the backend from secrets or OIDC, never from the repository", () => {
    const files = [
      "workflows/preview.yml",
      "workflows/deploy.yml",
      "actions/pulumi-stack/action.yml",
    ];
    const sensitive = /TOKEN|PASSWORD|PASSPHRASE|KUBECONFIG|BACKEND|SECRET|KEY/i;
    const fromSecretOrInput = /^\$\{\{ *(secrets\.|secrets\[|inputs\.|env\.)/;
    // Values handed to steps (`with:` and `env:`) under sensitive names must be expressions.
    const walk = (node: unknown, at: string) => {
      if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${at}[${i}]`));
      else if (node && typeof node === "object") {
        for (const [k, v] of Object.entries(node)) {
          if ((k === "with" || k === "env") && v && typeof v === "object") {
            for (const [name, value] of Object.entries(v)) {
              if (sensitive.test(name) && name !== "requested-token-type") {
                assert.match(String(value), fromSecretOrInput, `${at}.${k}.${name}`);
              }
            }
          }
          walk(v, `${at}.${k}`);
        }
      }
    };
    for (const file of files) {
      const text = fs.readFileSync(path.join(GITHUB, file), "utf8");
      assert.doesNotMatch(text, /pul-[0-9a-f]{40}/, `${file} holds a Pulumi token`);
      assert.doesNotMatch(text, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, `${file} holds a key`);
      walk(parse(text), file);
    }
    const oidc = stackAction.runs.steps.find((s) => s.uses?.startsWith("pulumi/auth-actions@"));
    assert.equal(oidc?.if, "inputs.pulumi-org != ''", "OIDC login when an organization is set");
    assert.equal(preview.permissions?.["id-token"], "write");
    assert.equal(deploy.permissions?.["id-token"], "write");
  });

  it("pins every action to a version", () => {
    const all = [preview, deploy, checks].flatMap((w) =>
      Object.values(w.jobs).flatMap((j) => j.steps ?? []),
    );
    for (const s of [...all, ...stackAction.runs.steps]) {
      if (!s.uses || s.uses.startsWith("./")) continue;
      assert.match(s.uses, /@v\d+|@[0-9a-f]{40}$/, `${s.uses} is pinned`);
    }
  });
});
