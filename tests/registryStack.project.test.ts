// registry-stack/ is a Pulumi project of its own that runs on the repository root's
// node_modules. The nodejs language host finds the SDK with `node -e require.resolve(...)` run
// in the program's directory (pulumi/pulumi, sdk/nodejs/cmd/pulumi-language-nodejs/main.go,
// locateModule), the dynamic-provider plugin does the same
// (sdk/nodejs/dist/pulumi-resource-pulumi-nodejs), and cmd/run loads ./tsconfig.json of that
// directory for ts-node (sdk/nodejs/cmd/run/run.ts). Node resolves modules upwards, so the root's
// node_modules serve both projects.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import ts from "typescript";
import { parse } from "yaml";
import { MIGRATION_SET, registryMigrationsProvider } from "../components/resources";
import { LATEST_VERSION, currentVersion } from "@vllm-fleet/registry";
import { runHost, serializeToFile } from "./support/dynamicProviderHost";
import { createTestDatabase } from "./support/services";

const DIR = path.resolve(__dirname, "../registry-stack");

describe("registry-stack project", () => {
  it("is the vllm-registry nodejs project with a TypeScript entry point", () => {
    const project = parse(fs.readFileSync(path.join(DIR, "Pulumi.yaml"), "utf8"));
    assert.equal(project.name, "vllm-registry");
    assert.deepEqual(project.runtime, { name: "nodejs", options: { typescript: true } });
    assert.ok(fs.existsSync(path.join(DIR, project.main)), `${project.main} exists`);
    assert.ok(fs.existsSync(path.join(DIR, "Pulumi.shared.yaml")));
    assert.ok(fs.existsSync(path.join(DIR, "Pulumi.ci.yaml")));
  });

  it("resolves the SDK, the dynamic-provider host and pg from its directory", () => {
    for (const mod of [
      "@pulumi/pulumi/cmd/run",
      "@pulumi/pulumi/cmd/dynamic-provider",
      "@pulumi/postgresql",
      "pg",
    ]) {
      const resolved = execFileSync(
        process.execPath,
        ["-e", `console.log(require.resolve(${JSON.stringify(mod)}))`],
        { cwd: DIR, encoding: "utf8" },
      ).trim();
      assert.ok(resolved.startsWith(path.resolve(DIR, "../node_modules/")), `${mod}: ${resolved}`);
    }
  });

  it("gives ts-node the root's compiler options through its own tsconfig.json", () => {
    const parsed = ts.getParsedCommandLineOfConfigFile(
      path.join(DIR, "tsconfig.json"),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)) },
    )!;
    assert.deepEqual(parsed.errors, []);
    assert.equal(parsed.options.module, ts.ModuleKind.Node16);
    assert.equal(parsed.options.esModuleInterop, true);
    assert.equal(parsed.options.strict, true);
    assert.deepEqual(parsed.fileNames, [path.join(DIR, "index.ts")]);
  });

  it("runs its serialized migrations provider from its directory", async () => {
    const url = await createTestDatabase("reg_project");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reg-project-"));
    try {
      const file = await serializeToFile(registryMigrationsProvider, dir);
      const { steps } = await runHost(
        {
          PROVIDER_FILE: file,
          INPUTS: JSON.stringify({ connectionString: url, migrations: MIGRATION_SET }),
          STEPS: "create",
        },
        DIR,
      );
      assert.equal((steps[0].outs as { version: number }).version, LATEST_VERSION);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const db = new Client({ connectionString: url });
    await db.connect();
    try {
      assert.equal(await currentVersion(db), LATEST_VERSION);
    } finally {
      await db.end();
    }
  });
});
