// A stack as the operator scripts see it: its validated config and, when the Pulumi CLI can
// tell, its outputs. Without the CLI the config comes from Pulumi.<stack>.yaml.
import { loadStackSpec, modelEndpoint, StackConfigError, StackSpec } from "../../components/spec";
import { readCaFile } from "@vllm-fleet/registry";
import { EXIT, ScriptError, ScriptIo } from "./cli";
import { onPath, PulumiCli, plainConfig } from "./pulumi";

export interface StackView {
  name: string;
  spec: StackSpec;
  /** Stack outputs (`pulumi stack output --json`); empty when read from the file. */
  outputs: Record<string, unknown>;
  /** Where the config came from. */
  source: "pulumi" | "file";
  /** The CLI it was read with, for secret outputs read only when needed. */
  pulumi?: PulumiCli;
}

/** Reads a stack through `pulumi` when given, else from its stack file. */
export async function loadStackView(name: string, pulumi?: PulumiCli): Promise<StackView> {
  if (!pulumi)
    return {
      name,
      spec: loadStackSpec(name),
      outputs: {},
      source: "file",
    };
  const [config, outputs] = await Promise.all([pulumi.config(name), pulumi.outputs(name)]);
  return {
    name,
    spec: loadStackSpec(name, { config: plainConfig(config) }),
    outputs,
    source: "pulumi",
    pulumi,
  };
}

/** The Service endpoint of a model: the stack output when deployed, else computed from config. */
export function expectedEndpoint(view: StackView, model: string): string {
  const models = view.outputs.models as Record<string, { endpoint?: unknown }> | undefined;
  const out = models?.[model]?.endpoint;
  return typeof out === "string"
    ? out
    : modelEndpoint(model, view.spec.environment, view.spec.namespace);
}

/** The router URL a stack exports (`routerUrl`), if any. */
export function outputRouterUrl(view: StackView): string | undefined {
  const url = view.outputs.routerUrl;
  return typeof url === "string" ? url : undefined;
}

/** The stack output holding the environment's writer role URL, a secret (index.ts). */
export const REGISTRY_URL_OUTPUT = "registryUrl";

/**
 * The registry connection for a stack's rows, one rule for every script: DATABASE_URL when set
 * (an explicit override: a superuser, a local server), else the stack's secret `registryUrl`
 * output, its environment's writer role (row-level security shows it that environment's rows
 * only). The URL is never printed.
 */
export async function stackRegistryUrl(
  stack: string,
  env: ScriptIo["env"],
  pulumi?: PulumiCli,
): Promise<string> {
  if (env.DATABASE_URL) return env.DATABASE_URL;
  const fix = `or export DATABASE_URL (e.g. the router's read-only URL from its Secret, or a superuser's)`;
  if (!pulumi)
    throw new ScriptError(
      `DATABASE_URL is not set and the pulumi CLI is not on PATH to read the ${REGISTRY_URL_OUTPUT} output of stack ${stack}: install pulumi and \`pulumi login\`, ${fix}`,
      EXIT.usage,
    );
  let url: unknown;
  try {
    url = await pulumi.secretOutput(stack, REGISTRY_URL_OUTPUT);
  } catch (e) {
    throw new ScriptError(
      `cannot read the ${REGISTRY_URL_OUTPUT} output of stack ${stack} (DATABASE_URL is not set): ${(e as Error).message}\nA stack exports it from its first \`pulumi up\` with this program on; ${fix}.`,
      EXIT.unavailable,
    );
  }
  if (typeof url !== "string" || !/^postgres(ql)?:\/\//.test(url))
    throw new ScriptError(
      `the ${REGISTRY_URL_OUTPUT} output of stack ${stack} is not a postgresql:// URL; run \`pulumi up\` on ${stack} with this program, ${fix}`,
      EXIT.unavailable,
    );
  return url;
}

/** DATABASE_URL or a usage error that says how to set it. */
export function requireDatabaseUrl(env: ScriptIo["env"]): string {
  const url = env.DATABASE_URL;
  if (!url)
    throw new ScriptError(
      "DATABASE_URL is not set: export the registry's postgresql://user:password@host:5432/model_registry URL",
      EXIT.usage,
    );
  return url;
}

/**
 * The registry's CA certificate (PEM) for the scripts: the file PGSSLROOTCERT names (libpq's
 * variable), else the stack's `registry.sslrootcert` when a stack is known.
 */
export function registryCa(env: ScriptIo["env"], spec?: StackSpec): string | undefined {
  const file = env.PGSSLROOTCERT;
  if (!file) return spec?.registry.caCertificate;
  try {
    return readCaFile(file, "PGSSLROOTCERT");
  } catch (e) {
    throw new ScriptError((e as Error).message, EXIT.usage);
  }
}

/** A stack that could not be read (the CLI failed: login, backend, no such stack): exit 3. */
export function unreadableStack(name: string, e: unknown): ScriptError {
  return new ScriptError(`cannot read stack ${name}: ${(e as Error).message}`, EXIT.unavailable);
}

/**
 * A command's `--stack`: through `pulumi` when it is on PATH, else from Pulumi.<stack>.yaml;
 * an invalid config is a usage error, an unreadable stack exit 3.
 */
export async function requireStackView(name: string, io: ScriptIo): Promise<StackView> {
  const pulumi = onPath("pulumi", io.env) ? new PulumiCli({ env: io.env }) : undefined;
  try {
    return await loadStackView(name, pulumi);
  } catch (e) {
    if (e instanceof StackConfigError) throw new ScriptError(e.message, EXIT.usage);
    throw unreadableStack(name, e);
  }
}
