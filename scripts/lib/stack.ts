// A stack as the operator scripts see it: its validated config and, when the Pulumi CLI can
// tell, its outputs. Without the CLI the config comes from Pulumi.<stack>.yaml.
import { parseStackConfig, readStackConfig, StackSpec } from "../../components/config";
import { modelEndpoint } from "../../components/naming";
import { loadStackConfig } from "../../components/stackFile";
import { PulumiCli, plainConfig } from "./pulumi";

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
      spec: parseStackConfig(readStackConfig(loadStackConfig(name))),
      outputs: {},
      source: "file",
    };
  const [config, outputs] = await Promise.all([pulumi.config(name), pulumi.outputs(name)]);
  return {
    name,
    spec: parseStackConfig(readStackConfig(plainConfig(config))),
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
