// The stacks of this project: one Pulumi.<stack>.yaml each, so a new stack file is tested as
// soon as it exists.
import * as fs from "node:fs";
import * as path from "node:path";
import { rawConfig, stackFileConfig } from "../../components/spec";

const ROOT = path.resolve(__dirname, "../..");

/** Stack names, sorted. */
export const STACK_FILES: string[] = fs
  .readdirSync(ROOT)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => Boolean(s))
  .sort();

/** A stack file's raw config (Pulumi.yaml defaults merged), to edit before parseStackConfig. */
export function rawStackFile(stack: string): Record<string, unknown> {
  return rawConfig(stackFileConfig(stack));
}
