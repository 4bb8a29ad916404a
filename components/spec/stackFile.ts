// Loading a stack's config: from its files the way the Pulumi CLI merges them (Pulumi.yaml
// defaults, then Pulumi.<stack>.yaml on top), or from the config the CLI reports. Offline
// readers (render, tests, operator scripts) use loadStackSpec; a running program uses
// loadProgramConfig (components/resources/programConfig.ts).
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { parseStackConfig, PROJECT, PROJECT_DIR, rawConfig, StackSpec } from "./config";

/** Secure values in a stack file are ciphertext the CLI decrypts; offline we only know they are set. */
export const SECRET_PLACEHOLDER = "[secret]";

/**
 * A stack's config as the CLI hands it to a program, read from the stack files:
 * project-prefixed keys, values as text (`vllm-fleet:releases` -> JSON text), like
 * `pulumi.runtime.allConfig()`. What Pulumi's mocks need, since they do not read the files.
 */
export function stackFileConfig(
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

/** Where loadStackSpec reads a stack's config from. */
export interface StackSource {
  /** Project directory holding Pulumi.yaml and Pulumi.<stack>.yaml (default: this project's). */
  dir?: string;
  /**
   * The stack's config as the CLI reports it (`pulumi config --json` as prefixed key -> text,
   * secrets left out); when given, the files are not read.
   */
  config?: Record<string, string>;
}

/**
 * A stack's validated config, bound to the stack's environment: the one way offline tools
 * (render, scripts, tests) load a stack. Throws StackConfigError listing every problem.
 */
export function loadStackSpec(stack: string, source: StackSource = {}): StackSpec {
  const config = source.config ?? stackFileConfig(stack, source.dir);
  return parseStackConfig(rawConfig(config), { stack });
}
