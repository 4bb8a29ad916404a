// Runs the pack's rules over a stack's resources the way the policy engine does (resource rules
// see inputs, stack rules see outputs; unknown values throw and become advisory; notApplicable
// skips). Tests and offline checks use it: the Pulumi CLI is not available everywhere.
import {
  EnforcementLevel,
  Policies,
  PolicyPackConfig,
  PolicyResource,
  PolicyResourceOptions,
  ResourceValidationArgs,
  StackValidationArgs,
  unknownCheckingProxy,
} from "@pulumi/policy";
import { isUnknown } from "@pulumi/pulumi";
import { isUnknownValueError } from "./fleet";

/** A resource as the program registered it. */
export interface EvaluatedResource {
  type: string;
  name: string;
  urn?: string;
  /** Inputs (what resource rules see). */
  inputs: Record<string, unknown>;
  /** Outputs (what stack rules see); the inputs when absent, as in a preview of a create. */
  outputs?: Record<string, unknown>;
  /** Resource options the engine passes (customTimeouts, parent ...). */
  opts?: Partial<PolicyResourceOptions>;
}

export interface Diagnostic {
  policy: string;
  enforcementLevel: EnforcementLevel;
  message: string;
  urn?: string;
}

/** The wire protocol's sentinel for an unknown value (the engine's unknownStringValue). */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Replace the SDK's unknowns (preview under mocks) by the engine's sentinel. */
function withSentinels(value: unknown): unknown {
  if (isUnknown(value)) return UNKNOWN;
  if (Array.isArray(value)) return value.map(withSentinels);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withSentinels(v)]));
  }
  return value;
}

class NotApplicable extends Error {}

function notApplicable(reason?: string): never {
  throw new NotApplicable(reason);
}

function levelOf(config: PolicyPackConfig, name: string, fallback?: EnforcementLevel) {
  const c = config[name] ?? config.all;
  if (typeof c === "string") return c;
  return c?.enforcementLevel ?? fallback ?? "advisory";
}

function configOf(config: PolicyPackConfig, name: string): object {
  const c = config[name];
  if (typeof c !== "object" || c === null) return {};
  const rest: Record<string, unknown> = { ...c };
  delete rest.enforcementLevel;
  return rest;
}

const DEFAULT_OPTS: PolicyResourceOptions = {
  protect: false,
  ignoreChanges: [],
  aliases: [],
  customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
  additionalSecretOutputs: [],
};

/** Every diagnostic the policies report for these resources under this pack config. */
export async function evaluatePolicies(
  policies: Policies,
  resources: EvaluatedResource[],
  config: PolicyPackConfig = {},
): Promise<Diagnostic[]> {
  const diagnostics: Diagnostic[] = [];
  const prepared = resources.map((r, i) => ({
    ...r,
    urn: r.urn ?? `urn:pulumi:stack::project::${r.type}::${r.name || i}`,
    opts: { ...DEFAULT_OPTS, ...r.opts },
    inputs: withSentinels(r.inputs) as Record<string, unknown>,
    outputs: withSentinels(r.outputs ?? r.inputs) as Record<string, unknown>,
  }));
  for (const policy of policies) {
    const level = levelOf(config, policy.name, policy.enforcementLevel);
    if (level === "disabled") continue;
    const getConfig = <T extends object>() => configOf(config, policy.name) as T;
    const run = async (fn: () => unknown, urn?: string) => {
      try {
        await fn();
      } catch (e) {
        if (e instanceof NotApplicable) return;
        if (!isUnknownValueError(e)) throw e;
        diagnostics.push({
          policy: policy.name,
          enforcementLevel: "advisory",
          message: `can't run policy '${policy.name}' during preview: ${e.message}`,
          urn,
        });
      }
    };
    if ("validateStack" in policy) {
      const stackResources: PolicyResource[] = prepared.map((r) => ({
        type: r.type,
        name: r.name,
        urn: r.urn,
        props: unknownCheckingProxy(r.outputs),
        opts: r.opts,
        dependencies: [],
        propertyDependencies: {},
        isType: () => false,
        asType: () => undefined,
      }));
      const args: StackValidationArgs = {
        resources: stackResources,
        stackTags: new Map(),
        getConfig,
        notApplicable,
      };
      await run(() =>
        policy.validateStack(args, (message, urn) =>
          diagnostics.push({ policy: policy.name, enforcementLevel: level, message, urn }),
        ),
      );
      continue;
    }
    const validations = [policy.validateResource ?? []].flat();
    for (const r of prepared) {
      for (const validate of validations) {
        const args: ResourceValidationArgs = {
          type: r.type,
          name: r.name,
          urn: r.urn,
          props: unknownCheckingProxy(r.inputs),
          opts: r.opts,
          stackTags: new Map(),
          isType: () => false,
          asType: () => undefined,
          getConfig,
          notApplicable,
        };
        await run(
          () =>
            validate(args, (message) =>
              diagnostics.push({
                policy: policy.name,
                enforcementLevel: level,
                message,
                urn: r.urn,
              }),
            ),
          r.urn,
        );
      }
    }
  }
  return diagnostics;
}
