import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { loadStackSpec } from "../components/spec";
import type { Manifest } from "../components/manifests";
import { schemaProblems, buildModelDeployment, renderStack } from "../components/manifests";
import { EXIT, EXIT_HELP } from "../scripts/lib/cli";
import { RENDER_INDEX, RenderDirectoryError, renderToDirectory } from "../scripts/render";
import { STACK_FILES } from "./support/stackFiles";

const ROOT = path.resolve(__dirname, "..");

describe("render", () => {
  for (const stack of STACK_FILES) {
    it(`writes schema-valid manifests of every object of ${stack}, one file each`, () => {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), `render-${stack}-`));
      const { files, problems } = renderToDirectory(stack, out);
      assert.deepEqual(problems, []);
      const s = loadStackSpec(stack);
      assert.equal(files.length, renderStack(s).length);
      const docs = files.map((f) => parse(fs.readFileSync(f, "utf8")));
      for (const d of docs) assert.deepEqual(schemaProblems(d), [], `${d.kind}/${d.metadata.name}`);
      for (const m of s.models) {
        const name = `${m.name}-${s.environment}`;
        for (const kind of [
          "Deployment",
          "Service",
          "NetworkPolicy",
          ...(s.monitoring.serviceMonitor ? ["ServiceMonitor"] : []),
          "PersistentVolumeClaim",
        ]) {
          assert.ok(
            docs.some((d) => d.kind === kind && d.metadata.name.startsWith(name)),
            `${kind} of ${name}`,
          );
        }
      }
      if (!s.monitoring.serviceMonitor && !s.monitoring.alerts) {
        // Without the Prometheus operator's CRDs (e.g. kind) such objects fail to apply.
        const crs = docs.filter((d) => d.apiVersion.startsWith("monitoring.coreos.com/"));
        assert.deepEqual(crs, [], "monitoring off: no Prometheus-operator objects");
      }
      assert.equal(
        docs[0].kind,
        "Namespace",
        "namespace first, so kubectl apply -f works in order",
      );
    });
  }

  it("never deletes files it did not write: a foreign non-empty --out is refused untouched", () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "render-foreign-"));
    fs.writeFileSync(path.join(out, "notes.txt"), "mine");
    assert.throws(() => renderToDirectory("development", out), RenderDirectoryError);
    assert.deepEqual(fs.readdirSync(out), ["notes.txt"]);
  });

  it("re-renders by removing only the files its index lists (never a path outside --out)", () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), "render-again-"));
    const out = path.join(parent, "out");
    const first = renderToDirectory("production", out).files.map((f) => path.basename(f));
    // A stale manifest of an earlier render, a user's file, and an index entry that escapes.
    fs.writeFileSync(path.join(out, "99-deployment-removed-model.yaml"), "stale");
    fs.writeFileSync(path.join(out, "README.md"), "mine");
    fs.writeFileSync(path.join(parent, "outside.yaml"), "mine");
    fs.appendFileSync(
      path.join(out, RENDER_INDEX),
      "99-deployment-removed-model.yaml\n../outside.yaml\n",
    );
    const second = renderToDirectory("development", out).files.map((f) => path.basename(f));
    assert.deepEqual(
      fs.readdirSync(out).sort(),
      [...second, RENDER_INDEX, "README.md"].sort(),
      "stale files of the previous render are gone, the user's file stays",
    );
    assert.ok(
      first.some((f) => !second.includes(f)),
      "production has files development has not",
    );
    assert.equal(fs.readFileSync(path.join(parent, "outside.yaml"), "utf8"), "mine");
  });

  it("rejects a manifest that breaks the Kubernetes schema", () => {
    const dep = buildModelDeployment(
      loadStackSpec("development"),
      loadStackSpec("development").models[0],
    );
    (dep.spec!.template.spec!.containers[0] as { ports: unknown }).ports = [
      { containerPort: "eight thousand" },
    ];
    const problems = schemaProblems(dep as unknown as Manifest);
    assert.equal(problems.length, 1);
    assert.match(problems[0], /^Deployment\/qwen2-5-1-5b-instruct-development: .*containerPort/);
  });

  it("runs as a command with --help, a clear error for an unknown stack, and exit codes", () => {
    const run = (...args: string[]) => {
      try {
        return {
          code: 0,
          out: execFileSync("npx", ["ts-node", "--transpile-only", "scripts/render.ts", ...args], {
            cwd: ROOT,
            encoding: "utf8",
            stdio: "pipe",
          }),
        };
      } catch (e) {
        const err = e as { status: number; stderr: string; stdout: string };
        return { code: err.status, out: err.stdout + err.stderr };
      }
    };
    assert.match(run("--help").out, /--stack <name>/);
    assert.ok(run("--help").out.includes(EXIT_HELP));
    const bad = run("--stack", "qa");
    assert.equal(bad.code, EXIT.unavailable, "no such stack: could not read the stack");
    assert.match(bad.out, /no stack 'qa'.*stacks here: ci, development, production, staging/);
    // An invalid config is a usage error naming the config path (a stack file of its own).
    const invalidFile = path.join(ROOT, "Pulumi.render-invalid.yaml");
    fs.writeFileSync(
      invalidFile,
      fs
        .readFileSync(path.join(ROOT, "Pulumi.development.yaml"), "utf8")
        .replace(/^(\s*(?:vllm-fleet:)?gpuQuota:).*$/m, "$1 -1"),
    );
    try {
      const invalid = run("--stack", "render-invalid");
      assert.equal(invalid.code, EXIT.usage, invalid.out);
      assert.match(invalid.out, /gpuQuota/);
    } finally {
      fs.rmSync(invalidFile);
    }
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "render-cli-"));
    const ok = run("--stack", "production", "--out", out);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /wrote \d+ manifests for stack 'production'/);
    const foreign = fs.mkdtempSync(path.join(os.tmpdir(), "render-cli-foreign-"));
    fs.writeFileSync(path.join(foreign, "keep.txt"), "mine");
    const refused = run("--stack", "production", "--out", foreign);
    assert.equal(refused.code, EXIT.usage, refused.out);
    assert.match(refused.out, /not empty and was not written by render/);
    assert.deepEqual(fs.readdirSync(foreign), ["keep.txt"]);
    const text = fs
      .readdirSync(out)
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => fs.readFileSync(path.join(out, f), "utf8"))
      .join("\n");
    assert.doesNotMatch(text, /password/i, "no credentials in rendered manifests");
  });
});
