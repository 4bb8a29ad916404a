// npm run rollback with the stand-in pulumi playing back production's history (each entry
// carries the config it deployed), the stack files in a real git repository, real
// router/registry/simulator behind the stack: default and --to targets, --list, the commit
// (and pull request) that keeps the rollback, --no-apply, and a failed gate at every step.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { EXIT, releaseHistory, run } from "../scripts/rollback";
import { EXIT_HELP } from "../scripts/lib/cli";
import { configText, UpdateInfo } from "../scripts/lib/pulumi";
import { configJson, PulumiStandIn } from "./support/pulumiStandIn";
import {
  git,
  productionConfig,
  release,
  ReleaseStacks,
  startReleaseStacks,
} from "./support/releaseStacks";
import { scriptRunner } from "./support/scriptIo";

const V1 = release("1", "1");
const V2 = release("2", "2");
const V3 = release("3", "3");
const GH = path.resolve(__dirname, "fixtures/github");
const POLICY_FLAGS = "--policy-pack policies --policy-pack-config policies/config/production.json";

function update(version: number, releases: unknown[], extra: Partial<UpdateInfo> = {}): UpdateInfo {
  const at = new Date(Date.UTC(2026, 10, version)).toISOString();
  return {
    version,
    kind: "update",
    startTime: at,
    endTime: at,
    message: `deploy ${version}`,
    result: "succeeded",
    config: configJson(productionConfig(releases)),
    ...extra,
  };
}

