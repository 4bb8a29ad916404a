// The stand-in `pulumi` (tests/fixtures/pulumi) for tests of the CLI-driven scripts: a state
// directory per test, an env whose PATH finds the stand-in first, and readers of its records.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
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

export interface PulumiStandIn {
  dir: string;
  /** PATH with the stand-in first, and its state directory. */
  env: Record<string, string>;
  setConfig(stack: string, raw: Record<string, unknown>): void;
  config(stack: string): ConfigJson;
  setOutputs(stack: string, outputs: Record<string, unknown>): void;
  setHistory(stack: string, history: UpdateInfo[]): void;
  history(stack: string): UpdateInfo[];
  /** Every invocation so far, as argument lists. */
  calls(): string[][];
  remove(): void;
}

export function createPulumiStandIn(): PulumiStandIn {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-standin-"));
  const file = (kind: string, stack: string) => path.join(dir, `${kind}.${stack}.json`);
  const write = (kind: string, stack: string, v: unknown) =>
    fs.writeFileSync(file(kind, stack), JSON.stringify(v, null, 2));
  const read = <T>(kind: string, stack: string): T =>
    JSON.parse(fs.readFileSync(file(kind, stack), "utf8")) as T;
  return {
    dir,
    env: {
      PATH: `${FIXTURES}${path.delimiter}${process.env.PATH ?? ""}`,
      PULUMI_STANDIN_DIR: dir,
    },
    setConfig: (stack, raw) => write("config", stack, configJson(raw)),
    config: (stack) => read<ConfigJson>("config", stack),
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
