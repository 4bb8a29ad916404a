// The workspace packages' boundaries: ESLint's no-restricted-imports (eslint.config.mjs) keeps
// every import of the registry on its public entry, and the program, components, scripts and
// bench off the router's and the policy pack's modules. Linted through ESLint's own API, so a
// rule that stops firing fails here, not in review.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ESLint } from "eslint";

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
    ["components/spec/probe.ts", "@vllm-fleet/router/src/routing/naming"],
    ["scripts/probe.ts", "@vllm-fleet/router/routing/config"],
    ["components/manifests/probe.ts", "../../router/src/routing/naming"],
  ])
    it(`refuses ${specifier} in ${file}`, async () => {
      assert.equal(await restricted(file, specifier), true);
    });

  for (const [file, specifier] of [
    ["components/resources/probe.ts", "@vllm-fleet/registry"],
    ["router/src/probe.ts", "@vllm-fleet/registry"],
    ["components/spec/probe.ts", "@vllm-fleet/policies/kube"],
    ["components/spec/probe.ts", "@vllm-fleet/router/routing"],
    ["scripts/probe.ts", "@vllm-fleet/router/routing"],
    ["registry/src/probe.ts", "./types"],
    // A package's own tests may exercise its modules.
    ["tests/probe.ts", "../router/src/resolver"],
  ])
    it(`allows ${specifier} in ${file}`, async () => {
      assert.equal(await restricted(file, specifier), false);
    });

  // Node picks the first matching condition in object order (nodejs.org/api/packages.html#conditional-exports).
  for (const [pkgDir, subpath, compiled, source] of [
    ["registry", ".", "./dist/index.js", "./src/index.ts"],
    ["router", "./routing", "./dist/routing/naming.js", "./src/routing/naming.ts"],
  ])
    it(`${pkgDir}'s exports map ${subpath}: compiled JavaScript under vllm-compiled (the image), TypeScript otherwise`, () => {
      const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, pkgDir, "package.json"), "utf8")) as {
        name: string;
        exports: Record<string, Record<string, string>>;
      };
      const entry = pkg.exports[subpath];
      assert.deepEqual(Object.keys(entry), ["vllm-compiled", "types", "default"]);
      assert.equal(entry["vllm-compiled"], compiled);
      assert.equal(entry.types, source);
      assert.equal(entry.default, source);
      const specifier = path.posix.join(pkg.name, subpath);
      assert.equal(require.resolve(specifier), path.join(ROOT, pkgDir, source));
    });
});
