// The GitHub workflows, parsed: what they promise (checks before previews, policy-checked
// previews commented on PRs from preview environments, the router image built once and its
// digest deployed, ordered deploys with per-stack concurrency, gated production, no credentials
// in the repo, only real action inputs).
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { loadStackSpec } from "../components/spec";

const ROOT = path.resolve(__dirname, "..");
const GITHUB = path.join(ROOT, ".github");

interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Concurrency {
  group: string;
  "cancel-in-progress"?: boolean;
}
interface Job {
  uses?: string;
  needs?: string | string[];
  if?: string;
  "runs-on"?: string | string[];
  permissions?: Record<string, string>;
  environment?: string | { name: string };
  concurrency?: Concurrency;
  outputs?: Record<string, string>;
  strategy?: { matrix: { include?: Record<string, string>[] } };
  steps?: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  concurrency?: Concurrency;
  jobs: Record<string, Job>;
}
interface Action {
  inputs: Record<string, { required?: boolean; default?: string }>;
  runs: { steps: Step[] };
}

function load<T>(file: string): T {
  return parse(fs.readFileSync(path.join(GITHUB, file), "utf8")) as T;
}

const preview = load<Workflow>("workflows/preview.yml");
const deploy = load<Workflow>("workflows/deploy.yml");
const checks = load<Workflow>("workflows/checks.yml");
/** Every workflow of the repository, so the rules below hold for ones added later too. */
const workflows: Record<string, Workflow> = Object.fromEntries(
  fs
    .readdirSync(path.join(GITHUB, "workflows"))
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => [f, load<Workflow>(`workflows/${f}`)]),
);
const stackAction = load<Action>("actions/pulumi-stack/action.yml");
const SET_RUN_CONFIG = path.join(GITHUB, "actions/pulumi-stack/set-run-config.sh");

/** Stacks of this project: one Pulumi.<stack>.yaml each. */
const STACKS = fs
  .readdirSync(ROOT)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => Boolean(s))
  .sort();
/** Stacks of long-lived clusters; `ci` runs on a throwaway kind cluster (e2e.yml). */
const CLUSTER_STACKS = STACKS.filter((s) => s !== "ci");

/**
 * Inputs and outputs of every action the workflows use, read from its action.yml at the newest
 * tag of the pinned major (fetched from GitHub): a `with:` key missing here is silently ignored
 * by GitHub, so a typo would pass review and change nothing.
 */
