// The registry CLI end to end against real PostgreSQL and Redis: in-process through run()
// for most cases, and as `npm run registry` child processes for exit codes and --help.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import type Redis from "ioredis";
import { Client } from "pg";
import { EXIT, run } from "../scripts/registry";
import { EXIT_HELP } from "../scripts/lib/cli";
import { encodeEntry, connectRedis, getEntry, registryKey } from "@vllm-fleet/registry";
import { createTestDatabase, freePort, redisUrl } from "./support/services";

const ROOT = path.resolve(__dirname, "..");
const ENDPOINT = "llama-2-7b-development.system.svc.cluster.local:8000";

interface Result {
  code: number;
  out: string;
  err: string;
}

function cli(env: Record<string, string | undefined>) {
  return async (...args: string[]): Promise<Result> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await run(args, { env, out: (s) => out.push(s), err: (s) => err.push(s) });
    return { code, out: out.join("\n"), err: err.join("\n") };
  };
}

function npmRun(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) =>
    execFile(
      "npm",
      ["run", "--silent", "registry", "--", ...args],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
        timeout: 60000,
      },
      (e, stdout, stderr) =>
        resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
    ),
  );
}

describe("registry CLI", () => {
  let url: string;
  let redisAt: string;
  let db: Client;
  let redis: Redis;
  let reg: ReturnType<typeof cli>;

  before(async () => {
    url = await createTestDatabase("reg_cli");
    redisAt = await redisUrl();
    db = new Client({ connectionString: url });
    await db.connect();
    redis = await connectRedis(redisAt);
    reg = cli({ DATABASE_URL: url, REDIS_URL: redisAt });
  });
  after(async () => {
    redis.disconnect();
    await db.end();
  });

  it("explains a missing DATABASE_URL, an unreachable database and a missing schema", async () => {
    const unset = await cli({})("list");
    assert.equal(unset.code, EXIT.usage);
    assert.match(unset.err, /DATABASE_URL is not set: export DATABASE_URL=postgresql:\/\//);

    const deadUrl = `postgresql://admin:topsecret9@127.0.0.1:${await freePort()}/r`;
    const dead = await cli({ DATABASE_URL: deadUrl })("list");
    assert.equal(dead.code, EXIT.unavailable);
    assert.match(
      dead.err,
      /cannot reach the registry database at postgresql:\/\/admin:\*\*\*@.*check DATABASE_URL/,
    );
    assert.doesNotMatch(dead.err, /topsecret9/);

    const empty = await reg("list");
    assert.equal(empty.code, EXIT.unavailable);
    // The shared registry is migrated by its stack, as its owner role; environments' roles cannot.
    assert.match(empty.err, /the registry is not migrated; `pulumi -C registry-stack up` migrates/);
    assert.doesNotMatch(empty.err, /run `npm run registry -- migrate` first/);
  });

  it("migrates with progress, and dry-runs without applying", async () => {
    const dry = await reg("migrate", "--dry-run");
    assert.equal(dry.code, EXIT.ok);
    assert.match(
      dry.out,
      /\[dry-run\] schema at version 0; would apply: 1 create_model_registry_entries, 2 notify/,
    );
    assert.equal((await reg("list")).code, EXIT.unavailable, "dry run applied nothing");

    const up = await reg("migrate");
    assert.equal(up.code, EXIT.ok);
    assert.match(
      up.out,
      /applied 1 create_model_registry_entries\napplied 2 notify_model_registry_changed\napplied 3 environment_row_level_security\n/,
    );
    assert.match(up.out, /Registry schema at version 3 \(latest 3\); 3 migration\(s\) applied/);
    const again = JSON.parse((await reg("migrate", "--format", "json")).out);
    assert.deepEqual(again, { dryRun: false, from: 3, to: 3, steps: [] });
  });

  // Migrations create tables in `public` and alter the registry's own: PostgreSQL checks CREATE on
  // the schema even for CREATE TABLE IF NOT EXISTS of a table that exists, and only the owner may
  // ALTER a table (https://www.postgresql.org/docs/current/ddl-priv.html; since PostgreSQL 15
  // `public` grants CREATE to its database's owner only). An environment's login role has neither.
  it("migrates only as a role that owns the registry, and says so otherwise", async () => {
    const role = `cli_login_${Date.now()}`;
    assert.equal((await reg("migrate")).code, EXIT.ok, "the registry is migrated (by its owner)");
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-cli-login'`);
    try {
      const u = new URL(url);
      u.username = role;
      u.password = "pw-cli-login";
      const login = new Client({ connectionString: u.toString() });
      await login.connect();
      await assert.rejects(
        login.query(`CREATE TABLE IF NOT EXISTS model_registry_migrations (version int)`),
        /permission denied for schema public/,
      );
      await login.end();

      const asLogin = cli({ DATABASE_URL: u.toString() });
      for (const args of [["migrate"], ["migrate", "--dry-run"], ["migrate", "--down"]]) {
        const refused = await asLogin(...args);
        assert.equal(refused.code, EXIT.usage, args.join(" "));
        assert.match(
          refused.err,
          new RegExp(
            `role ${role} cannot migrate the registry: it has no CREATE privilege on schema public and the registry's tables belong to postgres; migrate as the role that owns it \\(DATABASE_URL\\); \`pulumi -C registry-stack up\` migrates the shared registry as its owner role`,
          ),
        );
      }
      // CREATE on the schema is not enough: the tables are the owner's.
      await db.query(`GRANT CREATE ON SCHEMA public TO ${role}`);
      assert.match(
        (await asLogin("migrate")).err,
        /cannot migrate the registry: the registry's tables belong to postgres; migrate as the role that owns it/,
      );
      const help = (await reg("migrate", "--help")).out.replace(/\s+/g, " ");
      assert.match(help, /as the role that owns the registry/);
      assert.match(help, /`pulumi -C registry-stack up` migrates the shared registry/);
    } finally {
      await db.query(`DROP OWNED BY ${role}`);
      await db.query(`DROP ROLE ${role}`);
    }
  });

  it("registers (dry run first), lists as table, json and csv", async () => {
    const args = [
      "register",
      "--model-name",
      "llama-2-7b",
      "--endpoint",
      ENDPOINT,
      "--environment",
      "development",
    ];
    const dry = await reg(...args, "--dry-run");
    assert.equal(dry.code, EXIT.ok);
    assert.match(
      dry.out,
      /\[dry-run\] would be registered \(nothing written\): llama-2-7b \(development\)/,
    );
    assert.equal(await getEntry(db, "development", "llama-2-7b"), undefined);

    const done = await reg(
      ...args,
      "--fallbacks",
      "mistral-7b",
      "--served-model-name",
      "meta/llama-2-7b",
    );
    assert.equal(done.code, EXIT.ok, done.err);
    assert.match(done.out, /✓ Model registered: llama-2-7b \(development\)/);
    const row = await getEntry(db, "development", "llama-2-7b");
    assert.deepEqual(
      [row!.status, row!.namespace, row!.fallbacks, row!.servedModelName, row!.managedBy],
      ["ready", "system", ["mistral-7b"], "meta/llama-2-7b", "registry-cli"],
    );
    await reg(
      "register",
      "--model-name",
      "gpt-neo",
      "--endpoint",
      "gpt-neo-production.system.svc.cluster.local:8000",
      "--environment",
      "production",
    );

    const table = await reg("list");
    const lines = table.out.split("\n");
    assert.equal(lines[0], "Found 2 model deployment(s)");
    assert.equal(lines[1], "");
    assert.match(
      lines[2],
      /^ID {2}Model Name {2}Endpoint +Status {2}Environment {2}Namespace {2}Last Health {2}Updated$/,
    );
    assert.match(
      lines[3],
      new RegExp(
        `^\\d+ +llama-2-7b +${ENDPOINT.replace(/\./g, "\\.")} +ready +development +system +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d$`,
      ),
    );

    const json = JSON.parse(
      (await reg("list", "--environment", "production", "--format", "json")).out,
    );
    assert.deepEqual(
      json.map((e: { modelName: string }) => e.modelName),
      ["gpt-neo"],
    );
    const csv = (await reg("list", "--format", "csv", "--status", "ready")).out.split("\n");
    assert.equal(csv.length, 3);
    assert.match(csv[0], /^id,model_name,deployment_environment,endpoint,/);
    assert.match(csv[1], /^\d+,llama-2-7b,development,/);
    assert.equal((await reg("list", "--status", "disabled")).out, "Found 0 model deployment(s)");
  });

  it("disables with a reason, deleting the cache key; enables; deregisters", async () => {
    const key = registryKey("development", "llama-2-7b");
    await redis.set(key, "stale");
    const off = await reg(
      "disable",
      "--model-name",
      "llama-2-7b",
      "--environment",
      "development",
      "--reason",
      "bad release",
    );
    assert.equal(off.code, EXIT.ok, off.err);
    assert.match(off.out, /Reason: bad release/);
    assert.match(off.out, /Cache: model_registry:development:llama-2-7b deleted/);
    assert.equal(await redis.exists(key), 0);
    assert.equal((await getEntry(db, "development", "llama-2-7b"))!.status, "disabled");

    const on = JSON.parse(
      (
        await reg(
          "enable",
          "--model-name",
          "llama-2-7b",
          "--environment",
          "development",
          "--format",
          "json",
        )
      ).out,
    );
    assert.equal(on.action, "enabled");
    assert.equal(on.entry.status, "ready");
    assert.equal(on.entry.disabledReason, null);

    const dry = await reg(
      "deregister",
      "--model-name",
      "llama-2-7b",
      "--environment",
      "development",
      "--dry-run",
    );
    assert.match(dry.out, /would be deregistered/);
    assert.equal(
      (await getEntry(db, "development", "llama-2-7b"))!.status,
      "ready",
      "dry run wrote nothing",
    );
    await reg("deregister", "--model-name", "llama-2-7b", "--environment", "development");
    const gone = await getEntry(db, "development", "llama-2-7b");
    assert.deepEqual([gone!.status, gone!.disabledReason], ["disabled", "deregistered"]);
  });

  it("shows status with the cache state", async () => {
    await reg("enable", "--model-name", "llama-2-7b", "--environment", "development");
    const key = registryKey("development", "llama-2-7b");
    const status = (...extra: string[]) =>
      reg("status", "--model-name", "llama-2-7b", "--environment", "development", ...extra);
    assert.match((await status()).out, /Status: ready\n[\s\S]*Cache: not cached$/);
    await redis.set(
      key,
      encodeEntry((await getEntry(db, "development", "llama-2-7b"))!),
      "EX",
      100,
    );
    assert.match(
      (await status()).out,
      /Cache: cached \(model_registry:development:llama-2-7b, ttl (100|99) s\)$/,
    );
    await db.query(
      `UPDATE model_registry_entries SET endpoint = 'moved:8000' WHERE model_name = 'llama-2-7b'`,
    );
    const stale = JSON.parse((await status("--format", "json")).out);
    assert.equal(stale.cache.state, "stale");
    const noRedis = await cli({ DATABASE_URL: url })(
      "status",
      "--model-name",
      "llama-2-7b",
      "--environment",
      "development",
    );
    assert.match(noRedis.out, /Cache: not configured \(REDIS_URL unset\)/);
  });

  it("rejects bad input with the flag, the fix and exit code 2; unknown models with 3", async () => {
    const badEnv = await reg("list", "--environment", "prod");
    assert.equal(badEnv.code, EXIT.usage);
    assert.match(
      badEnv.err,
      /--environment 'prod' is invalid: use one of development, staging, production/,
    );
    const badName = await reg(
      "register",
      "--model-name",
      "Llama_2",
      "--endpoint",
      ENDPOINT,
      "--environment",
      "staging",
    );
    assert.equal(badName.code, EXIT.usage);
    assert.match(badName.err, /--model-name 'Llama_2' is invalid: use lowercase letters, digits/);
    const badEndpoint = await reg(
      "register",
      "--model-name",
      "m",
      "--endpoint",
      "http://m:8000",
      "--environment",
      "staging",
    );
    assert.equal(badEndpoint.code, EXIT.usage);
    assert.match(
      badEndpoint.err,
      /--endpoint 'http:\/\/m:8000' is invalid: use host:port without a scheme/,
    );
    const noReason = await reg(
      "disable",
      "--model-name",
      "llama-2-7b",
      "--environment",
      "development",
    );
    assert.equal(noReason.code, EXIT.usage);
    assert.match(noReason.err, /required option '--reason <text>' not specified/);
    const badFormat = await reg("list", "--format", "xml");
    assert.equal(badFormat.code, EXIT.usage);
    const unknown = await reg("enable", "--model-name", "nope", "--environment", "staging");
    assert.equal(unknown.code, EXIT.notFound);
    assert.match(unknown.err, /model not found in registry: nope \(environment staging\)/);
    assert.equal(
      (await reg("status", "--model-name", "nope", "--environment", "staging")).code,
      EXIT.notFound,
    );
  });

  it("register checks its flags as one row before connecting: every problem, each naming its flag", async () => {
    // A dead DATABASE_URL: a usage error must not need the database.
    const offline = cli({ DATABASE_URL: `postgresql://u@127.0.0.1:${await freePort()}/r` });
    const res = await offline(
      "register",
      "--model-name",
      "m",
      "--endpoint",
      "http://m:8000",
      "--environment",
      "qa",
      "--served-model-name",
      "",
      "--fallbacks",
      "Bad Name, m",
    );
    assert.equal(res.code, EXIT.usage, res.err);
    for (const problem of [
      /--environment 'qa' is invalid: use one of development, staging, production/,
      /--endpoint 'http:\/\/m:8000' is invalid: use host:port without a scheme/,
      /--served-model-name is required/,
      /--fallbacks\[0\] 'Bad Name' is invalid/,
      // Only the whole row shows a model falling back to itself.
      /--fallbacks\[1\]: a model cannot fall back to itself/,
    ])
      assert.match(res.err, problem);
    assert.doesNotMatch(res.err, /cannot reach/);
  });

  it("still writes when Redis is down, with a warning", async () => {
    const down = cli({ DATABASE_URL: url, REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    const res = await down(
      "disable",
      "--model-name",
      "gpt-neo",
      "--environment",
      "production",
      "--reason",
      "drill",
    );
    assert.equal(res.code, EXIT.ok);
    assert.match(res.err, /warning: Cache: could not delete model_registry:production:gpt-neo/);
    assert.equal((await getEntry(db, "production", "gpt-neo"))!.status, "disabled");
  });

  it("runs as `npm run registry` with --help and exit codes", async () => {
    const help = await npmRun(["--help"], {});
    assert.equal(help.code, 0);
    assert.match(help.out, /Usage: npm run registry -- \[options\] \[command\]/);
    assert.ok(help.out.includes(EXIT_HELP), help.out);
    const list = await npmRun(["list", "--format", "json"], { DATABASE_URL: url });
    assert.equal(list.code, 0, list.err);
    assert.deepEqual(
      JSON.parse(list.out).map((e: { modelName: string }) => e.modelName),
      ["llama-2-7b", "gpt-neo"],
    );
    const bad = await npmRun(["status", "--model-name", "x", "--environment", "qa"], {
      DATABASE_URL: url,
    });
    assert.equal(bad.code, EXIT.usage);
    assert.match(bad.err, /--environment 'qa' is invalid/);
  });
});
