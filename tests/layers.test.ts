// components/ is layered: spec <- manifests <- resources. The spec and manifests layers are
// what render, the scripts and the policy tests load offline, so they must not pull in the
// Pulumi SDK (and with it the kubernetes, postgresql and random providers' SDKs). ESLint keeps
// imports in their layer (eslint.config.mjs); the module cache proves what actually loads.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { ESLint } from "eslint";

const ROOT = path.resolve(__dirname, "..");
const RULE = "no-restricted-imports";

/** The `no-restricted-imports` messages ESLint reports for `code` as if it were file `file`. */
async function restricted(file: string, code: string): Promise<string[]> {
  const [result] = await new ESLint({ cwd: ROOT }).lintText(code, { filePath: file });
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

/** The @pulumi packages a fresh Node process has loaded after requiring `modules`. */
function pulumiPackagesLoadedBy(...modules: string[]): string[] {
  const script = `
    require("ts-node").register({ transpileOnly: true });
    for (const m of ${JSON.stringify(modules)}) require(require("node:path").resolve(m));
    const loaded = Object.keys(require.cache)
      .map((k) => /node_modules[\\\\/](@pulumi[\\\\/][^\\\\/]+)/.exec(k)?.[1])
      .filter(Boolean);
    console.log(JSON.stringify([...new Set(loaded)].sort()));`;
  return JSON.parse(
    execFileSync(process.execPath, ["-e", script], { cwd: ROOT, encoding: "utf8" }),
  );
}

describe("components layers", () => {
  it("eslint.config.mjs forbids the Pulumi SDK in spec and manifests, and only there", async () => {
    const eslint = new ESLint({ cwd: ROOT });
    for (const layer of ["spec", "manifests"]) {
      const config = await eslint.calculateConfigForFile(`components/${layer}/x.ts`);
      assert.equal(config.rules?.[RULE]?.[0], 2, `${RULE} is an error in components/${layer}`);
    }
    const snippet = `import * as k8s from "@pulumi/kubernetes";\nexport const p = k8s;\n`;
    for (const file of ["components/manifests/probe.ts", "components/spec/probe.ts"]) {
      const messages = await restricted(file, snippet);
      assert.equal(messages.length, 1, file);
      assert.match(messages[0], /no Pulumi SDK/);
    }
    const typeOnly = `import type { Output } from "@pulumi/pulumi";\nexport type O = Output<string>;\n`;
    assert.equal((await restricted("components/manifests/probe.ts", typeOnly)).length, 1);
    assert.deepEqual(await restricted("components/resources/probe.ts", snippet), []);
  });

  it("keeps imports going down the layers, through each layer's index.ts", async () => {
    const cases: [file: string, code: string, fires: RegExp | undefined][] = [
      ["components/manifests/probe.ts", `import { RouterService } from "../resources";`, /lower/],
      ["components/spec/probe.ts", `import { renderStack } from "../manifests";`, /lower/],
      ["components/manifests/probe.ts", `import { PROJECT } from "../spec/config";`, /index/],
      [
        "components/resources/probe.ts",
        `import { renderStack } from "../manifests/renderStack";`,
        /index/,
      ],
      [
        "scripts/probe.ts",
        `import { renderStack } from "../components/manifests/renderStack";`,
        /index/,
      ],
      ["components/resources/probe.ts", `import { renderStack } from "../manifests";`, undefined],
      ["scripts/probe.ts", `import { renderStack } from "../components/manifests";`, undefined],
    ];
    for (const [file, code, fires] of cases) {
      const messages = await restricted(file, `${code}\nexport const x = 1;\n`);
      if (fires) assert.match(messages.join("\n"), fires, `${file}: ${code}`);
      else assert.deepEqual(messages, [], `${file}: ${code}`);
    }
  });

  it("render's path (spec and manifests) loads no Pulumi SDK; the resources layer does", () => {
    assert.deepEqual(
      pulumiPackagesLoadedBy("components/spec", "components/manifests", "scripts/render.ts"),
      [],
    );
    // The probe sees what it should: the resources layer is Pulumi through and through.
    assert.deepEqual(pulumiPackagesLoadedBy("components/resources"), [
      "@pulumi/docker-build",
      "@pulumi/kubernetes",
      "@pulumi/postgresql",
      "@pulumi/pulumi",
      "@pulumi/random",
    ]);
  });
});
