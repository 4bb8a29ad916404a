// The Pulumi CLI as the operator scripts drive it: JSON commands are captured and parsed,
// preview/up stream their output through. Every failure names the command that failed.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** A config value as `pulumi config --json` and `pulumi stack history --json` print it. */
export interface ConfigValueJson {
  value?: string;
  objectValue?: unknown;
  secret: boolean;
}

export type ConfigJson = Record<string, ConfigValueJson>;

/** One entry of `pulumi stack history --json`. */
export interface UpdateInfo {
  version: number;
  kind: string;
  startTime: string;
  endTime?: string;
  message?: string;
  result?: string;
  config?: ConfigJson;
  resourceChanges?: Record<string, number>;
}

export interface PulumiResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Whether a failed command failed for want of a login: the CLI exits 3
 * (ExitAuthenticationError, pulumi/pulumi pkg/cmd/pulumi/cmd/exit_codes.go) with
 * "this command requires logging in; try running `pulumi login` first" or, non-interactively
 * without a token, "PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI
 * sessions" (pkg/backend/backenderr/backenderr.go); older CLIs exit 255 with the same text or
 * "failed to log in" / "no credentials".
 */
export function loginFailed(result: PulumiResult): boolean {
  return (
    result.code === 3 ||
    /requires logging in|must be set for login|failed to log in|no credentials/i.test(result.stderr)
  );
}

/** A `pulumi` command that exited non-zero (or could not start). */
export class PulumiCommandError extends Error {
  constructor(
    readonly args: string[],
    readonly result: PulumiResult,
  ) {
    const detail = (result.stderr || result.stdout).trim().split("\n").slice(-5).join("\n  ");
    const login = loginFailed(result)
      ? "\nNot logged in to the stack's backend: run `pulumi login` (Pulumi Cloud: or set PULUMI_ACCESS_TOKEN; a self-managed backend: PULUMI_BACKEND_URL)."
      : "";
    super(
      `\`pulumi ${args.join(" ")}\` failed with exit code ${result.code}${detail ? `:\n  ${detail}` : ""}${login}`,
    );
    this.name = "PulumiCommandError";
  }
}

export interface PulumiOptions {
  /** Environment of the child (PATH decides which `pulumi` runs). */
  env: Record<string, string | undefined>;
  /** Receives the output of streamed commands (preview, up) line by line. */
  onOutput?: (line: string) => void;
  /** Working directory (the Pulumi project). */
  cwd?: string;
}

export class PulumiCli {
  constructor(private readonly options: PulumiOptions) {}

  /** Runs `pulumi <args>`; output is captured, and streamed to onOutput when `stream`. */
  async run(args: string[], stream = false): Promise<PulumiResult> {
    const child = spawn("pulumi", [...args, "--non-interactive"], {
      cwd: this.options.cwd,
      env: this.options.env as NodeJS.ProcessEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const forward = (chunk: string, buf: { rest: string }) => {
      if (!stream || !this.options.onOutput) return;
      buf.rest += chunk;
      const lines = buf.rest.split("\n");
      buf.rest = lines.pop() ?? "";
      lines.forEach((l) => this.options.onOutput!(l));
    };
    const outBuf = { rest: "" };
    const errBuf = { rest: "" };
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      forward(d, outBuf);
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      forward(d, errBuf);
    });
    const code = await new Promise<number>((resolve) => {
      child.once("error", (e: NodeJS.ErrnoException) => {
        stderr +=
          e.code === "ENOENT"
            ? "the pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/install/) and run `pulumi login`"
            : e.message;
        resolve(127);
      });
      child.once("close", (c) => resolve(c ?? 1));
    });
    for (const rest of [outBuf.rest, errBuf.rest])
      if (stream && rest) this.options.onOutput?.(rest);
    const result = { code, stdout, stderr };
    if (code !== 0) throw new PulumiCommandError(args, result);
    return result;
  }

  private async json<T>(args: string[]): Promise<T> {
    const { stdout } = await this.run(args);
    try {
      return JSON.parse(stdout) as T;
    } catch {
      throw new Error(`\`pulumi ${args.join(" ")}\` did not print JSON: ${stdout.slice(0, 200)}`);
    }
  }

  /** The stack's config, as `pulumi config --json` prints it (secrets blinded). */
  config(stack: string): Promise<ConfigJson> {
    return this.json(["config", "--json", "--stack", stack]);
  }

  /** Recent updates of the stack, newest first. */
  history(stack: string, pageSize = 10): Promise<UpdateInfo[]> {
    return this.json([
      "stack",
      "history",
      "--json",
      "--stack",
      stack,
      "--page-size",
      String(pageSize),
    ]);
  }

  /** The stack's outputs (secrets blinded). */
  outputs(stack: string): Promise<Record<string, unknown>> {
    return this.json(["stack", "output", "--json", "--stack", stack]);
  }

