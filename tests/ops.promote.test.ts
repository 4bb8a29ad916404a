// npm run promote with the stand-in pulumi (and gh) on PATH, the stack files in a real git
// repository, and real routers, registry and simulators behind both stacks: the reviewable
// commit (and pull request), break-glass --apply, and a failed gate at every step.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadStackSpec } from "../components/spec";
import { releaseRevision } from "../components/manifests";
import { EXIT, run } from "../scripts/promote";
import { EXIT_HELP } from "../scripts/lib/cli";
import { configText, mandatoryViolations, plainConfig } from "../scripts/lib/pulumi";
import { changeBranch } from "../scripts/lib/rollout";
import { withRegistryClient, setStatus } from "@vllm-fleet/registry";
import { configJson, PulumiStandIn, secretOutput } from "./support/pulumiStandIn";
import { MOCK_GENERATED_PASSWORD } from "./support/program";
import {
  RegistryServer,
  routerRole,
  startRegistryServer,
  writerRole,
} from "./support/registryServer";
import {
  git,
  MODEL,
  PRODUCTION_ROUTER_IMAGE,
  release,
  ReleaseStacks,
  stagingConfig,
  startReleaseStacks,
} from "./support/releaseStacks";
import { seedRegistry } from "./support/router";
import { scriptRunner } from "./support/scriptIo";
import { freePort } from "./support/services";

const CANDIDATE = release("b", "2", { args: { maxModelLen: 16384 } });
const LIVE = release("a", "1");
const ROUTER_IMAGE = `registry.example/platform/vllm-router@sha256:${"c".repeat(64)}`;
const GH = path.resolve(__dirname, "fixtures/github");
const POLICY_FLAGS = "--policy-pack policies --policy-pack-config policies/config/production.json";

/** The revision the program records for a release of staging (its registry row's `revision`). */
function stagingRevision(r: Record<string, unknown>): string {
  const spec = loadStackSpec("staging", { config: plainConfig(configJson(stagingConfig([r]))) });
  return releaseRevision(spec.models[0]);
}

