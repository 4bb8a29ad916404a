// npm run promote with the stand-in pulumi on PATH and real routers, registry and simulators
// behind both stacks: the happy path, and a failed gate at every step with its exit code.
import assert from "node:assert/strict";
import { EXIT, run } from "../scripts/promote";
import { configText } from "../scripts/lib/pulumi";
import { PulumiStandIn } from "./support/pulumiStandIn";
import {
  MODEL,
  release,
  ReleaseStacks,
  stagingConfig,
  startReleaseStacks,
} from "./support/releaseStacks";
import { scriptRunner } from "./support/scriptIo";

const CANDIDATE = release("b", "2", { args: { maxModelLen: 16384 } });
const LIVE = release("a", "1");

describe("npm run promote", () => {
  let stacks: ReleaseStacks;
  let standIn: PulumiStandIn;

  before(async () => {
    stacks = await startReleaseStacks();
  });
  after(() => stacks?.close());
  beforeEach(() => {
    standIn = stacks.standIn([CANDIDATE], [LIVE]);
  });

  const promote = (env: Record<string, string> = {}, answer?: boolean) =>
    scriptRunner(run, { ...standIn.env, DATABASE_URL: stacks.databaseUrl, ...env }, answer);
  const releasesOf = (stack: string) =>
    JSON.parse(configText(standIn.config(stack)["vllm-fleet:releases"])!) as unknown[];
  const commands = () =>
    standIn
      .calls()
      .map((c) => c.filter((a) => !a.startsWith("{")).join(" "))
      .filter((c) => !/^(config --json|stack output)/.test(c));

  it("verifies staging, copies only the releases, previews, applies with --yes and verifies production", async () => {
    const res = await promote()("--from", "staging", "--to", "production", "--yes");
    assert.equal(res.code, EXIT.ok, `${res.out}\n${res.err}`);
    // The only writes: the release key copy and the update.
    assert.deepEqual(commands(), [
      "config cp --stack staging --dest production --path releases --non-interactive",
      "preview --stack production --diff --non-interactive",
      "up --stack production --yes --message promote releases from staging --non-interactive",
    ]);
    assert.deepEqual(releasesOf("production"), [CANDIDATE]);
    assert.equal(
      configText(standIn.config("production")["vllm-fleet:capacity"]),
      JSON.stringify({
        [MODEL]: { replicas: 2, gpu: { count: 1 }, cache: { accessMode: "ReadWriteMany" } },
      }),
      "capacity is not promoted",
    );
    assert.match(
      res.out,
      /~ chat: v0\.11\.0@aaaaaaaa rev 11111111 -> v0\.11\.0@bbbbbbbb rev 22222222/,
    );
    assert.match(res.out, /│ Previewing update \(production\)/);
    for (const g of [
      "[1/5] verify staging",
      "[2/5] copy vllm-fleet:releases from staging to production",
      "[3/5] preview production",
      "[4/5] pulumi up production",
      "[5/5] verify production",
    ])
      assert.ok(res.err.includes(g), `gate ${g} shown`);
    assert.equal((res.out.match(/✓ all 4 checks passed/g) ?? []).length, 2, "both stacks verified");
    assert.equal(standIn.history("production")[0].message, "promote releases from staging");
  });

  it("asks before applying and applies on yes", async () => {
    const res = await promote({}, true)("--from", "staging", "--to", "production");
    assert.equal(res.code, EXIT.ok, res.err);
    assert.deepEqual(res.asked, ["Apply this update to stack production?"]);
  });

  it("stops at gate 1 when staging fails verification: nothing copied", async () => {
    standIn.setOutputs("staging", {
      routerUrl: stacks.routers.staging.url,
      models: { [MODEL]: { endpoint: "chat-staging.llm-staging.svc.cluster.local:8000" } },
    });
    const res = await promote()("--from", "staging", "--to", "production", "--yes");
    assert.equal(res.code, EXIT.sourceUnverified);
    assert.match(res.err, /error: stack staging failed verification; nothing was promoted/);
    assert.match(res.out, /registry\s+chat\s+FAIL\s+endpoint 127\.0\.0\.1:\d+ does not match/);
    assert.deepEqual(commands(), []);
    assert.deepEqual(releasesOf("production"), [LIVE]);
  });

  it("stops at gate 2 when pulumi config cp fails", async () => {
    const res = await promote({ PULUMI_STANDIN_FAIL: "config cp" })(
      "--from",
      "staging",
      "--to",
      "production",
      "--yes",
    );
    assert.equal(res.code, EXIT.configFailed);
    assert.match(
      res.err,
      /stopped at config cp: `pulumi config cp --stack staging --dest production --path releases` failed with exit code 255/,
    );
    assert.equal(commands().length, 1);
  });

  it("stops at gate 2 when the copied releases are invalid for production, and restores its config", async () => {
    // Fine in staging, not in production: the image is a tag, not a digest.
    standIn.setConfig(
      "staging",
      stagingConfig([{ name: MODEL, source: "org/chat", image: "vllm/vllm-openai:v0.11.0" }]),
    );
    const res = await promote()("--from", "staging", "--to", "production", "--yes");
    assert.equal(res.code, EXIT.configFailed);
    assert.match(res.err, /the new config of production is invalid, so it was not previewed/);
    assert.match(res.err, /releases\[0\]\.image: production images must be pinned by digest/);
    assert.match(res.err, /the release config of production was restored; nothing was deployed/);
    assert.deepEqual(releasesOf("production"), [LIVE]);
    assert.ok(!commands().some((c) => c.startsWith("preview") || c.startsWith("up")));
  });

  it("stops at gate 3 when the preview fails, and restores production's releases", async () => {
    const res = await promote({ PULUMI_STANDIN_FAIL: "preview" })(
      "--from",
      "staging",
      "--to",
      "production",
      "--yes",
    );
    assert.equal(res.code, EXIT.previewFailed);
    assert.match(res.err, /stopped at preview: `pulumi preview --stack production --diff` failed/);
    assert.match(res.err, /stand-in failure of `pulumi preview`/);
    assert.deepEqual(releasesOf("production"), [LIVE]);
    assert.ok(!commands().some((c) => c.startsWith("up")));
  });

  it("stops before up when not confirmed, or when there is no terminal and no --yes", async () => {
    const declined = await promote({}, false)("--from", "staging", "--to", "production");
    assert.equal(declined.code, EXIT.notConfirmed);
    assert.match(declined.err, /stopped before pulumi up \(not confirmed\)/);
    assert.deepEqual(releasesOf("production"), [LIVE]);
    const headless = await promote()("--from", "staging", "--to", "production");
    assert.equal(headless.code, EXIT.notConfirmed);
    assert.match(headless.err, /no terminal to confirm on; pass --yes/);
    assert.ok(!commands().some((c) => c.startsWith("up")));
  });

  it("stops at gate 4 when pulumi up fails and points at rollback", async () => {
    const res = await promote({ PULUMI_STANDIN_FAIL: "up:production" })(
      "--from",
      "staging",
      "--to",
      "production",
      "--yes",
    );
    assert.equal(res.code, EXIT.upFailed);
    assert.match(res.err, /stopped at pulumi up: .*failed with exit code 255/);
    assert.match(res.err, /npm run rollback -- --stack production/);
  });

  it("stops at gate 5 when production fails verification after the update", async () => {
    standIn.setOutputs("production", {
      models: { [MODEL]: { endpoint: stacks.sims.production.endpoint } },
    });
    const res = await promote()(
      "--from",
      "staging",
      "--to",
      "production",
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

  it("rejects bad usage with exit code 2 and documents every exit code", async () => {
    assert.equal((await promote()("--from", "staging", "--to", "staging")).code, EXIT.usage);
    assert.equal((await promote()("--from", "staging")).code, EXIT.usage);
    const noPulumi = await scriptRunner(run, {
      PATH: "/nonexistent",
      DATABASE_URL: stacks.databaseUrl,
    })("--from", "staging", "--to", "production");
    assert.equal(noPulumi.code, EXIT.usage);
    assert.match(noPulumi.err, /the pulumi CLI is not on PATH/);
    const help = await promote()("--help");
    assert.equal(help.code, EXIT.ok);
    assert.match(help.out, /3 source stack\s+failed verification, 4 release config/);
  });
});
