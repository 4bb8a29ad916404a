// The one rule every operator script uses to reach a stack's registry rows: DATABASE_URL when
// set, else the stack's secret `registryUrl` output, read with
// `pulumi stack output registryUrl --show-secrets --json --stack <stack>` (flags of
// pulumi/pulumi pkg/cmd/pulumi/stack/stack_output.go: --show-secrets, -j/--json, -s/--stack).
// Against the stand-in pulumi and a real PostgreSQL; the URL's password never reaches output.
import assert from "node:assert/strict";
import { EXIT, run as registryCli } from "../scripts/registry";
import { PulumiCli } from "../scripts/lib/pulumi";
import { stackRegistryUrl } from "../scripts/lib/stack";
import { ScriptError } from "../scripts/lib/cli";
import { createPulumiStandIn, PulumiStandIn, secretOutput } from "./support/pulumiStandIn";
import { scriptRunner } from "./support/scriptIo";
import { createTestDatabase, freePort } from "./support/services";
import { withRegistryClient, migrate, upsertEntry } from "@vllm-fleet/registry";

const SHOW_SECRETS = ["stack", "output", "registryUrl", "--show-secrets", "--json", "--stack"];

describe("registry connection of a stack (DATABASE_URL, else its registryUrl output)", () => {
  let standIn: PulumiStandIn;
  let db: string;
  let withPassword: string;
  const PASSWORD = "op-secret-7c4e";

  before(async () => {
    db = await createTestDatabase("ops_registry_url");
    await withRegistryClient(db, async (c) => {
      await migrate(c);
      await upsertEntry(c, {
        modelName: "chat",
        environment: "staging",
        endpoint: "chat-staging.llm-staging.svc.cluster.local:8000",
        namespace: "llm-staging",
      });
      // A login role with a password, as the stack's writer URL carries one.
      await c.query(`DROP ROLE IF EXISTS ops_url_login`);
      await c.query(`CREATE ROLE ops_url_login LOGIN SUPERUSER PASSWORD '${PASSWORD}'`);
    });
    const u = new URL(db);
    u.username = "ops_url_login";
    u.password = PASSWORD;
    withPassword = u.toString();
    standIn = createPulumiStandIn();
    standIn.setConfig("staging", { environment: "staging" });
    standIn.setOutputs("staging", {
      routerUrl: "http://vllm-router.llm-staging.svc.cluster.local",
      registryUrl: secretOutput(withPassword),
    });
    standIn.setConfig("old", { environment: "staging" });
    standIn.setOutputs("old", { routerUrl: "http://vllm-router.llm-staging.svc.cluster.local" });
  });
  after(async () => {
    standIn?.remove();
    await withRegistryClient(db, (c) => c.query(`DROP ROLE IF EXISTS ops_url_login`));
  });

  const cli = () => new PulumiCli({ env: standIn.env });
  const secretReads = () => standIn.calls().filter((c) => c.includes("--show-secrets"));

  it("reads the registryUrl output with --show-secrets; without it the CLI shows [secret]", async () => {
    assert.equal(await stackRegistryUrl("staging", standIn.env, cli()), withPassword);
    assert.deepEqual(secretReads().at(-1), [...SHOW_SECRETS, "staging", "--non-interactive"]);
    // What `pulumi stack output --json` prints without --show-secrets (what loadStackView reads).
    assert.deepEqual(await cli().outputs("staging"), {
      routerUrl: "http://vllm-router.llm-staging.svc.cluster.local",
      registryUrl: "[secret]",
    });
  });

  it("DATABASE_URL, when set, is the connection and the stack's secret is not read", async () => {
    const before = secretReads().length;
    const env = { ...standIn.env, DATABASE_URL: db };
    assert.equal(await stackRegistryUrl("staging", env, cli()), db);
    assert.equal(secretReads().length, before);
  });

  it("a stack without the output, or no pulumi, says how to connect instead", async () => {
    await assert.rejects(stackRegistryUrl("old", standIn.env, cli()), (e: ScriptError) => {
      assert.equal(e.exitCode, EXIT.unavailable);
      assert.match(e.message, /cannot read the registryUrl output of stack old/);
      assert.match(e.message, /current stack does not have output property 'registryUrl'/);
      assert.match(e.message, /export DATABASE_URL/);
      return true;
    });
    await assert.rejects(stackRegistryUrl("old", {}, undefined), (e: ScriptError) => {
      assert.equal(e.exitCode, EXIT.usage);
      assert.match(e.message, /DATABASE_URL is not set and the pulumi CLI is not on PATH/);
      return true;
    });
  });

  it("registry CLI --stack connects with the output and never prints it", async () => {
    const reg = scriptRunner(registryCli, standIn.env);
    const listed = await reg("list", "--stack", "staging", "--format", "json");
    assert.equal(listed.code, EXIT.ok, listed.err);
    assert.deepEqual(
      (JSON.parse(listed.out) as { modelName: string }[]).map((r) => r.modelName),
      ["chat"],
    );
    assert.deepEqual(secretReads().at(-1), [...SHOW_SECRETS, "staging", "--non-interactive"]);
    assert.ok(!`${listed.out}${listed.err}`.includes(PASSWORD));

    // An unreachable server: the message names the output, with the password redacted.
    const dead = new URL(withPassword);
    dead.port = String(await freePort());
    standIn.setOutputs("staging", { registryUrl: secretOutput(dead.toString()) });
    try {
      const down = await reg("list", "--stack", "staging");
      assert.equal(down.code, EXIT.unavailable);
      assert.match(
        down.err,
        /ops_url_login:\*\*\*@.*check the registryUrl output of stack staging/,
      );
      assert.ok(!`${down.out}${down.err}`.includes(PASSWORD));
    } finally {
      standIn.setOutputs("staging", { registryUrl: secretOutput(withPassword) });
    }

    const missing = await reg("list", "--stack", "old");
    assert.equal(missing.code, EXIT.unavailable);
    assert.match(missing.err, /cannot read the registryUrl output of stack old/);
    const help = await reg("--help");
    assert.match(help.out.replace(/\s+/g, " "), /--stack <name> without DATABASE_URL: connect/);
  });
});
