// The README is the user's documentation and stands alone: its lists of stack outputs, commands
// and exit codes are the program's, every file it points at is in the repository, and every
// example value of the committed stack files that must be replaced is named as a placeholder.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { EXIT, EXIT_MEANINGS } from "../scripts/lib/cli";
import { ERRORS, statusesOf, type ErrorCode } from "../router/src/errors";
import { runProgram } from "./support/program";

const ROOT = path.resolve(__dirname, "..");
const README = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");

/** The rows of the first Markdown table after `heading` (cells trimmed, header dropped). */
function tableAfter(heading: string): string[][] {
  const start = README.indexOf(heading);
  assert.notEqual(start, -1, `README has no "${heading}"`);
  const lines = README.slice(start).split("\n");
  const first = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(
      line
        .slice(1, -1)
        .split(" | ")
        .map((c) => c.trim()),
    );
  }
  return rows;
}

/** `a` of a cell "`a` (...)". */
const code = (cell: string) => /^`([^`]+)`/.exec(cell)?.[1] ?? cell;

describe("README", () => {
  it("lists exactly the stack outputs the program exports (index.ts), models.* per model", async function () {
    this.timeout(120000);
    const { outputs } = await runProgram("development");
    const models = outputs.models as Record<string, Record<string, unknown>>;
    assert.ok(Object.keys(models).length > 0);
    const expected = Object.keys(outputs)
      .filter((k) => k !== "models")
      .concat(
        ...Object.values(models).map((m) => Object.keys(m).map((k) => `models.<model>.${k}`)),
      );
    const documented = tableAfter("### Stack outputs").map((r) => code(r[0]));
    assert.deepEqual([...new Set(documented)].sort(), [...new Set(expected)].sort());
    assert.ok(documented.includes("routerUrl"));
  });

  it("lists exactly the npm scripts of package.json", () => {
    const scripts = Object.keys(
      (
        JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
          scripts: Record<string, string>;
        }
      ).scripts,
    );
    const documented = tableAfter("| `npm run` | what it does |").map((r) => code(r[0]));
    assert.deepEqual(documented.sort(), scripts.sort());
  });

  it("has the exit-code table every script uses (scripts/lib/cli.ts)", () => {
    const documented = tableAfter("### Exit codes").map(([c, meaning]) => [Number(c), meaning]);
    const table = (Object.keys(EXIT) as (keyof typeof EXIT)[]).map((k) => [
      EXIT[k],
      EXIT_MEANINGS[k],
    ]);
    assert.deepEqual(documented, table);
    assert.equal(new Set(Object.values(EXIT)).size, Object.keys(EXIT).length, "one code each");
  });

  it("has the router's error table: every code of router/src/errors.ts, its status(es) and type, in order", () => {
    const documented = tableAfter("### Router errors").map(([status, c, type]) => [
      status === "—" ? [] : status.split(", ").map(Number),
      code(c),
      code(type),
    ]);
    const catalogue = (Object.keys(ERRORS) as ErrorCode[]).map((c) => [
      statusesOf(c),
      c,
      ERRORS[c].type,
    ]);
    assert.deepEqual(documented, catalogue);
  });

  it("points only at files in the repository, and at nothing outside it", () => {
    const links = [...README.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
      .map((m) => m[1])
      .filter((t) => !/^[a-z]+:/.test(t));
    const paths = [...README.matchAll(/`([\w.-]+(?:\/[\w.-]+)+\.(?:ts|ya?ml|json|mjs|sh))`/g)].map(
      (m) => m[1],
    );
    const files = [...links, ...paths, "router/Dockerfile", "scripts/simulator/Dockerfile"];
    assert.ok(paths.length >= 5, "the README names files of the repository");
    const missing = files.filter((f) => !fs.existsSync(path.join(ROOT, f)));
    assert.deepEqual(missing, []);
    assert.doesNotMatch(
      README,
      /DESIGN\.md|design document|\/work\/|\bthe (issue|review)\b|\bseeds?\b/i,
    );
  });

  it("names every example organization and host of the committed stack files as a placeholder", () => {
    const placeholders = tableAfter("**Placeholders.**").map((r) => code(r[0]));
    const examples = new Set<string>();
    const walk = (v: unknown): void => {
      if (typeof v === "string") {
        if (/acme|example|\.internal\b/.test(v)) examples.add(v);
      } else if (v && typeof v === "object") Object.values(v).forEach(walk);
    };
    for (const file of [
      "Pulumi.development.yaml",
      "Pulumi.staging.yaml",
      "Pulumi.production.yaml",
      "registry-stack/Pulumi.shared.yaml",
    ])
      walk(parse(fs.readFileSync(path.join(ROOT, file), "utf8")));
    assert.ok(examples.size > 0);
    const unnamed = [...examples].filter((v) => !placeholders.some((p) => v.includes(p)));
    assert.deepEqual(unnamed, [], "every example value contains a placeholder the README names");
    // The organization alone is not enough: each placeholder host and repository is listed.
    for (const p of [
      "ghcr.io/acme-ml/vllm-fleet",
      "model-registry.db.acme-ml.internal",
      "registry-cache.redis.acme-ml.internal",
    ])
      assert.ok(placeholders.includes(p), p);
  });
});

describe("docs/architecture.md", () => {
  const DOC = fs.readFileSync(path.join(ROOT, "docs", "architecture.md"), "utf8");

  it("names only repository paths that exist (files and folders in backticks, relative links)", () => {
    const named = [...DOC.matchAll(/`([^`\s]+)`/g)]
      .map((m) => m[1])
      .filter(
        (t) =>
          /^[\w.-]+(?:\/[\w.-]+)*\/?$/.test(t) &&
          (t.includes("/") || /\.(?:ts|ya?ml|json|mjs|sh|md)$/.test(t)),
      );
    const links = [...DOC.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
      .map((m) => m[1])
      .filter((t) => !/^[a-z]+:/.test(t))
      .map((t) => path.relative(ROOT, path.join(ROOT, "docs", t)));
    assert.ok(
      named.length >= 40,
      `found only ${named.length} paths: the pattern no longer matches`,
    );
    assert.ok(named.includes("components/spec/config.ts") && links.includes("README.md"));
    const missing = [...named, ...links].filter((f) => !fs.existsSync(path.join(ROOT, f)));
    assert.deepEqual(missing, []);
  });

  it("names only test files that exist, and every invariant names one", () => {
    const section = DOC.slice(DOC.indexOf("## Invariants and their guards"));
    const guarded = section
      .slice(0, section.indexOf("\n## ", 1))
      .split("\n")
      .filter(
        (l) => l.startsWith("| ") && !l.startsWith("| ---") && l !== "| invariant | guarded by |",
      );
    assert.ok(guarded.length >= 20, "the invariant tables are there");
    for (const row of guarded)
      assert.match(row.split(" | ").at(-1) ?? "", /`tests\/[\w.]+\.test\.ts`/, row);
  });

  it("nothing in the repository points outside it: no design document, issue or review", () => {
    const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" })
      .split("\0")
      .filter((f) => /\.(ts|mjs|md|ya?ml|json|sh)$|Dockerfile$/.test(f))
      .filter((f) => f !== "package-lock.json" && f !== "tests/readme.test.ts");
    assert.ok(files.length > 100, `${files.length} files`);
    const outside =
      /DESIGN\.md|design document|\.\.\/shared\/|\bthe (issue|review)\b|\bthe seeds\b/i;
    const hits = files.filter(
      (f) =>
        fs.existsSync(path.join(ROOT, f)) &&
        outside.test(fs.readFileSync(path.join(ROOT, f), "utf8")),
    );
    assert.deepEqual(hits, []);
  });

  it("is linked from the top of the README and points at nothing outside the repository", () => {
    const top = README.slice(0, README.indexOf("## Quick start"));
    assert.match(top, /\]\(docs\/architecture\.md\)/);
    assert.doesNotMatch(
      DOC,
      /DESIGN\.md|design document|\/work\/|\bthe (issue|review)\b|\bseeds?\b/i,
    );
  });
});
