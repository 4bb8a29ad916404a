// Runs a dynamic provider as the Pulumi engine does: serialized with the SDK's closure
// serializer, loaded with require-from-string in a fresh plain-node process (no ts-node).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

const ROOT = path.resolve(__dirname, "../..");

// What the engine's dynamic-provider host does with the `__provider` property, then the
// provider calls named in STEPS: "create", "create,delete" (feeding create's outputs on), or
// "delete" (of the state given as INPUTS, with id ID).
const HOST = `
const requireFromString = require("require-from-string");
const text = require("fs").readFileSync(process.env.PROVIDER_FILE, "utf8");
const provider = requireFromString(text).handler();
const inputs = JSON.parse(process.env.INPUTS);
const steps = process.env.STEPS.split(",");
(async () => {
  let id = process.env.ID;
  let state = inputs;
  if (steps.includes("create")) {
    const created = await provider.create(inputs);
    const { connectionString, ...shown } = created.outs;
    console.log(JSON.stringify({ step: "create", id: created.id, outs: shown }));
    id = created.id;
    state = created.outs;
  }
  if (steps.includes("delete")) {
    await provider.delete(id, state);
    console.log(JSON.stringify({ step: "delete" }));
  }
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

/** Writes the serialized provider to `dir`; fails if serialization captured a secret. */
export async function serializeToFile(
  provider: pulumi.dynamic.ResourceProvider,
  dir: string,
): Promise<string> {
  const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  assert.equal(sf.containsSecrets, false);
  const file = path.join(dir, "provider.js");
  fs.writeFileSync(file, sf.text);
  return file;
}

/** Runs the host; resolves with the JSON lines it printed, rejects with its stderr. */
export function runHost(
  env: Record<string, string>,
  cwd = ROOT,
): Promise<{ steps: Record<string, unknown>[]; output: string }> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ["-e", HOST],
      // cwd = the Pulumi project's directory: the engine runs providers there, and
      // require-from-string resolves `require("pg")` from it.
      { cwd, env: { PATH: process.env.PATH ?? "", ...env }, timeout: 30000 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`${err.message}\n${stderr}`))
          : resolve({
              steps: stdout
                .trim()
                .split("\n")
                .map((l) => JSON.parse(l)),
              output: stdout + stderr,
            }),
    ),
  );
}
