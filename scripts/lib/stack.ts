// A stack as the operator scripts see it: its validated config and, when the Pulumi CLI can
// tell, its outputs. Without the CLI the config comes from Pulumi.<stack>.yaml.
import {
  parseStackConfig,
  readStackConfig,
  StackConfigError,
  StackSpec,
} from "../../components/config";
import { modelEndpoint } from "../../components/naming";
import { readCaFile } from "../../router/src/registry/tls";
import { loadStackSpec } from "../../components/stackFile";
import { EXIT, ScriptError, ScriptIo } from "./cli";
import { onPath, PulumiCli, plainConfig } from "./pulumi";

export interface StackView {
  name: string;
  spec: StackSpec;
  /** Stack outputs (`pulumi stack output --json`); empty when read from the file. */
  outputs: Record<string, unknown>;
  /** Where the config came from. */
  source: "pulumi" | "file";
}

/** Reads a stack through `pulumi` when given, else from its stack file. */
export async function loadStack(name: string, pulumi?: PulumiCli): Promise<StackView> {
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
    spec: parseStackConfig(readStackConfig(plainConfig(config)), { stack: name }),
    outputs,
    source: "pulumi",
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

/** The stack through `pulumi` when it is on PATH, else from Pulumi.<stack>.yaml. */
export async function readStack(name: string, io: ScriptIo): Promise<StackView> {
  const pulumi = onPath("pulumi", io.env) ? new PulumiCli({ env: io.env }) : undefined;
  try {
    return await loadStack(name, pulumi);
  } catch (e) {
    if (e instanceof StackConfigError) throw new ScriptError(e.message, EXIT.usage);
    throw unreadableStack(name, e);
  }
}
