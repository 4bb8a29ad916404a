// npm run rollback with the stand-in pulumi playing back production's history (each entry
// carries the config it deployed), real router/registry/simulator behind the stack: default
// and --to targets, --list, and a failed gate at every step.
import assert from "node:assert/strict";
import { EXIT, releaseHistory, run } from "../scripts/rollback";
import { configText, UpdateInfo } from "../scripts/lib/pulumi";
import { configJson, PulumiStandIn } from "./support/pulumiStandIn";
import {
  productionConfig,
  release,
  ReleaseStacks,
  startReleaseStacks,
} from "./support/releaseStacks";
import { scriptRunner } from "./support/scriptIo";

const V1 = release("1", "1");
const V2 = release("2", "2");
const V3 = release("3", "3");

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

  before(async () => {
    stacks = await startReleaseStacks();
  });
  after(() => stacks?.close());
  beforeEach(() => {
    // Production runs V3; before it ran V2 (a failed update in between), and V1 before that.
    standIn = stacks.standIn([V3], [V3]);
    standIn.setHistory("production", [
      update(5, [V3], { message: "promote releases from staging" }),
      update(4, [V3], { result: "failed" }),
      update(3, [V2]),
      update(2, [V2], { kind: "refresh" }),
      update(1, [V1]),
    ]);
  });

  const rollback = (env: Record<string, string> = {}, answer?: boolean) =>
    scriptRunner(run, { ...standIn.env, DATABASE_URL: stacks.databaseUrl, ...env }, answer);
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

  it("restores the previous release by default, previews, applies and verifies", async () => {
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
    const setAll = standIn.calls().find((c) => c[1] === "set-all")!;
    assert.deepEqual(Object.keys(JSON.parse(setAll[setAll.indexOf("--json") + 1]) as object), [
      "vllm-fleet:releases",
    ]);
    assert.match(res.out, /✓ all 4 checks passed/);
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

  it("refuses an update that is not a successful release, naming the choices", async () => {
    const res = await rollback()("--stack", "production", "--to", "4", "--yes");
    assert.equal(res.code, EXIT.usage);
    assert.match(
      res.err,
      /update 4 is not a successful update with a release config of production; pick one of 5, 3, 1/,
    );
    assert.deepEqual(writes(), []);
  });

  it("stops at gate 1 when the history cannot be read", async () => {
    const res = await rollback({ PULUMI_STANDIN_FAIL: "stack history" })(
      "--stack",
      "production",
      "--yes",
    );
    assert.equal(res.code, EXIT.configFailed);
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
    assert.match(res.err, /stopped at config set-all: .*Nothing was deployed\./s);
    assert.deepEqual(releasesOf(), [V3]);
  });

  it("stops at gate 3 when the preview fails and puts the current releases back", async () => {
    const res = await rollback({ PULUMI_STANDIN_FAIL: "preview" })(
      "--stack",
      "production",
      "--yes",
    );
    assert.equal(res.code, EXIT.previewFailed);
    assert.match(res.err, /the release config of production was restored; nothing was deployed/);
    assert.deepEqual(releasesOf(), [V3]);
  });

  it("stops before up when not confirmed", async () => {
    const res = await rollback({}, false)("--stack", "production");
    assert.equal(res.code, EXIT.notConfirmed);
    assert.deepEqual(releasesOf(), [V3]);
    assert.ok(!writes().some((w) => w.startsWith("up")));
  });

  it("stops at gate 4 when pulumi up fails", async () => {
    const res = await rollback({ PULUMI_STANDIN_FAIL: "up" })("--stack", "production", "--yes");
    assert.equal(res.code, EXIT.upFailed);
    assert.match(res.err, /stopped at pulumi up: .*The update may be partly applied/s);
  });

  it("stops at gate 5 when the stack fails verification after the update", async () => {
    standIn.setOutputs("production", {
      routerUrl: stacks.routers.production.url,
      models: { chat: { endpoint: "chat-production.llm-production.svc.cluster.local:8000" } },
    });
    const res = await rollback()("--stack", "production", "--yes");
    assert.equal(res.code, EXIT.targetUnverified);
    assert.match(res.out, /registry\s+chat\s+FAIL\s+endpoint/);
  });

  it("has --help with the exit codes and rejects a bad --to", async () => {
    const help = await rollback()("--help");
    assert.equal(help.code, EXIT.ok);
    assert.match(help.out, /Only the release config \(vllm-fleet:releases\) is restored/);
    assert.equal((await rollback()("--stack", "production", "--to", "latest")).code, EXIT.usage);
  });
});
