// Config of a running Pulumi program, validated before anything is created.
import * as pulumi from "@pulumi/pulumi";
import { rawConfig, StackConfigError } from "../spec";

/** Parses the running stack's config of `project` (raw, and all of it as Pulumi holds it); invalid config fails the program. */
export function loadProgramConfig<T>(
  parse: (raw: Record<string, unknown>, all: Record<string, string>) => T,
  project: string,
): T {
  try {
    const all = pulumi.runtime.allConfig();
    return parse(rawConfig(all, project), all);
  } catch (e) {
    // RunError prints the message without a stack trace; nothing has been created yet.
    if (e instanceof StackConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
}
