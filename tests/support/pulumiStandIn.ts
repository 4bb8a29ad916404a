// The stand-in `pulumi` (tests/fixtures/pulumi) for tests of the CLI-driven scripts: a state
// directory per test, an env whose PATH finds the stand-in first, and readers of its records.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse, stringify } from "yaml";
import type { ConfigJson, UpdateInfo } from "../../scripts/lib/pulumi";

const FIXTURES = path.resolve(__dirname, "../fixtures");

/** Raw stack config (`releases`, `capacity`, ...) in `pulumi config --json` form. */
export function configJson(raw: Record<string, unknown>): ConfigJson {
  return Object.fromEntries(
    Object.entries(raw).map(([k, v]) => [
      `vllm-fleet:${k}`,
      typeof v === "string"
        ? { value: v, secret: false }
        : { value: JSON.stringify(v), objectValue: v, secret: false },
    ]),
  );
}

/** A secret stack output as the stand-in keeps it (the SDK's wire form). */
export function secretOutput(value: unknown): Record<string, unknown> {
  return { [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value };
}

export interface PulumiStandIn {
  dir: string;
  /** With stack files: the project directory holding Pulumi.<stack>.yaml (the CLI's cwd). */
  projectDir?: string;
  /** PATH with the stand-in first, and its state directory. */
  env: Record<string, string>;
  setConfig(stack: string, raw: Record<string, unknown>): void;
  config(stack: string): ConfigJson;
  /** Outputs of the stack; wrap secrets with secretOutput(). */
  setOutputs(stack: string, outputs: Record<string, unknown>): void;
  setHistory(stack: string, history: UpdateInfo[]): void;
  history(stack: string): UpdateInfo[];
  /** Every invocation so far, as argument lists. */
  calls(): string[][];
  remove(): void;
}

/**
 * A stand-in with its own state directory. With `projectDir`, stack config lives where the real
 * CLI keeps it, in `<projectDir>/Pulumi.<stack>.yaml`, and the CLI runs there.
 */
export function createPulumiStandIn(projectDir?: string): PulumiStandIn {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-standin-"));
  const file = (kind: string, stack: string) => path.join(dir, `${kind}.${stack}.json`);
  const write = (kind: string, stack: string, v: unknown) =>
    fs.writeFileSync(file(kind, stack), JSON.stringify(v, null, 2));
  const read = <T>(kind: string, stack: string): T =>
    JSON.parse(fs.readFileSync(file(kind, stack), "utf8")) as T;
  const stackFile = (stack: string) => path.join(projectDir!, `Pulumi.${stack}.yaml`);
  return {
    dir,
    projectDir,
    env: {
      PATH: `${FIXTURES}${path.delimiter}${process.env.PATH ?? ""}`,
      PULUMI_STANDIN_DIR: dir,
      ...(projectDir ? { PULUMI_STANDIN_STACK_FILES: "1" } : {}),
    },
    setConfig: (stack, raw) =>
      projectDir
        ? fs.writeFileSync(
            stackFile(stack),
            stringify({
              config: Object.fromEntries(
                Object.entries(raw).map(([k, v]) => [`vllm-fleet:${k}`, v]),
              ),
            }),
          )
        : write("config", stack, configJson(raw)),
    config: (stack) =>
      projectDir
        ? configJson(
            Object.fromEntries(
              Object.entries(
                (parse(fs.readFileSync(stackFile(stack), "utf8")) as { config: object }).config,
              ).map(([k, v]) => [k.replace(/^vllm-fleet:/, ""), v as unknown]),
            ),
          )
        : read<ConfigJson>("config", stack),
    setOutputs: (stack, outputs) => write("outputs", stack, outputs),
    setHistory: (stack, history) => write("history", stack, history),
    history: (stack) => read<UpdateInfo[]>("history", stack),
    calls: () => {
      const f = path.join(dir, "calls.jsonl");
      if (!fs.existsSync(f)) return [];
      return fs
        .readFileSync(f, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as string[]);
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
