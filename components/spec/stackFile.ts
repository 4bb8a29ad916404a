// Reads a stack's config the way the Pulumi CLI does: Pulumi.yaml defaults, then
// Pulumi.<stack>.yaml on top. Used offline (render, tests, operator scripts).
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { parseStackConfig, PROJECT, PROJECT_DIR, readStackConfig, StackSpec } from "./config";

/** Secure values in a stack file are ciphertext the CLI decrypts; offline we only know they are set. */
export const SECRET_PLACEHOLDER = "[secret]";

/** Project-prefixed config (`vllm-fleet:releases` -> JSON text), as `pulumi config --json` would give. */
export function loadStackConfig(
  stack: string,
  dir = PROJECT_DIR,
  project = PROJECT,
): Record<string, string> {
  const stackFile = path.join(dir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(stackFile)) {
    const known = fs
      .readdirSync(dir)
      .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
      .filter(Boolean);
    throw new Error(
      `no stack '${stack}': ${stackFile} does not exist (stacks here: ${known.join(", ")})`,
    );
  }
  const projectFile = parse(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8")) as {
    config?: Record<string, { default?: unknown; value?: unknown } | unknown>;
  };
  const out: Record<string, string> = {};
  for (const [key, decl] of Object.entries(projectFile.config ?? {})) {
    const d = decl as { default?: unknown; value?: unknown };
    const value = typeof decl === "object" && decl !== null ? (d.default ?? d.value) : decl;
    if (value !== undefined) out[`${project}:${key}`] = encode(value);
  }
  const stackCfg =
    (parse(fs.readFileSync(stackFile, "utf8")) as { config?: Record<string, unknown> })?.config ??
    {};
  for (const [key, value] of Object.entries(stackCfg)) {
    const full = key.includes(":") ? key : `${project}:${key}`;
    const secure = typeof value === "object" && value !== null && "secure" in value;
    out[full] = secure ? SECRET_PLACEHOLDER : encode(value);
  }
  return out;
}

function encode(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A stack file's validated config, bound to the stack's environment (what offline tools deploy). */
export function loadStackSpec(stack: string, dir?: string): StackSpec {
  return parseStackConfig(readStackConfig(loadStackConfig(stack, dir)), { stack });
}