describe("npm run promote", () => {
  let stacks: ReleaseStacks;
  let standIn: PulumiStandIn;
  let project: string;

  /** Staging's registry row as `pulumi up` of staging writes it, with `extra` on top. */
  const stagingRow = (extra: Record<string, unknown> = {}) =>
    seedRegistry(stacks.databaseUrl, [
      {
        modelName: MODEL,
        environment: "staging",
        endpoint: stacks.sims.staging.endpoint,
        namespace: "llm-staging",
        revision: stagingRevision(CANDIDATE),
        ...extra,
      },
    ]);

  before(async () => {
    stacks = await startReleaseStacks();
  });
  after(() => stacks?.close());
  beforeEach(async () => {
    standIn = stacks.standIn([CANDIDATE], [LIVE]);
    project = standIn.projectDir!;
    standIn.setOutputs("staging", {
      routerUrl: stacks.routers.staging.url,
      routerImage: ROUTER_IMAGE,
      models: { [MODEL]: { endpoint: stacks.sims.staging.endpoint } },
    });
    await stagingRow();
  });

  const promote =
    (env: Record<string, string> = {}, answer?: boolean) =>
    (...args: string[]) =>
      scriptRunner(
        run,
        {
          ...standIn.env,
          PATH: `${GH}${path.delimiter}${standIn.env.PATH}`,
          GH_STANDIN_DIR: standIn.dir,
          DATABASE_URL: stacks.databaseUrl,
          ...env,
        },
        answer,
      )(...args, "--cwd", project);
  const releasesOf = (stack: string) =>
    JSON.parse(configText(standIn.config(stack)["vllm-fleet:releases"])!) as unknown[];
  const routerOf = (stack: string) =>
    standIn.config(stack)["vllm-fleet:router"].objectValue as Record<string, unknown>;
  const commands = () =>
    standIn
      .calls()
      .map((c) => c.filter((a) => !a.startsWith("{")).join(" "))
      .filter((c) => !/^(config --json|stack output)/.test(c));
  const ghCalls = () => {
    const f = path.join(standIn.dir, "gh.jsonl");
    return fs.existsSync(f)
      ? fs
          .readFileSync(f, "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as string[])
      : [];
  };
  const branches = () => git(project, "branch", "--format=%(refname:short)").trim().split("\n");
  /** Nothing changed: no commit, the stack file as committed, still on main. */
  const unchanged = () => {
    assert.deepEqual(branches(), ["main"]);
    assert.equal(git(project, "status", "--porcelain"), "");
    assert.deepEqual(releasesOf("production"), [LIVE]);
  };

  it("commits the release and router image change on a new branch, previewed with the policy pack (pulumi/pulumi pkg/cmd/pulumi/operations/preview.go)", async () => {
    const res = await promote()("--from", "staging", "--to", "production");
    assert.equal(res.code, EXIT.ok, `${res.out}\n${res.err}`);
    assert.deepEqual(commands(), [
      "config cp --stack staging --dest production --path releases --non-interactive",
      `config set --stack production --path router.image ${ROUTER_IMAGE} --non-interactive`,
      `preview --stack production --diff ${POLICY_FLAGS} --non-interactive`,
    ]);
    // The stack file holds the promotion, committed alone on the branch the operator is now on.
    assert.deepEqual(releasesOf("production"), [CANDIDATE]);
    assert.equal(routerOf("production").image, ROUTER_IMAGE);
    assert.deepEqual(routerOf("production").replicas, 2, "the rest of router stays");
    assert.equal(
      configText(standIn.config("production")["vllm-fleet:capacity"]),
      JSON.stringify({
        [MODEL]: { replicas: 2, gpu: { count: 1 }, cache: { accessMode: "ReadWriteMany" } },
      }),
      "capacity is not promoted",
    );
    const branch = git(project, "branch", "--show-current").trim();
    assert.match(branch, /^promote\/staging-to-production-\d{8}-\d{9}Z$/);
    assert.equal(git(project, "status", "--porcelain"), "", "nothing left uncommitted");
    assert.equal(git(project, "rev-list", "--count", "main..HEAD").trim(), "1");
    assert.equal(
      git(project, "diff", "--name-only", "main", "HEAD").trim(),
      "Pulumi.production.yaml",
    );
    const message = git(project, "log", "-1", "--format=%B");
    assert.match(message, /^Promote staging to production\n\n/);
    assert.match(
      message,
      /~ chat: v0\.11\.0@aaaaaaaa rev 11111111 -> v0\.11\.0@bbbbbbbb rev 22222222/,
    );
    assert.ok(message.includes(`~ router: ${PRODUCTION_ROUTER_IMAGE} -> ${ROUTER_IMAGE}`), message);
    assert.match(
      res.out,
      /Committed Pulumi\.production\.yaml on branch promote\/.*Merge it to deploy/,
    );
    for (const g of [
      "[1/5] check that staging runs its config",
      "[2/5] verify staging",
      "[3/5] copy vllm-fleet:releases and router.image from staging to production",
      "[4/5] preview production with the policy pack",
      "[5/5] commit Pulumi.production.yaml on branch promote/",
    ])
      assert.ok(res.err.includes(g), `gate ${g} shown:\n${res.err}`);
    assert.deepEqual(ghCalls(), []);
  });

  it("--pull-request pushes the branch and opens a pull request into the current branch (cli/cli pkg/cmd/pr/create/create.go)", async () => {
    const res = await promote()(
      "--from",
      "staging",
      "--to",
      "production",
      "--pull-request",
      "--branch",
      "promote/chat-rev-2",
    );
    assert.equal(res.code, EXIT.ok, `${res.out}\n${res.err}`);
    assert.equal(
      git(project, "ls-remote", "origin", "refs/heads/promote/chat-rev-2").split("\t")[0],
      git(project, "rev-parse", "HEAD").trim(),
      "the branch is on origin",
    );
    const [call] = ghCalls();
    const flag = (name: string) => call[call.indexOf(name) + 1];
    assert.deepEqual(call.slice(0, 2), ["pr", "create"]);
    assert.equal(flag("--base"), "main");
    assert.equal(flag("--head"), "promote/chat-rev-2");
    assert.equal(flag("--title"), "Promote staging to production");
    assert.match(flag("--body"), /~ chat: v0\.11\.0@aaaaaaaa .* -> v0\.11\.0@bbbbbbbb/);
    assert.match(res.out, /pull request: https:\/\/github\.com\/acme\/vllm-fleet\/pull\/1/);
    assert.ok(res.err.includes("[6/6] open a pull request into main"));
  });

  it("--apply --yes also runs pulumi up with the policy pack and verifies production (pulumi/pulumi pkg/cmd/pulumi/operations/up.go)", async () => {
    const res = await promote()("--from", "staging", "--to", "production", "--apply", "--yes");
    assert.equal(res.code, EXIT.ok, `${res.out}\n${res.err}`);
    assert.deepEqual(commands().slice(2), [
      `preview --stack production --diff ${POLICY_FLAGS} --non-interactive`,
      `up --stack production --yes --message promote releases from staging ${POLICY_FLAGS} --non-interactive`,
    ]);
    assert.equal(standIn.history("production")[0].message, "promote releases from staging");
    assert.deepEqual(
      JSON.parse(configText(standIn.history("production")[0].config!["vllm-fleet:releases"])!),
      [CANDIDATE],
      "up deployed the committed stack file",
    );
    assert.equal((res.out.match(/✓ all 6 checks passed/g) ?? []).length, 2, "both stacks verified");
    assert.ok(res.err.includes("[7/7] verify production"));
    assert.match(res.out, /Applied\. Now merge branch promote\/\S+ so the next deploy keeps/);
  });

  it("--apply asks before applying and applies on yes", async () => {
    const res = await promote({}, true)("--from", "staging", "--to", "production", "--apply");
    assert.equal(res.code, EXIT.ok, res.err);
    assert.deepEqual(res.asked, ["Apply this update to stack production?"]);
    assert.ok(commands().some((c) => c.startsWith("up")));
  });

  it("names change branches apart even when two changes start within one second", () => {
    const at = new Date("2026-12-01T10:00:00.001Z");
    const next = new Date(at.getTime() + 1);
    assert.equal(
      changeBranch("promote", "staging-to-production", at),
      "promote/staging-to-production-20261201-100000001Z",
    );
    assert.notEqual(changeBranch("promote", "x", at), changeBranch("promote", "x", next));
  });

  it("--apply declined, or without a terminal and --yes: nothing deployed, the commit stays for review", async () => {
    const declined = await promote({}, false)("--from", "staging", "--to", "production", "--apply");
    assert.equal(declined.code, EXIT.notConfirmed);
    assert.match(declined.err, /stopped before pulumi up \(not confirmed\); nothing was deployed/);
    assert.match(declined.err, /committed on branch promote\/\S+: merge it to deploy/);
    git(project, "switch", "-q", "main");
    const headless = await promote()("--from", "staging", "--to", "production", "--apply");
    assert.equal(headless.code, EXIT.notConfirmed);
    assert.match(headless.err, /no terminal to confirm on; pass --yes/);
    assert.ok(!commands().some((c) => c.startsWith("up")));
    assert.equal(branches().filter((b) => b.startsWith("promote/")).length, 2);
  });

  describe("refuses what staging does not verifiably run, before changing anything", () => {
    it("no registry row for a release in staging", async () => {
      await withRegistryClient(stacks.databaseUrl, (db) =>
        db.query("DELETE FROM model_registry_entries WHERE deployment_environment = 'staging'"),
      );
      try {
        const res = await promote()("--from", "staging", "--to", "production");
        assert.equal(res.code, EXIT.sourceUnverified);
        assert.match(
          res.err,
          /staging does not verifiably run what would be promoted; nothing was changed:\n {2}- chat: no registry row in staging/,
        );
        assert.deepEqual(commands(), []);
        unchanged();
      } finally {
        await stagingRow();
      }
    });

    it("a row that is not ready", async () => {
      await withRegistryClient(stacks.databaseUrl, (db) =>
        setStatus(db, "staging", MODEL, "disabled", "bad outputs, INC-7"),
      );
      const res = await promote()("--from", "staging", "--to", "production");
      assert.equal(res.code, EXIT.sourceUnverified);
      assert.match(res.err, /chat: the staging registry row is disabled \(bad outputs, INC-7\)/);
      assert.deepEqual(commands(), []);
      unchanged();
    });

    it("a row at another revision than Pulumi.staging.yaml", async () => {
      await stagingRow({ revision: stagingRevision(LIVE) });
      const res = await promote()("--from", "staging", "--to", "production");
      assert.equal(res.code, EXIT.sourceUnverified);
      assert.ok(
        res.err.includes(
          `chat: staging runs '${stagingRevision(LIVE)}' but Pulumi.staging.yaml says '${stagingRevision(CANDIDATE)}'`,
        ),
        res.err,
      );
      assert.deepEqual(commands(), []);
      unchanged();
    });

    it("a router image not pinned by digest, or none (opencontainers/image-spec descriptor.md)", async () => {
      for (const [routerImage, why] of [
        [
          "registry.example/platform/vllm-router:1.4.0",
          /router image 'registry\.example\/platform\/vllm-router:1\.4\.0' of staging is not pinned by digest/,
        ],
        [
          `registry.example/platform/vllm-router@sha256:${"C".repeat(64)}`,
          /is not pinned by digest/,
        ],
        [undefined, /staging exports no routerImage output/],
      ] as const) {
        standIn.setOutputs("staging", { routerUrl: stacks.routers.staging.url, routerImage });
        const res = await promote()("--from", "staging", "--to", "production");
        assert.equal(res.code, EXIT.sourceUnverified, String(routerImage));
        assert.match(res.err, why);
      }
      assert.deepEqual(commands(), []);
      unchanged();
    });

    it("a staging that fails verification", async () => {
      standIn.setOutputs("staging", {
        routerUrl: stacks.routers.staging.url,
        routerImage: ROUTER_IMAGE,
        models: { [MODEL]: { endpoint: "chat-staging.llm-staging.svc.cluster.local:8000" } },
      });
      const res = await promote()("--from", "staging", "--to", "production");
      assert.equal(res.code, EXIT.sourceUnverified);
      assert.match(res.err, /error: stack staging failed verification; nothing was promoted/);
      assert.match(res.out, /registry\s+chat\s+FAIL\s+endpoint 127\.0\.0\.1:\d+ does not match/);
      assert.deepEqual(commands(), []);
      unchanged();
    });
  });

  it("exits 3 (could not read the stack) when pulumi is not logged in, and changes nothing", async () => {
    for (const code of ["3", "255"]) {
      const res = await promote({ PULUMI_STANDIN_LOGGED_OUT: code })(
        "--from",
        "staging",
        "--to",
        "production",
      );
      assert.equal(res.code, EXIT.unavailable, res.err);
      assert.match(
        res.err,
        /cannot read stack staging: `pulumi (config|stack output) --json --stack staging` failed/,
      );
      assert.match(res.err, /run `pulumi login`/);
      unchanged();
    }
  });

  it("exits 3 when staging's registry rows cannot be read, and changes nothing", async () => {
    const dead = `postgresql://postgres@127.0.0.1:${await freePort()}/model_registry`;
    const res = await promote({ DATABASE_URL: dead })("--from", "staging", "--to", "production");
    assert.equal(res.code, EXIT.unavailable, res.err);
    assert.match(res.err, /cannot read the registry rows of staging; nothing was changed/);
    unchanged();
  });

  it("refuses a production stack file with uncommitted changes", async () => {
    const file = path.join(project, "Pulumi.production.yaml");
    fs.appendFileSync(file, "# local edit\n");
    const res = await promote()("--from", "staging", "--to", "production");
    assert.equal(res.code, EXIT.usage);
    assert.match(res.err, /Pulumi\.production\.yaml has uncommitted changes; commit or stash them/);
    assert.deepEqual(standIn.calls(), []);
    assert.match(fs.readFileSync(file, "utf8"), /# local edit\n$/, "the edit is left alone");
  });

  it("stops with its own exit code on a mandatory policy violation, and restores the stack file (pulumi/pulumi pkg/backend/display/progress.go)", async () => {
    const res = await promote({ PULUMI_STANDIN_VIOLATION: "image-pinned-by-digest" })(
      "--from",
      "staging",
      "--to",
      "production",
      "--apply",
      "--yes",
    );
    assert.equal(res.code, EXIT.policyViolation);
    assert.match(
      res.err,
      /the change violates mandatory policies of production \(policies\/config\/production\.json\):\n {2}- \[mandatory\] {2}image-pinned-by-digest {2}\(kubernetes:apps\/v1:Deployment: chat-production\)/,
    );
    assert.match(res.err, /Pulumi\.production\.yaml was restored from git; nothing was deployed/);
    assert.ok(!commands().some((c) => c.startsWith("up")));
    unchanged();
  });

  it("reads mandatory violations the way the CLI prints them, and nothing else", () => {
    const printed = [
      "Policies:",
      "    ❌ vllm-fleet@v0.0.1 (local: policies)",
      "        - [mandatory]  gpu-quota  (kubernetes:core/v1:ResourceQuota: gpu)",
      "          too many GPUs",
      "    ⚠️ other@v1",
      "        - [advisory]  container-resources  (kubernetes:apps/v1:Deployment: x)",
    ].join("\n");
    assert.deepEqual(mandatoryViolations({ code: 255, stdout: printed, stderr: "" }), [
      "[mandatory]  gpu-quota  (kubernetes:core/v1:ResourceQuota: gpu)",
    ]);
    assert.deepEqual(mandatoryViolations({ code: 255, stdout: "", stderr: "error: boom" }), []);
  });

  it("stops at the preview when it fails otherwise, and restores the stack file", async () => {
    const res = await promote({ PULUMI_STANDIN_FAIL: "preview" })(
      "--from",
      "staging",
      "--to",
      "production",
    );
    assert.equal(res.code, EXIT.previewFailed);
    assert.ok(
      res.err.includes(
        `stopped at preview: \`pulumi preview --stack production --diff ${POLICY_FLAGS}\` failed`,
      ),
      res.err,
    );
    assert.match(res.err, /stand-in failure of `pulumi preview`/);
    unchanged();
  });

  it("stops when the copied releases are invalid for production, and restores the stack file", async () => {
    // Fine in staging, not in production: the image is a tag, not a digest.
    const tagged = { name: MODEL, source: "org/chat", image: "vllm/vllm-openai:v0.11.0" };
    standIn.setConfig("staging", stagingConfig([tagged]));
    await stagingRow({ revision: stagingRevision(tagged) });
    try {
      const res = await promote()("--from", "staging", "--to", "production");
      assert.equal(res.code, EXIT.configFailed);
      assert.match(res.err, /the new config of production is invalid, so it was not previewed/);
      assert.match(res.err, /releases\[0\]\.image: production images must be pinned by digest/);
      assert.ok(!commands().some((c) => c.startsWith("preview")));
      assert.deepEqual(branches(), ["main"]);
      assert.equal(git(project, "status", "--porcelain", "Pulumi.production.yaml"), "");
    } finally {
      await stagingRow();
    }
  });

  it("stops when pulumi config cp fails", async () => {
    const res = await promote({ PULUMI_STANDIN_FAIL: "config cp" })(
      "--from",
      "staging",
      "--to",
      "production",
    );
    assert.equal(res.code, EXIT.configFailed);
    assert.match(
      res.err,
      /stopped at the config change: `pulumi config cp --stack staging --dest production --path releases` failed with exit code 255/,
    );
    unchanged();
  });

  it("stops when the pull request cannot be opened, keeping the commit", async () => {
    const res = await promote({ GH_STANDIN_FAIL: "1" })(
      "--from",
      "staging",
      "--to",
      "production",
      "--pull-request",
    );
    assert.equal(res.code, EXIT.commitFailed);
    assert.match(
      res.err,
      /stopped at the pull request: `gh pr create --base main --head promote\//,
    );
    assert.match(res.err, /gh auth login/);
    assert.match(res.err, /The change is committed on branch promote\/\S+; push it/);
  });

  it("stops when pulumi up fails and points at rollback", async () => {
    const res = await promote({ PULUMI_STANDIN_FAIL: "up:production" })(
      "--from",
      "staging",
      "--to",
      "production",
      "--apply",
      "--yes",
    );
    assert.equal(res.code, EXIT.upFailed);
    assert.match(res.err, /stopped at pulumi up: .*failed with exit code 255/);
    assert.match(res.err, /npm run rollback -- --stack production/);
  });

  it("stops when production fails verification after the update", async () => {
    standIn.setOutputs("production", {
      models: { [MODEL]: { endpoint: stacks.sims.production.endpoint } },
    });
    const res = await promote()(
      "--from",
      "staging",
      "--to",
      "production",
      "--apply",
      "--yes",
      "--to-router-url",
      "http://127.0.0.1:9",
    );
    assert.equal(res.code, EXIT.targetUnverified);
    assert.match(res.out, /router\s+http:\/\/127\.0\.0\.1:9\s+FAIL\s+unreachable/);
    assert.match(
      res.err,
      /stack production failed verification after the update: roll back with `npm run rollback -- --stack production`/,
    );
  });

  it("rejects bad usage with exit code 2, a missing pulumi with 3, and documents the workflow and every exit code", async () => {
    assert.equal((await promote()("--from", "staging", "--to", "staging")).code, EXIT.usage);
    assert.equal((await promote()("--from", "staging")).code, EXIT.usage);
    const yesAlone = await promote()("--from", "staging", "--to", "production", "--yes");
    assert.equal(yesAlone.code, EXIT.usage);
    assert.match(yesAlone.err, /--yes only confirms --apply/);
    const noGh = await scriptRunner(run, { ...standIn.env, DATABASE_URL: stacks.databaseUrl })(
      "--from",
      "staging",
      "--to",
      "production",
      "--pull-request",
      "--cwd",
      project,
    );
    assert.equal(noGh.code, EXIT.usage);
    assert.match(noGh.err, /--pull-request needs the GitHub CLI/);
    const noPulumi = await scriptRunner(run, {
      PATH: "/nonexistent",
      DATABASE_URL: stacks.databaseUrl,
    })("--from", "staging", "--to", "production");
    assert.equal(noPulumi.code, EXIT.unavailable, "a missing tool is a precondition, not usage");
    assert.match(noPulumi.err, /the pulumi CLI is not on PATH/);
    const noPack = await promote()("--from", "staging", "--to", "qa");
    assert.equal(noPack.code, EXIT.usage);
    assert.match(noPack.err, /policies\/config\/qa\.json does not exist/);
    assert.deepEqual(commands(), []);
    unchanged();

    const help = await promote()("--help");
    assert.equal(help.code, EXIT.ok);
    assert.match(help.out, /--apply\s+break-glass/);
    assert.match(help.out, /--pull-request/);
    assert.match(help.out, /Merging that branch deploys it/);
    assert.ok(help.out.includes(EXIT_HELP), help.out);
  });
});

// Under row-level security no role but a superuser or the table's owner reads two environments'
// rows, so one DATABASE_URL cannot serve both ends of a promotion. Each end is read with its own
// stack's registryUrl output (its writer role), from a registry provisioned as the programs
// declare it (tests/support/registryServer.ts); the routers use their own read-only roles.
describe("npm run promote under row-level security (each stack's registryUrl)", () => {
  let reg: RegistryServer;
  let stacks: ReleaseStacks;
  let standIn: PulumiStandIn;

  before(async function () {
    this.timeout(180000);
    reg = await startRegistryServer({
      suffix: `promote_${randomBytes(4).toString("hex")}`,
      environments: ["staging", "production"],
    });
    const seed = new URL(reg.server.toString());
    seed.pathname = `/${reg.database}`;
    stacks = await startReleaseStacks({
      seedUrl: seed.toString(),
      routerUrls: {
        staging: reg.roleUrl(routerRole("staging")),
        production: reg.roleUrl(routerRole("production")),
      },
    });
    await seedRegistry(stacks.databaseUrl, [
      {
        modelName: MODEL,
        environment: "staging",
        endpoint: stacks.sims.staging.endpoint,
        namespace: "llm-staging",
        revision: stagingRevision(CANDIDATE),
      },
    ]);
  });
  after(async () => {
    await stacks?.close();
    await reg?.close();
  });
  beforeEach(() => {
    standIn = stacks.standIn([CANDIDATE], [LIVE]);
    for (const env of ["staging", "production"] as const)
      standIn.setOutputs(env, {
        routerUrl: stacks.routers[env].url,
        ...(env === "staging" ? { routerImage: ROUTER_IMAGE } : {}),
        models: { [MODEL]: { endpoint: stacks.sims[env].endpoint } },
        registryUrl: secretOutput(reg.roleUrl(writerRole(env))),
      });
  });

  const promote = (env: Record<string, string> = {}) =>
    scriptRunner(run, { ...standIn.env, ...env })(
      "--from",
      "staging",
      "--to",
      "production",
      "--apply",
      "--yes",
      "--cwd",
      standIn.projectDir!,
    );

  it("gates on staging with staging's writer and verifies production with production's (pulumi/pulumi pkg/cmd/pulumi/stack/stack_output.go --show-secrets)", async () => {
    const res = await promote();
    assert.equal(res.code, EXIT.ok, `${res.out}\n${res.err}`);
    const secretReads = standIn
      .calls()
      .filter((c) => c.includes("--show-secrets"))
      .map((c) => c.join(" "));
    assert.deepEqual(secretReads, [
      // gate 1 (staging's rows) and gate 2 (verify staging), then the verification after up
      ...Array(2).fill(
        "stack output registryUrl --show-secrets --json --stack staging --non-interactive",
      ),
      "stack output registryUrl --show-secrets --json --stack production --non-interactive",
    ]);
    assert.equal((res.out.match(/✓ all 6 checks passed/g) ?? []).length, 2, "both stacks verified");
    assert.ok(!`${res.out}${res.err}`.includes(MOCK_GENERATED_PASSWORD), "no password printed");
  });

  it("one DATABASE_URL of production's writer sees no staging row: the gate fails (why each stack's URL is used)", async () => {
    const res = await promote({ DATABASE_URL: reg.roleUrl(writerRole("production")) });
    assert.equal(res.code, EXIT.sourceUnverified, res.err);
    assert.match(res.err, /chat: no registry row in staging/);
    assert.deepEqual(
      standIn.calls().filter((c) => c.includes("--show-secrets")),
      [],
      "DATABASE_URL overrides the stack outputs",
    );
    assert.deepEqual(JSON.parse(configText(standIn.config("production")["vllm-fleet:releases"])!), [
      LIVE,
    ]);
  });
});
