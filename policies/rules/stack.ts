// The stack's environment comes from the stack the engine runs the pack for, not from labels
// the program chose: a production stack whose objects say "staging" would skip every
// production-only rule.
import {
  BaseConfig,
  ENVIRONMENTS,
  ENVIRONMENT_LABEL,
  STACK_ENVIRONMENTS,
  environmentOf,
  stackProps,
  stackRule,
} from "../fleet";
import { TYPES, kindOf } from "../kube";

interface StackEnvironmentConfig extends BaseConfig {
  /** The environment this pack config is for (policies/config/<stack>.json sets it). */
  environment?: string;
}

/**
 * Where the engine tells a policy pack its stack: CLIs since v3.221 start Node.js packs through
 * the language host, which sets PULUMI_NODEJS_STACK (pulumi/pulumi
 * sdk/nodejs/cmd/pulumi-language-nodejs/main.go); older ones set PULUMI_STACK
 * (pkg/resource/plugin/analyzer_plugin.go, constructEnv).
 */
export const STACK_ENV_VARS = ["PULUMI_NODEJS_STACK", "PULUMI_STACK"] as const;

/**
 * The stack's environment, from the stack the engine runs the pack for; offline evaluations
 * without it use the pack config's environment.
 */
function boundEnvironment(cfg: StackEnvironmentConfig): {
  stack?: string;
  environment?: string;
} {
  const named = STACK_ENV_VARS.map((v) => process.env[v]).find((s) => s);
  const stack = named?.split("/").pop();
  if (!stack) return { environment: cfg.environment };
  return {
    stack,
    environment: Object.hasOwn(STACK_ENVIRONMENTS, stack) ? STACK_ENVIRONMENTS[stack] : undefined,
  };
}

export const stackEnvironment = stackRule<StackEnvironmentConfig>({
  name: "stack-environment",
  description:
    "Every object carries the environment of the stack it is deployed by (the stack name decides it), and the pack runs with that environment's config",
  severity: "critical",
  remediationSteps:
    "Set environment in Pulumi.<stack>.yaml to the stack's environment and run the pack with --policy-pack-config policies/config/<stack>.json.",
  defaults: { environments: [...ENVIRONMENTS], environment: undefined },
  schema: {
    environment: {
      type: "string",
      enum: [...ENVIRONMENTS],
      description: "The environment of the stack this pack config is for",
    },
  },
  check: ({ args, cfg, report }) => {
    const { stack, environment } = boundEnvironment(cfg);
    if (stack && !environment) {
      report(
        `stack '${stack}' has no environment; name it after one (${Object.keys(STACK_ENVIRONMENTS).join(", ")}) or add it to STACK_ENVIRONMENTS with its policies/config/${stack}.json`,
      );
      return;
    }
    if (!environment)
      return args.notApplicable("neither the stack nor the pack config names an environment");
    if (stack && cfg.environment !== undefined && cfg.environment !== environment) {
      report(
        `the policy config is ${cfg.environment}'s but stack '${stack}' is ${environment}; run with --policy-pack-config policies/config/${stack}.json`,
      );
    }
    for (const r of args.resources) {
      // Only Kubernetes objects (a label) and registry entries (a property) carry an environment;
      // other resources' values are never read (they may be unknown in preview).
      const kube = r.type.startsWith("kubernetes:");
      if (!kube && !r.type.startsWith(TYPES.dynamic)) continue;
      const props = stackProps(r);
      const labelled = kube ? environmentOf(props) : undefined;
      const own = kube
        ? labelled
        : typeof props.modelName === "string"
          ? props.environment
          : undefined;
      if (own !== undefined && own !== environment) {
        report(
          `${kindOf(r.type)} ${r.name}: is ${labelled ? `labelled ${ENVIRONMENT_LABEL}=` : "registered for "}${String(own)} but this stack is ${environment}, so ${environment}'s rules would not check it; set environment: ${environment} in the stack config`,
          r.urn,
        );
      }
    }
  },
});