const ACTIONS: Record<string, { source: string; inputs: string[]; outputs: string[] }> = {
  "actions/checkout@v4": {
    source: "github.com/actions/checkout/blob/v4.4.0/action.yml",
    inputs: [
      "allow-unsafe-pr-checkout",
      "clean",
      "fetch-depth",
      "fetch-tags",
      "filter",
      "github-server-url",
      "lfs",
      "path",
      "persist-credentials",
      "ref",
      "repository",
      "set-safe-directory",
      "show-progress",
      "sparse-checkout",
      "sparse-checkout-cone-mode",
      "ssh-key",
      "ssh-known-hosts",
      "ssh-strict",
      "ssh-user",
      "submodules",
      "token",
    ],
    outputs: ["commit", "ref"],
  },
  "actions/setup-node@v4": {
    source: "github.com/actions/setup-node/blob/v4.4.0/action.yml",
    inputs: [
      "always-auth",
      "architecture",
      "cache",
      "cache-dependency-path",
      "check-latest",
      "mirror",
      "mirror-token",
      "node-version",
      "node-version-file",
      "registry-url",
      "scope",
      "token",
    ],
    outputs: ["cache-hit", "node-version"],
  },
  "docker/setup-buildx-action@v3": {
    source: "github.com/docker/setup-buildx-action/blob/v3.12.0/action.yml",
    inputs: [
      "append",
      "buildkitd-config",
      "buildkitd-config-inline",
      "buildkitd-flags",
      "cache-binary",
      "cleanup",
      "config",
      "config-inline",
      "driver",
      "driver-opts",
      "endpoint",
      "install",
      "keep-state",
      "name",
      "platforms",
      "use",
      "version",
    ],
    outputs: ["driver", "endpoint", "flags", "name", "nodes", "platforms", "status"],
  },
  "docker/login-action@v3": {
    source: "github.com/docker/login-action/blob/v3.7.0/action.yml",
    inputs: ["ecr", "logout", "password", "registry", "registry-auth", "scope", "username"],
    outputs: [],
  },
  "docker/build-push-action@v6": {
    source: "github.com/docker/build-push-action/blob/v6.19.2/action.yml",
    inputs: [
      "add-hosts",
      "allow",
      "annotations",
      "attests",
      "build-args",
      "build-contexts",
      "builder",
      "cache-from",
      "cache-to",
      "call",
      "cgroup-parent",
      "context",
      "file",
      "github-token",
      "labels",
      "load",
      "network",
      "no-cache",
      "no-cache-filters",
      "outputs",
      "platforms",
      "provenance",
      "pull",
      "push",
      "sbom",
      "secret-envs",
      "secret-files",
      "secrets",
      "shm-size",
      "ssh",
      "tags",
      "target",
      "ulimit",
    ],
    outputs: ["digest", "imageid", "metadata"],
  },
  "helm/kind-action@v1.14.0": {
    source: "github.com/helm/kind-action/blob/v1.14.0/action.yml",
    inputs: [
      "cloud_provider",
      "cluster_name",
      "config",
      "ignore_failed_clean",
      "install_only",
      "kubeconfig",
      "kubectl_version",
      "node_image",
      "registry",
      "registry_enable_delete",
      "registry_image",
      "registry_name",
      "registry_port",
      "verbosity",
      "version",
      "wait",
    ],
    outputs: [],
  },
  "pulumi/auth-actions@v1": {
    source: "github.com/pulumi/auth-actions/blob/v1.0.1/action.yml",
    inputs: [
      "cloud-url",
      "export-environment-variables",
      "organization",
      "requested-token-type",
      "scope",
      "token-expiration",
    ],
    outputs: ["pulumi-access-token"],
  },
  "pulumi/actions@v6": {
    source: "github.com/pulumi/actions/blob/v6.6.1/action.yml",
    inputs: [
      "always-include-summary",
      "cloud-url",
      "color",
      "command",
      "comment-on-pr",
      "comment-on-pr-number",
      "comment-on-summary",
      "config-map",
      "continue-on-error",
      "debug",
      "diff",
      "edit-pr-comment",
      "exclude",
      "exclude-dependents",
      "exclude-protected",
      "expect-no-changes",
      "github-token",
      "log-flow",
      "log-verbosity",
      "message",
      "parallel",
      "plan",
      "policyPackConfigs",
      "policyPacks",
      "pulumi-version",
      "pulumi-version-file",
      "refresh",
      "remove",
      "replace",
      "secrets-provider",
      "stack-name",
      "suppress-outputs",
      "suppress-progress",
      "target",
      "target-dependents",
      "upsert",
      "work-dir",
    ],
    outputs: ["output"],
  },
};

/** The runner expression of jobs that reach the registry and the clusters: self-hosted labels. */
const DEPLOY_RUNNER = `\${{ fromJSON(vars.DEPLOY_RUNNER_LABELS || '["self-hosted"]') }}`;
const DEPLOY_STACKS = ["development", "staging", "production"];

const needsOf = (job: Job) => [job.needs ?? []].flat();
const stackStep = (job: Job) => {
  const step = job.steps?.find((s) => s.uses === "./.github/actions/pulumi-stack");
  assert.ok(step, "job runs the pulumi-stack action");
  return step;
};
const allJobs = (): [string, Job][] =>
  Object.entries(workflows).flatMap(([w, wf]) =>
    Object.entries(wf.jobs).map(([name, job]): [string, Job] => [`${w}.${name}`, job]),
  );