  /**
   * One output with its secrets in plain text: `pulumi stack output <name> --show-secrets --json
   * --stack <stack>` prints that property's value as JSON; without --show-secrets a secret
   * prints as "[secret]", and a missing output fails with "current stack does not have output
   * property" (pulumi/pulumi pkg/cmd/pulumi/stack/stack_output.go, pkg/backend/display/json.go
   * massagePropertyValue). The value never reaches an error message.
   */
  async secretOutput(stack: string, name: string): Promise<unknown> {
    const args = ["stack", "output", name, "--show-secrets", "--json", "--stack", stack];
    let stdout: string;
    try {
      ({ stdout } = await this.run(args));
    } catch (e) {
      if (e instanceof PulumiCommandError)
        throw new PulumiCommandError(args, { ...e.result, stdout: "" });
      throw e;
    }
    try {
      return JSON.parse(stdout) as unknown;
    } catch {
      throw new Error(`\`pulumi ${args.join(" ")}\` did not print JSON`);
    }
  }

  /**
   * Copies one key from one stack's config to another's: `-s` is the source, `--dest` the
   * target, `--path` reads the key as a property path (pulumi/pulumi
   * pkg/cmd/pulumi/config/config.go, `config copy`). It writes the target's Pulumi.<stack>.yaml.
   */
  configCopy(from: string, to: string, key: string): Promise<PulumiResult> {
    return this.run(["config", "cp", "--stack", from, "--dest", to, "--path", key]);
  }

  /** Sets one value at a property path (`router.image`): `pulumi config set --path`. */
  configSetPath(stack: string, keyPath: string, value: string): Promise<PulumiResult> {
    return this.run(["config", "set", "--stack", stack, "--path", keyPath, value]);
  }

  /** Sets config values from JSON in `pulumi config --json` form. */
  configSetAll(stack: string, values: ConfigJson): Promise<PulumiResult> {
    return this.run(["config", "set-all", "--stack", stack, "--json", JSON.stringify(values)]);
  }

  /** `pulumi preview --diff` with the stack's policy pack. */
  preview(stack: string): Promise<PulumiResult> {
    return this.run(["preview", "--stack", stack, "--diff", ...policyPackArgs(stack)], true);
  }

  /** `pulumi up` with the stack's policy pack (the pack runs again on up: values unknown in preview). */
  up(stack: string, message: string): Promise<PulumiResult> {
    return this.run(
      ["up", "--stack", stack, "--yes", "--message", message, ...policyPackArgs(stack)],
      true,
    );
  }
}

/** Directory of the local policy pack, relative to the Pulumi project. */
export const POLICY_PACK_DIR = "policies";

/** The last segment of a stack name (`org/production` -> `production`). */
export function stackShortName(stack: string): string {
  return stack.split("/").pop()!;
}

/** The file the CLI keeps a stack's config in, relative to the project. */
export function stackFileName(stack: string): string {
  return `Pulumi.${stackShortName(stack)}.yaml`;
}

/** The policy pack config of a stack, relative to the project. */
export function policyPackConfigPath(stack: string): string {
  return `${POLICY_PACK_DIR}/config/${stackShortName(stack)}.json`;
}

/**
 * `--policy-pack <dir> --policy-pack-config <json>` of `pulumi preview` and `pulumi up`: both
 * repeatable, the n-th config belonging to the n-th pack (pulumi/pulumi
 * pkg/cmd/pulumi/operations/preview.go and up.go, flags `policy-pack` and `policy-pack-config`).
 */
export function policyPackArgs(stack: string): string[] {
  return ["--policy-pack", POLICY_PACK_DIR, "--policy-pack-config", policyPackConfigPath(stack)];
}

/**
 * The mandatory policy violations a failed preview or up printed: the CLI lists them under
 * `Policies:` as `- [mandatory] <policy> (<type>: <name>)` and exits non-zero
 * (pulumi/pulumi pkg/backend/display/progress.go printPolicies, and the expected output in
 * pkg/engine/lifecycletest/testdata/output/TestSimpleAnalyzeResourceFailure).
 */
export function mandatoryViolations(result: PulumiResult): string[] {
  return `${result.stdout}\n${result.stderr}`
    .split("\n")
    .filter((l) => l.includes("[mandatory]"))
    .map((l) => l.trim().replace(/^- /, ""));
}

/** A config value in the plain text form rawConfig expects (JSON text for objects). */
export function configText(v: ConfigValueJson): string | undefined {
  if (v.value !== undefined) return v.value;
  return v.objectValue === undefined ? undefined : JSON.stringify(v.objectValue);
}

/** `pulumi config --json` as project-prefixed key -> text, secrets left out. */
export function plainConfig(config: ConfigJson): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    const text = v.secret ? undefined : configText(v);
    if (text !== undefined) out[k] = text;
  }
  return out;
}

/** Whether an executable named `name` is on the PATH of `env`. */
export function onPath(name: string, env: Record<string, string | undefined>): boolean {
  return (env.PATH ?? "").split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