describe("npm run rollback", () => {
  let stacks: ReleaseStacks;
  let standIn: PulumiStandIn;
  let project: string;

  before(async () => {
    stacks = await startReleaseStacks();
  });
  after(() => stacks?.close());
  beforeEach(() => {
    // Production runs V3; before it ran V2 (a failed update in between), and V1 before that.
    standIn = stacks.standIn([V3], [V3]);
    project = standIn.projectDir!;
    standIn.setHistory("production", [
      update(5, [V3], { message: "promote releases from staging" }),
      update(4, [V3], { result: "failed" }),
      update(3, [V2]),
      update(2, [V2], { kind: "refresh" }),
      update(1, [V1]),
    ]);
  });

  const rollback =
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
  const branches = () => git(project, "branch", "--format=%(refname:short)").trim().split("\n");
  /** Nothing changed: no commit, the stack file as committed, still on main. */
  const unchanged = () => {
    assert.deepEqual(branches(), ["main"]);
    assert.equal(git(project, "status", "--porcelain"), "");
    assert.deepEqual(releasesOf(), [V3]);
  };
  const releasesOf = () =>
    JSON.parse(configText(standIn.config("production")["vllm-fleet:releases"])!) as unknown[];
  const writes = () =>
    standIn
      .calls()
      .map((c) => c[0] + " " + c[1])
      .filter((c) => /^(config set-all|preview|up)/.test(c));

  it("keeps successful updates with a release config, newest first", () => {
    assert.deepEqual(
      releaseHistory(standIn.history("production")).map((h) => h.version),
      [5, 3, 1],
    );
  });

  it("restores the previous release by default, previews with the policy pack, commits, applies and verifies", async () => {
    const res = await rollback()("--stack", "production", "--yes");
    assert.equal(res.code, EXIT.ok, `${res.out}\n${res.err}`);
    assert.match(res.out, /^UPDATE\s+FINISHED\s+MESSAGE\s+RELEASES/m);
    assert.match(
      res.out,
      /^5\s+2026-11-05 00:00\s+promote releases from staging\s+chat v0\.11\.0@33333333 rev 33333333\s+\(current config\)/m,
    );
    assert.match(
      res.err,
      /✓ read the release history of production: update 3 \(chat v0\.11\.0@22222222/,
    );
    assert.match(
      res.out,
      /~ chat: v0\.11\.0@33333333 rev 33333333 -> v0\.11\.0@22222222 rev 22222222/,
    );
    assert.deepEqual(releasesOf(), [V2]);
    assert.deepEqual(writes(), ["config set-all", "preview --stack", "up --stack"]);
    const commands = standIn.calls().map((c) => c.join(" "));
    assert.ok(
      commands.includes(`preview --stack production --diff ${POLICY_FLAGS} --non-interactive`),
    );
    assert.ok(
      commands.includes(
        `up --stack production --yes --message rollback to the releases of update 3 ${POLICY_FLAGS} --non-interactive`,
      ),
    );
    // Committed alone on a new branch, so merging it keeps the rollback.
    assert.match(
      git(project, "branch", "--show-current").trim(),
      /^rollback\/production-to-update-3-\d{8}-\d{9}Z$/,
    );
    assert.equal(git(project, "status", "--porcelain"), "");
    assert.equal(
      git(project, "diff", "--name-only", "main", "HEAD").trim(),
      "Pulumi.production.yaml",
    );
    const message = git(project, "log", "-1", "--format=%B");
    assert.match(message, /^Roll production back to the releases of update 3\n\n/);
    assert.match(
      message,
      /~ chat: v0\.11\.0@33333333 rev 33333333 -> v0\.11\.0@22222222 rev 22222222/,
    );
    assert.ok(res.err.includes("[5/6] pulumi up production with the policy pack"));
    assert.match(
      res.out,
      /Applied\. Now merge branch rollback\/\S+ so the next deploy keeps this config/,
    );
    const setAll = standIn.calls().find((c) => c[1] === "set-all")!;
    assert.deepEqual(Object.keys(JSON.parse(setAll[setAll.indexOf("--json") + 1]) as object), [
      "vllm-fleet:releases",
    ]);
    assert.match(res.out, /✓ all 6 checks passed/);
    assert.equal(standIn.history("production")[0].message, "rollback to the releases of update 3");
  });

  it("--to restores the chosen update; --list only shows the releases", async () => {
    const listed = await rollback()("--stack", "production", "--list");
    assert.equal(listed.code, EXIT.ok);
    assert.match(listed.out, /^1\s+.*chat v0\.11\.0@11111111/m);
    assert.deepEqual(writes(), []);
    const res = await rollback()("--stack", "production", "--to", "1", "--yes");
    assert.equal(res.code, EXIT.ok, res.err);
    assert.deepEqual(releasesOf(), [V1]);
  });

  it("--list works on a dirty stack file; anything else refuses it", async () => {
    fs.appendFileSync(path.join(project, "Pulumi.production.yaml"), "# local edit\n");
    assert.equal((await rollback()("--stack", "production", "--list")).code, EXIT.ok);
    const res = await rollback()("--stack", "production", "--yes");
    assert.equal(res.code, EXIT.usage);
    assert.match(res.err, /Pulumi\.production\.yaml has uncommitted changes/);
    assert.deepEqual(writes(), []);
  });

  it("--list that cannot read the history exits 3 (could not read the stack), never 9 (could not change config)", async () => {
    for (const env of <Record<string, string>[]>[
      { PULUMI_STANDIN_FAIL: "stack history" },
      { PULUMI_STANDIN_LOGGED_OUT: "3" },
      { PULUMI_STANDIN_LOGGED_OUT: "255" },
    ]) {
      const res = await rollback(env)("--stack", "production", "--list");
      assert.equal(res.code, EXIT.unavailable, JSON.stringify(env));
      assert.notEqual(res.code, EXIT.configFailed);
      assert.match(res.err, /cannot read stack production: `pulumi (stack history|config) --json/);
    }
    const loggedOut = await rollback({ PULUMI_STANDIN_LOGGED_OUT: "3" })("--stack", "production");
    assert.equal(loggedOut.code, EXIT.unavailable);
    assert.match(loggedOut.err, /run `pulumi login`/);
    unchanged();
  });

  it("--list of a stack without releases lists none and exits 0; a rollback of it has nothing to restore", async () => {
    standIn.setHistory("production", [update(1, [V1], { result: "failed" })]);
    const listed = await rollback()("--stack", "production", "--list");
    assert.equal(listed.code, EXIT.ok, listed.err);
    assert.match(listed.out, /stack production has no successful update with a release config/);
    const res = await rollback()("--stack", "production", "--yes");
    assert.equal(res.code, EXIT.configFailed);
    assert.match(res.err, /nothing to roll back to/);
    unchanged();
  });

  it("--no-apply only commits: merging deploys it", async () => {
    const res = await rollback()("--stack", "production", "--no-apply");
    assert.equal(res.code, EXIT.ok, res.err);
    assert.deepEqual(writes(), ["config set-all", "preview --stack"]);
    assert.deepEqual(releasesOf(), [V2]);
    assert.equal(git(project, "rev-list", "--count", "main..HEAD").trim(), "1");
    assert.match(res.out, /nothing was deployed \(--no-apply\)\. Merge it to deploy/);
    assert.ok(res.err.includes("[4/4] commit Pulumi.production.yaml on branch rollback/"));
  });

  it("--pull-request pushes the branch and opens a pull request into the current branch", async () => {
    const res = await rollback()(
      "--stack",
      "production",
      "--no-apply",
      "--pull-request",
      "--branch",
      "rollback/chat-v2",
    );
    assert.equal(res.code, EXIT.ok, res.err);
    assert.notEqual(git(project, "ls-remote", "origin", "refs/heads/rollback/chat-v2"), "");
    const call = JSON.parse(
      fs.readFileSync(path.join(standIn.dir, "gh.jsonl"), "utf8"),
    ) as string[];
    assert.equal(call[call.indexOf("--base") + 1], "main");
    assert.equal(call[call.indexOf("--head") + 1], "rollback/chat-v2");
    assert.equal(
      call[call.indexOf("--title") + 1],
      "Roll production back to the releases of update 3",
    );
  });

  it("refuses an update that is not a successful release, naming the choices", async () => {
    const res = await rollback()("--stack", "production", "--to", "4", "--yes");
    assert.equal(res.code, EXIT.usage);
    assert.match(
      res.err,
      /update 4 is not a successful update with a release config of production; pick one of 5, 3, 1/,
    );
    assert.deepEqual(writes(), []);
  });

  it("stops at gate 1 when the history cannot be read: exit 3, could not read the stack", async () => {
    const res = await rollback({ PULUMI_STANDIN_FAIL: "stack history" })(
      "--stack",
      "production",
      "--yes",
    );
    assert.equal(res.code, EXIT.unavailable);
    assert.match(
      res.err,
      /cannot read stack production: `pulumi stack history --json --stack production --page-size 20` failed/,
    );
  });

  it("stops at gate 2 when the release config cannot be set", async () => {
    const res = await rollback({ PULUMI_STANDIN_FAIL: "config set-all" })(
      "--stack",
      "production",
      "--yes",
    );
    assert.equal(res.code, EXIT.configFailed);
    assert.match(res.err, /stopped at config set-all: .*Nothing was deployed/s);
    unchanged();
  });

  it("stops at gate 3 when the preview fails and puts the current releases back", async () => {
    const res = await rollback({ PULUMI_STANDIN_FAIL: "preview" })(
      "--stack",
      "production",
      "--yes",
    );
    assert.equal(res.code, EXIT.previewFailed);
    assert.match(res.err, /Pulumi\.production\.yaml was restored from git; nothing was deployed/);
    unchanged();
  });

  it("stops at a mandatory policy violation with its own exit code", async () => {
    const res = await rollback({ PULUMI_STANDIN_VIOLATION: "min-replicas" })(
      "--stack",
      "production",
      "--yes",
    );
    assert.equal(res.code, EXIT.policyViolation);
    assert.match(res.err, /the change violates mandatory policies of production/);
    assert.match(res.err, /\[mandatory\] {2}min-replicas/);
    assert.ok(!writes().some((w) => w.startsWith("up")));
    unchanged();
  });

  it("stops before up when not confirmed", async () => {
    const res = await rollback({}, false)("--stack", "production");
    assert.equal(res.code, EXIT.notConfirmed);
    assert.match(res.err, /nothing was deployed\. The change is committed on branch rollback\//);
    assert.ok(!writes().some((w) => w.startsWith("up")));
  });

  it("stops at gate 5 when pulumi up fails", async () => {
    const res = await rollback({ PULUMI_STANDIN_FAIL: "up" })("--stack", "production", "--yes");
    assert.equal(res.code, EXIT.upFailed);
    assert.match(res.err, /stopped at pulumi up: .*The update may be partly applied/s);
  });

  it("stops at gate 6 when the stack fails verification after the update", async () => {
    standIn.setOutputs("production", {
      routerUrl: stacks.routers.production.url,
      models: { chat: { endpoint: "chat-production.llm-production.svc.cluster.local:8000" } },
    });
    const res = await rollback()("--stack", "production", "--yes");
    assert.equal(res.code, EXIT.targetUnverified);
    assert.match(res.out, /registry\s+chat\s+FAIL\s+endpoint/);
  });

  it("has --help with the default and the exit codes, and rejects a bad --to", async () => {
    const help = await rollback()("--help");
    assert.equal(help.code, EXIT.ok);
    assert.match(help.out, /Only the release config \(vllm-fleet:releases\) is restored/);
    assert.match(
      help.out,
      /A rollback is an\s+emergency, so by default it is then applied at once/,
    );
    assert.match(help.out, /--no-apply\s+only commit the rollback/);
    assert.ok(help.out.includes(EXIT_HELP), help.out);
    assert.equal((await rollback()("--stack", "production", "--to", "latest")).code, EXIT.usage);
  });
});
