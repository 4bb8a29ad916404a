import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { parseStackConfig, readStackConfig } from "../components/config";
import type { Manifest } from "../components/manifest";
import { schemaProblems } from "../components/manifestSchema";
import { buildModelDeployment } from "../components/modelManifests";
import { renderStack } from "../components/renderStack";
import { loadStackConfig } from "../components/stackFile";
import { renderToDirectory } from "../scripts/render";

const ROOT = path.resolve(__dirname, "..");
const spec = (stack: string) => parseStackConfig(readStackConfig(loadStackConfig(stack)));

describe("render", () => {
  for (const stack of ["development", "staging", "production"]) {
    it(`writes schema-valid manifests of every object of ${stack}, one file each`, () => {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), `render-${stack}-`));
      const { files, problems } = renderToDirectory(stack, out);
      assert.deepEqual(problems, []);
      const s = spec(stack);
      assert.equal(files.length, renderStack(s).length);
      const docs = files.map((f) => parse(fs.readFileSync(f, "utf8")));
      for (const d of docs) assert.deepEqual(schemaProblems(d), [], `${d.kind}/${d.metadata.name}`);
      for (const m of s.models) {
        const name = `${m.name}-${stack}`;
        for (const kind of [
          "Deployment",
          "Service",
          "NetworkPolicy",
          "ServiceMonitor",
          "PersistentVolumeClaim",
        ]) {
          assert.ok(
            docs.some((d) => d.kind === kind && d.metadata.name.startsWith(name)),
            `${kind} of ${name}`,
          );
        }
      }
      assert.equal(
        docs[0].kind,
        "Namespace",
        "namespace first, so kubectl apply -f works in order",
      );
    });
  }

  it("rejects a manifest that breaks the Kubernetes schema", () => {
    const dep = buildModelDeployment(spec("development"), spec("development").models[0]);
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
    const bad = run("--stack", "qa");
    assert.equal(bad.code, 1);
    assert.match(bad.out, /no stack 'qa'.*stacks here: development, production, staging/);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "render-cli-"));
    const ok = run("--stack", "production", "--out", out);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /wrote \d+ manifests for stack 'production'/);
    const text = fs
      .readdirSync(out)
      .map((f) => fs.readFileSync(path.join(out, f), "utf8"))
      .join("\n");
    assert.doesNotMatch(text, /password/i, "no credentials in rendered manifests");
  });
});