const allSteps = (): Step[] => [
  ...allJobs().flatMap(([, j]) => j.steps ?? []),
  ...stackAction.runs.steps,
];
const indexOf = (steps: Step[], uses: string) => steps.findIndex((s) => s.uses?.startsWith(uses));

describe("GitHub workflows", () => {
  it("checks run type check, lint and the tests on Node 20, on a GitHub-hosted runner", () => {
    assert.ok("workflow_call" in checks.on);
    assert.equal(checks.jobs.checks["runs-on"], "ubuntu-latest");
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

  // GitHub gives workflows triggered from forks no secrets (docs.github.com, "Using secrets in
  // GitHub Actions"), so a fork's preview could only fail: skip it, keep the checks.
  it("previews run in preview environments, never the deploy ones, and skip pull requests from forks", () => {
    const job = preview.jobs.preview;
    assert.equal(job.environment, "preview-${{ matrix.stack }}");
    for (const m of job.strategy?.matrix.include ?? []) {
      assert.ok(
        !DEPLOY_STACKS.includes(`${job.environment}`.replace("${{ matrix.stack }}", m.stack)),
      );
    }
    assert.equal(job.if, "github.event.pull_request.head.repo.full_name == github.repository");
    assert.equal(preview.jobs.checks.if, undefined, "forks still get the checks");
  });

  it("previews development and staging with the router image they run, production with its pinned one", () => {
    const byStack = Object.fromEntries(
      (preview.jobs.preview.strategy?.matrix.include ?? []).map((m) => [m.stack, m]),
    );
    assert.equal(byStack.development["router-image"], "deployed");
    assert.equal(byStack.staging["router-image"], "deployed");
    assert.equal(byStack.production["router-image"], "");
    assert.equal(
      stackStep(preview.jobs.preview).with?.["router-image"],
      "${{ matrix.router-image }}",
    );
  });

  it("the stack action previews with --diff, the policy pack and the stack's pack config", () => {
    const pulumi = stackAction.runs.steps.find(
      (s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command,
    );
    assert.ok(pulumi, "uses pulumi/actions");
    assert.equal(pulumi.with?.command, "${{ inputs.command }}");
    assert.equal(pulumi.with?.["stack-name"], "${{ inputs.stack }}");
    assert.equal(pulumi.with?.diff, true);
    assert.equal(pulumi.with?.["comment-on-pr"], "${{ inputs.comment-on-pr }}");
    // The fleet (the default project) runs with the pack and the stack's config; the registry
    // project, which has no Kubernetes objects, with neither: an empty input passes no
    // --policy-pack (pulumi/actions src/config.ts, parseSemicolorToArray of an empty list).
    assert.equal(stackAction.inputs.project.default, "fleet");
    assert.equal(pulumi.with?.policyPacks, "${{ inputs.project == 'fleet' && 'policies' || '' }}");
    assert.equal(
      pulumi.with?.policyPackConfigs,
      "${{ inputs.project == 'fleet' && format('policies/config/{0}.json', inputs.stack) || '' }}",
    );
    assert.equal(
      pulumi.with?.["work-dir"],
      "${{ inputs.project == 'registry' && 'registry-stack' || '.' }}",
    );
    assert.ok(fs.existsSync(path.join(ROOT, "registry-stack", "Pulumi.yaml")));
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

  // pulumi/actions v6 src/main.ts: without `command` it only installs the CLI; its config-map
  // goes through setAllConfig without --path, so the run's config is set by our own step between.
  it("the stack action installs the CLI, sets the run's config, then runs the operation", () => {
    const steps = stackAction.runs.steps;
    const install = steps.findIndex((s) => s.uses === "pulumi/actions@v6" && !s.with?.command);
    const setConfig = steps.findIndex((s) => s.run?.includes("set-run-config.sh"));
    const operation = steps.findIndex((s) => s.uses === "pulumi/actions@v6" && s.with?.command);
    assert.ok(install >= 0 && install < setConfig && setConfig < operation, "install, config, run");
    const env = steps[setConfig].env ?? {};
    assert.equal(env.REGISTRY_ADMIN_PASSWORD, "${{ inputs.registry-admin-password }}");
    assert.equal(env.HUGGING_FACE_TOKEN, "${{ inputs.hugging-face-token }}");
    assert.equal(env.ROUTER_IMAGE, "${{ inputs.router-image }}");
    assert.equal(env.STACK, "${{ inputs.stack }}");
    assert.equal(env.BACKEND_URL, "${{ inputs.backend-url }}");
    assert.equal(env.PULUMI_ACCESS_TOKEN, steps[operation].env?.PULUMI_ACCESS_TOKEN);
    assert.equal(env.PULUMI_CONFIG_PASSPHRASE, steps[operation].env?.PULUMI_CONFIG_PASSPHRASE);
    assert.ok(!steps.some((s) => s.with && "config-map" in s.with));
    assert.equal(stackAction.inputs["registry-admin-password"].required, true);
  });

  it("deploy runs on merge to main: router image and registry, development, staging, then production", () => {
    assert.deepEqual((deploy.on.push as { branches: string[] }).branches, ["main"]);
    assert.deepEqual(needsOf(deploy.jobs["router-image"]), ["checks"]);
    assert.deepEqual(needsOf(deploy.jobs.registry), ["checks"]);
    assert.deepEqual(needsOf(deploy.jobs.development).sort(), ["registry", "router-image"]);
    assert.deepEqual(needsOf(deploy.jobs.staging).sort(), ["development", "router-image"]);
    assert.deepEqual(needsOf(deploy.jobs.production), ["staging"]);
    for (const stack of DEPLOY_STACKS) {
      const step = stackStep(deploy.jobs[stack]);
      assert.equal(step.with?.command, "up", stack);
      assert.equal(step.with?.stack, stack);
      assert.equal(deploy.jobs[stack].environment, stack);
    }
  });

  // Environment stacks read the registry stack's outputs (schema version, group roles) through a
  // StackReference, so it is brought up first, in an environment of its own.
  it("brings the shared registry stack up before any environment, without a cluster", () => {
    const job = deploy.jobs.registry;
    assert.equal(job.environment, "registry");
    assert.equal(job.concurrency?.group, "pulumi-registry");
    const step = stackStep(job);
    assert.equal(step.with?.command, "up");
    assert.equal(step.with?.project, "registry");
    assert.equal(step.with?.stack, "${{ vars.REGISTRY_STACK || 'shared' }}");
    assert.ok(
      fs.existsSync(path.join(ROOT, "registry-stack", "Pulumi.shared.yaml")),
      "the default registry stack exists",
    );
    assert.equal(step.with?.kubeconfig, undefined, "the registry stack has no cluster");
    assert.equal(step.with?.["router-image"], undefined);
    const previewStep = stackStep(preview.jobs["registry-preview"]);
    assert.equal(preview.jobs["registry-preview"].environment, "preview-registry");
    assert.equal(previewStep.with?.command, "preview");
    assert.equal(previewStep.with?.project, "registry");
    assert.equal(preview.jobs["registry-preview"].if, preview.jobs.preview.if, "forks skipped");
  });

  it("builds and pushes the router image once, with packages: write and a registry login first", () => {
    const job = deploy.jobs["router-image"];
    assert.equal(job["runs-on"], "ubuntu-latest", "a GitHub-hosted runner has Docker and buildx");
    assert.deepEqual(job.permissions, { contents: "read", packages: "write" });
    const steps = job.steps ?? [];
    const buildx = indexOf(steps, "docker/setup-buildx-action@");
    const login = indexOf(steps, "docker/login-action@");
    const build = indexOf(steps, "docker/build-push-action@");
    assert.ok(buildx >= 0 && login > buildx && build > login, "buildx, login, then build and push");
    assert.deepEqual(steps[login].with, {
      registry: "ghcr.io",
      username: "${{ github.actor }}",
      password: "${{ secrets.GITHUB_TOKEN }}",
    });
    const b = steps[build];
    assert.equal(b.with?.push, true);
    assert.equal(b.with?.context, ".", "the repository root: router/ is an npm workspace");
    assert.equal(b.with?.file, "router/Dockerfile");
    assert.ok(fs.existsSync(path.join(ROOT, "router/Dockerfile")));
    const repository = "${{ steps.ref.outputs.repository }}";
    assert.equal(b.with?.tags, `${repository}:\${{ github.sha }}`);
    assert.equal(job.outputs?.image, `${repository}@\${{ steps.${b.id}.outputs.digest }}`);
    const ref = steps.find((s) => s.id === "ref");
    assert.match(ref?.run ?? "", /ghcr\.io\/\$\{GITHUB_REPOSITORY,,\}\/vllm-router/, "lower case");
  });

  it("gives packages: write to the image job only", () => {
    for (const [file, wf] of Object.entries(workflows))
      assert.equal(wf.permissions?.packages, undefined, `${file}: not workflow-wide`);
    for (const [name, job] of allJobs()) {
      if (name === "deploy.yml.router-image") continue;
      assert.equal(job.permissions?.packages, undefined, name);
      assert.ok(
        !(job.steps ?? []).some((s) => /^docker\/(login|build-push)-action@/.test(s.uses ?? "")),
        `${name} pushes no image`,
      );
    }
  });

  it("deploys the built digest to development and staging, and production only its pinned image", () => {
    for (const stack of ["development", "staging"]) {
      assert.ok(
        needsOf(deploy.jobs[stack]).includes("router-image"),
        `${stack} can read the output`,
      );
      assert.equal(
        stackStep(deploy.jobs[stack]).with?.["router-image"],
        "${{ needs.router-image.outputs.image }}",
      );
    }
    const prod = stackStep(deploy.jobs.production);
    assert.equal(prod.with?.["router-image"], undefined, "production gets no image from CI");
    // ... and its stack file pins one by digest, which the program requires of production.
    const spec = loadStackSpec("production");
    assert.match(spec.router.image ?? "", /@sha256:[0-9a-f]{64}$/);
  });

  it("runs jobs that reach the registry and clusters on self-hosted runners from a variable", () => {
    assert.equal(preview.jobs.preview["runs-on"], DEPLOY_RUNNER);
    for (const stack of DEPLOY_STACKS) assert.equal(deploy.jobs[stack]["runs-on"], DEPLOY_RUNNER);
  });

  // docs.github.com/actions/using-jobs/using-concurrency: at most one running and one pending job
  // per group, and a newly queued one cancels the pending one. One workflow-level group would
  // make a run waiting for production approval hold back every later merge's development deploy.
  it("gives each stack its own concurrency group and never cancels a running up", () => {
    assert.equal(deploy.concurrency, undefined, "no workflow-level group shared by all stacks");
    const groups = DEPLOY_STACKS.map((stack) => {
      const c = deploy.jobs[stack].concurrency;
      assert.ok(c && c.group.includes(stack), `${stack} has a group of its own`);
      assert.equal(c["cancel-in-progress"], false, `${stack}: never cancel a running up`);
      return c.group.toLowerCase(); // group names are case insensitive
    });
    assert.equal(new Set(groups).size, groups.length);
    assert.match(preview.concurrency?.group ?? "", /github\.event\.pull_request\.number/);
  });

  it("production waits for approval in its environment", () => {
    assert.equal(deploy.jobs.production.environment, "production");
  });

  it("takes secrets only in jobs with a GitHub environment (GITHUB_TOKEN aside)", () => {
    for (const [name, job] of allJobs()) {
      const text = JSON.stringify(job).replace(/secrets\.GITHUB_TOKEN/g, "");
      if (/secrets[.[]/.test(text)) assert.ok(job.environment, `${name} reads secrets`);
    }
    assert.doesNotMatch(
      fs.readFileSync(path.join(GITHUB, "actions/pulumi-stack/action.yml"), "utf8"),
      /secrets[.[]/,
      "the action takes credentials as inputs only",
    );
    for (const job of [preview.jobs.preview, ...DEPLOY_STACKS.map((s) => deploy.jobs[s])]) {
      const step = stackStep(job);
      assert.equal(
        step.with?.["registry-admin-password"],
        "${{ secrets.REGISTRY_ADMIN_PASSWORD }}",
      );
      assert.equal(step.with?.kubeconfig, "${{ secrets.KUBECONFIG }}");
      assert.equal(step.with?.["hugging-face-token"], "${{ secrets.HUGGING_FACE_TOKEN }}");
    }
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
    for (const s of allSteps()) {
      if (!s.uses || s.uses.startsWith("./")) continue;
      assert.match(s.uses, /@v\d+|@[0-9a-f]{40}$/, `${s.uses} is pinned`);
    }
  });

  it("passes every action only inputs its action.yml declares, and reads only outputs it sets", () => {
    const local = (uses: string) =>
      parse(fs.readFileSync(path.join(ROOT, uses, "action.yml"), "utf8")) as Action;
    for (const s of allSteps()) {
      if (!s.uses) continue;
      const declared = s.uses.startsWith("./")
        ? Object.keys(local(s.uses).inputs)
        : ACTIONS[s.uses]?.inputs;
      assert.ok(declared, `${s.uses}: add its action.yml inputs to ACTIONS`);
      for (const input of Object.keys(s.with ?? {}))
        assert.ok(declared.includes(input), `${s.uses} has no input '${input}'`);
      if (s.uses.startsWith("./")) {
        for (const [input, decl] of Object.entries(local(s.uses).inputs))
          if (decl.required) assert.ok(input in (s.with ?? {}), `${s.uses} needs '${input}'`);
      }
    }
    for (const [name, job] of allJobs()) {
      const steps = job.steps ?? [];
      for (const [, id, output] of JSON.stringify(job).matchAll(
        /steps\.([\w-]+)\.outputs\.([\w-]+)/g,
      )) {
        const step = steps.find((s) => s.id === id);
        assert.ok(step, `${name}: no step '${id}'`);
        if (step.uses)
          assert.ok(
            ACTIONS[step.uses].outputs.includes(output),
            `${step.uses} sets no '${output}'`,
          );
        else assert.match(step.run ?? "", new RegExp(`${output}=.*>> "\\$GITHUB_OUTPUT"`));
      }
    }
  });
});

describe("README: What a repository needs", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("### What a repository needs");
  const section = readme.slice(start, readme.indexOf("\n## ", start));
  const names = (re: RegExp) =>
    new Set(allJobs().flatMap(([, job]) => [...JSON.stringify(job).matchAll(re)].map((m) => m[1])));

  it("lists exactly the secrets and variables the workflows read", () => {
    assert.ok(start > 0, "the section exists");
    const secrets = names(/secrets\.([A-Z_]+)/g);
    secrets.delete("GITHUB_TOKEN"); // provided by GitHub
    const documented = new Set([...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]));
    assert.deepEqual([...documented].sort(), [...secrets].sort());
    for (const v of names(/vars\.([A-Z_]+)/g)) assert.ok(section.includes(`\`${v}\``), v);
  });

  // index.ts enables server-side apply, so pulumi-kubernetes previews with `dryRun=All` patches
  // (pulumi/pulumi-kubernetes provider/pkg/await/await.go), and "Authorization for dry-run and
  // non-dry-run requests is identical" (kubernetes.io/docs/reference/using-api/api-concepts,
  // "Dry-run authorization"): preview credentials must be allowed the writes they simulate.
  it("asks for preview kube credentials that may patch, since previews are server-side dry-runs", () => {
    assert.match(
      fs.readFileSync(path.join(ROOT, "index.ts"), "utf8"),
      /enableServerSideApply: true/,
    );
    const row = section.split("\n").find((l) => l.startsWith("| `KUBECONFIG` |")) ?? "";
    const preview = row.split(" | ")[2] ?? "";
    assert.match(preview, /`create`\/`patch`/);
    assert.match(preview, /read-only credentials fail/);
  });

  it("lists every environment a job runs in", () => {
    for (const [name, job] of allJobs()) {
      if (!job.environment) continue;
      const env = String(job.environment);
      const stacks = (job.strategy?.matrix.include ?? [{}]).map((m) => m.stack);
      for (const stack of stacks) {
        const resolved = env.replace("${{ matrix.stack }}", stack ?? "");
        assert.ok(section.includes(`\`${resolved}\``), `${name}: ${resolved}`);
      }
    }
  });
});

describe("the stack action's run config (set-run-config.sh with a stand-in pulumi)", () => {
  let dir: string;
  const PASSWORD = "p@ss: 'w#rd\" $(not run)";
  const IMAGE = `ghcr.io/acme/vllm-fleet/vllm-router@sha256:${"a".repeat(64)}`;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "set-run-config-"));
    // Records argv and stdin per call; `stack output` prints $OUTPUT or fails like the real CLI.
    fs.writeFileSync(
      path.join(dir, "pulumi"),
      `#!/usr/bin/env bash
stdin=""; if [ "$1 $2" = "config set" ]; then stdin=$(cat); fi
STDIN="$stdin" node -e 'require("fs").appendFileSync(process.env.CALLS, JSON.stringify({args: process.argv.slice(1), stdin: process.env.STDIN, cwd: process.cwd()}) + "\\n")' -- "$@"
if [ "$1 $2" = "stack output" ]; then
  if [ -n "$OUTPUT_FAILS" ]; then echo "$OUTPUT_FAILS" >&2; exit 255; fi
  if [ -n "$OUTPUT" ]; then printf '%s\\n' "$OUTPUT"; else echo "error: current stack does not have output property '$3'" >&2; exit 255; fi
fi
`,
      { mode: 0o755 },
    );
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function run(env: Record<string, string>) {
    const r = spawnSync("bash", [SET_RUN_CONFIG], {
      encoding: "utf8",
      env: {
        PATH: `${dir}${path.delimiter}${process.env.PATH}`,
        CALLS: path.join(dir, "calls.jsonl"),
        STACK: "staging",
        ...env,
      },
    });
    const file = path.join(dir, "calls.jsonl");
    const calls = fs.existsSync(file)
      ? fs
          .readFileSync(file, "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { args: string[]; stdin: string; cwd: string })
      : [];
    return {
      ...r,
      calls: calls.map(({ args, stdin }) => ({ args, stdin })),
      cwds: calls.map((c) => c.cwd),
    };
  }

  // pulumi.com/docs/iac/cli/commands/pulumi_config_set: "If a value is not present on the command
  // line, pulumi will prompt for the value"; piped, it is read from standard input.
  it("sets the admin password as a secret from stdin, never in an argument or the log", () => {
    const r = run({ REGISTRY_ADMIN_PASSWORD: PASSWORD, BACKEND_URL: "s3://state" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls[0].args, ["login", "s3://state"]);
    assert.deepEqual(r.calls[1], {
      args: ["config", "set", "--secret", "--stack", "staging", "registryAdminPassword"],
      stdin: PASSWORD,
    });
    assert.equal(r.calls.length, 2, "no huggingFaceToken or router.image when not given");
    for (const c of r.calls) assert.ok(!c.args.join(" ").includes("w#rd"));
    assert.ok(!`${r.stdout}${r.stderr}`.includes("w#rd"));
  });

  it("in the registry project (PROJECT=registry) sets its adminPassword, in registry-stack/", () => {
    const project = fs.mkdtempSync(path.join(os.tmpdir(), "set-run-config-project-"));
    fs.mkdirSync(path.join(project, "registry-stack"));
    const r = spawnSync("bash", [SET_RUN_CONFIG], {
      cwd: project,
      encoding: "utf8",
      env: {
        PATH: `${dir}${path.delimiter}${process.env.PATH}`,
        CALLS: path.join(dir, "calls.jsonl"),
        STACK: "shared",
        PROJECT: "registry",
        REGISTRY_ADMIN_PASSWORD: PASSWORD,
      },
    });
    assert.equal(r.status, 0, r.stderr);
    const calls = fs
      .readFileSync(path.join(dir, "calls.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { args: string[]; stdin: string; cwd: string });
    assert.deepEqual(calls[1].args, [
      "config",
      "set",
      "--secret",
      "--stack",
      "shared",
      "adminPassword",
    ]);
    assert.equal(calls[1].stdin, PASSWORD);
    for (const c of calls)
      assert.equal(c.cwd, fs.realpathSync(path.join(project, "registry-stack")));
    fs.rmSync(project, { recursive: true, force: true });
  });

  it("sets the Hugging Face token as a secret from stdin when the environment has one", () => {
    const r = run({ REGISTRY_ADMIN_PASSWORD: PASSWORD, HUGGING_FACE_TOKEN: "hf_tok3n" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls[2], {
      args: ["config", "set", "--secret", "--stack", "staging", "huggingFaceToken"],
      stdin: "hf_tok3n",
    });
    assert.ok(
      !`${r.stdout}${r.stderr}${JSON.stringify(r.calls.map((c) => c.args))}`.includes("hf_tok3n"),
    );
  });

  it("logs in to Pulumi Cloud when no backend URL is given", () => {
    const r = run({ REGISTRY_ADMIN_PASSWORD: PASSWORD, BACKEND_URL: "" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls[0].args, ["login"]);
  });

  // --path makes `router.image` the `image` key inside the `router` map (pulumi_config_set docs);
  // without it the key would be literally `router.image`, which the program rejects.
  it("sets router.image by path to the image given", () => {
    const r = run({ REGISTRY_ADMIN_PASSWORD: PASSWORD, ROUTER_IMAGE: IMAGE });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls[2].args, [
      "config",
      "set",
      "--path",
      "--stack",
      "staging",
      "--",
      "router.image",
      IMAGE,
    ]);
  });

  it("'deployed' keeps the image the stack runs (its routerImage output)", () => {
    const r = run({ REGISTRY_ADMIN_PASSWORD: PASSWORD, ROUTER_IMAGE: "deployed", OUTPUT: IMAGE });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls[2].args, ["stack", "output", "routerImage", "--stack", "staging"]);
    assert.deepEqual(r.calls[3].args.slice(-2), ["router.image", IMAGE]);
  });

  it("'deployed' on a stack without the output leaves the router config as the file has it", () => {
    const r = run({ REGISTRY_ADMIN_PASSWORD: PASSWORD, ROUTER_IMAGE: "deployed" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.calls.length, 3);
    assert.match(r.stdout, /::notice::staging has no routerImage output yet/);
  });

  it("'deployed' stops when the output cannot be read for another reason (never builds instead)", () => {
    const r = run({
      REGISTRY_ADMIN_PASSWORD: PASSWORD,
      ROUTER_IMAGE: "deployed",
      OUTPUT_FAILS:
        "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions",
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /PULUMI_ACCESS_TOKEN must be set/);
    assert.ok(!r.calls.some((c) => c.args.includes("router.image")), "no router.image set");
    assert.doesNotMatch(r.stdout, /builds the router image/);
  });

  it("fails before any pulumi call when the environment has no REGISTRY_ADMIN_PASSWORD", () => {
    const r = run({ REGISTRY_ADMIN_PASSWORD: "" });
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /REGISTRY_ADMIN_PASSWORD is empty: add it to the secrets of this job's GitHub environment/,
    );
    assert.deepEqual(r.calls, []);
  });
});
