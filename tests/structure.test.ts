// The workspace packages' boundaries: ESLint's no-restricted-imports (eslint.config.mjs) keeps
// every import of the registry on its public entry, and the program, components, scripts and
// bench off the router's and the policy pack's modules. Linted through ESLint's own API, so a
// rule that stops firing fails here, not in review.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ESLint } from "eslint";
import { ROUTER_PORT } from "@vllm-fleet/router/contract";
import { buildRouter } from "../scripts/lib/routerProcess";

const ROOT = path.resolve(__dirname, "..");

async function restricted(file: string, specifier: string): Promise<boolean> {
  const eslint = new ESLint({ cwd: ROOT });
  const [result] = await eslint.lintText(`export { x } from "${specifier}";\n`, {
    filePath: path.join(ROOT, file),
  });
  return result.messages.some((m) => m.ruleId === "no-restricted-imports");
}

describe("workspace boundaries", function () {
  this.timeout(60000);

  for (const [file, specifier] of [
    ["components/spec/probe.ts", "../../registry/src/types"],
    ["scripts/lib/probe.ts", "../../registry/src"],
    ["router/src/probe.ts", "../../registry/src/queries"],
    ["tests/probe.ts", "../registry/src/cache"],
    ["bench/probe.ts", "@vllm-fleet/registry/src/types"],
    ["components/resources/probe.ts", "../../router/src/upstream"],
    ["scripts/probe.ts", "../policies/rules"],
    ["index.ts", "./router/src/app"],
    // The router's contract only through its package entry; nothing else of the router.
    ["components/manifests/probe.ts", "../../router/src/contract"],
    ["scripts/probe.ts", "@vllm-fleet/router/src/contract"],
    ["bench/probe.ts", "@vllm-fleet/router/contract/x"],
    ["index.ts", "@vllm-fleet/router/metrics"],
    ["components/spec/probe.ts", "@vllm-fleet/router/src/routing/naming"],
    ["scripts/probe.ts", "@vllm-fleet/router/routing/config"],
    ["components/manifests/probe.ts", "../../router/src/routing/naming"],
  ])
    it(`refuses ${specifier} in ${file}`, async () => {
      assert.equal(await restricted(file, specifier), true);
    });

  for (const [file, specifier] of [
    ["components/spec/probe.ts", "@vllm-fleet/registry"],
    ["router/src/probe.ts", "@vllm-fleet/registry"],
    ["components/resources/probe.ts", "@vllm-fleet/policies/kube"],
    ["components/manifests/probe.ts", "@vllm-fleet/router/contract"],
    ["scripts/lib/probe.ts", "@vllm-fleet/router/contract"],
    ["bench/probe.ts", "@vllm-fleet/router/contract"],
    ["router/src/probe.ts", "./contract"],
    ["components/spec/probe.ts", "@vllm-fleet/router/routing"],
    ["scripts/probe.ts", "@vllm-fleet/router/routing"],
    ["registry/src/probe.ts", "./types"],
    // A package's own tests may exercise its modules.
    ["tests/probe.ts", "../router/src/resolver"],
  ])
    it(`allows ${specifier} in ${file}`, async () => {
      assert.equal(await restricted(file, specifier), false);
    });

  // Node picks the first matching condition in object order
  // (nodejs.org/api/packages.html#conditional-exports): the image and the built router run with
  // --conditions=vllm-compiled and get the compiled entries; ts-node and tsc get the sources.
  for (const [pkg, subpath, source, compiled] of [
    ["registry", ".", "./src/index.ts", "./dist/index.js"],
    ["router", "./contract", "./src/contract.ts", "./dist/contract.js"],
    ["router", "./routing", "./src/routing/naming.ts", "./dist/routing/naming.js"],
  ])
    it(`@vllm-fleet/${pkg}'s exports map: ${subpath} compiled under vllm-compiled (the image), TypeScript otherwise`, () => {
      const json = JSON.parse(fs.readFileSync(path.join(ROOT, pkg, "package.json"), "utf8")) as {
        exports: Record<string, Record<string, string>>;
      };
      const entry = json.exports[subpath];
      assert.deepEqual(Object.keys(entry), ["vllm-compiled", "types", "default"]);
      assert.deepEqual(
        [entry["vllm-compiled"], entry.types, entry.default],
        [compiled, source, source],
      );
      assert.ok(fs.existsSync(path.join(ROOT, pkg, source)));
      const specifier = `@vllm-fleet/${pkg}${subpath.slice(1)}`;
      assert.equal(require.resolve(specifier), path.join(ROOT, pkg, source));
    });

  it("the router's contract loads compiled under vllm-compiled, as the built router and the image do", async function () {
    this.timeout(120000);
    await buildRouter();
    const script = `const c = require("@vllm-fleet/router/contract");
      process.stdout.write(JSON.stringify([require.resolve("@vllm-fleet/router/contract"), c.ROUTER_PORT]));`;
    const out = execFileSync(process.execPath, ["--conditions=vllm-compiled", "-e", script], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.deepEqual(JSON.parse(out), [path.join(ROOT, "router/dist/contract.js"), ROUTER_PORT]);
  });
});
