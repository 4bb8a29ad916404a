// What the pack knows about the fleet's objects, and the rule scaffolding shared by every rule.
// The pack is self-contained (it can be published on its own), so the label names below mirror
// components/spec/naming.ts; tests/policies.pack.test.ts keeps the two in step.
import {
  PolicyConfigSchema,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  Severity,
  StackValidationArgs,
  StackValidationPolicy,
  UnknownValueError,
} from "@pulumi/policy";
import {
  Obj,
  Workload,
  describe,
  isWorkloadType,
  kindOf,
  obj,
  str,
  strMap,
  workloadOf,
} from "./kube";

// The environments and the stack-to-environment map are the registry package's.
import { ENVIRONMENTS } from "@vllm-fleet/registry";
export { ENVIRONMENTS, STACK_ENVIRONMENTS } from "@vllm-fleet/registry";
export const NAME_LABEL = "app.kubernetes.io/name";
export const ENVIRONMENT_LABEL = "vllm.ai/environment";
export const MODEL_LABEL = "vllm.ai/model";
/** `app.kubernetes.io/name` of vLLM model pods and of router pods. */
export const MODEL_APP = "vllm";
export const ROUTER_APP = "vllm-router";
/** The vLLM container's name in model pods. */
export const VLLM_CONTAINER = "vllm";
export const VLLM_PORT = 8000;
export const STARTUP_BUDGET_ANNOTATION = "vllm.ai/startup-budget-minutes";
/** Deployment annotation whose value `none` marks a model deliberately run without GPUs. */
export const ACCELERATOR_ANNOTATION = "vllm.ai/accelerator";

export type Role = "model" | "router" | "other";

/** Model server, router or anything else, from the pod labels (or a container named `vllm`). */
export function roleOf(w: Workload): Role {
  const app = w.podLabels[NAME_LABEL] ?? w.labels[NAME_LABEL];
  if (app === ROUTER_APP) return "router";
  if (app === MODEL_APP) return "model";
  const names = (Array.isArray(w.podSpec.containers) ? w.podSpec.containers : []).map(
    (c) => obj(c).name,
  );
  return names.includes(VLLM_CONTAINER) ? "model" : "other";
}

/** Environment label of an object (or of its pod template); undefined when unlabelled. */
export function environmentOf(props: Obj): string | undefined {
  const own = strMap(obj(props.metadata).labels)[ENVIRONMENT_LABEL];
  if (own) return own;
  const template = obj(obj(props.spec).template);
  return strMap(obj(template.metadata).labels)[ENVIRONMENT_LABEL];
}

/** Config every rule accepts: the environments whose objects it checks. */
export interface BaseConfig {
  /** Environments (label `vllm.ai/environment`) the rule checks; unlabelled objects are always checked. */
  environments: string[];
}

/** Is an object with this environment in the rule's scope? Unlabelled objects are (strictest). */
export function inScope(cfg: BaseConfig, environment: string | undefined): boolean {
  return environment === undefined || cfg.environments.includes(environment);
}

interface RuleMeta<C extends BaseConfig> {
  name: string;
  description: string;
  severity: Severity;
  remediationSteps: string;
  /** Defaults of the rule's config; `environments` included. */
  defaults: C;
  /** JSON schema of the rule-specific config keys (beyond `environments`). */
  schema?: PolicyConfigSchema["properties"];
}

function configSchema<C extends BaseConfig>(meta: RuleMeta<C>): PolicyConfigSchema {
  return {
    properties: {
      environments: {
        type: "array",
        items: { type: "string", enum: [...ENVIRONMENTS] },
        default: meta.defaults.environments,
        description: "Environments (label vllm.ai/environment) whose objects this rule checks",
      },
      ...(meta.schema ?? {}),
    },
  };
}

function configOf<C extends BaseConfig>(
  meta: RuleMeta<C>,
  args: { getConfig<T extends object>(): T },
): C {
  const given = obj(args.getConfig<object>());
  const cfg = { ...meta.defaults } as Record<string, unknown>;
  for (const key of Object.keys(meta.defaults)) if (given[key] !== undefined) cfg[key] = given[key];
  return cfg as C;
}

/** The engine's UnknownValueError (its typings are internal to @pulumi/policy). */
export function isUnknownValueError(e: unknown): e is Error {
  return e instanceof (UnknownValueError as unknown as ErrorConstructor);
}

/**
 * During preview some values are unknown; the engine turns an UnknownValueError thrown by a rule
 * into an advisory "can't run policy during preview" diagnostic. Say which object and that the
 * check runs again on `pulumi up`, instead of passing silently.
 */
function explainUnknown(e: unknown, where: string): unknown {
  if (isUnknownValueError(e)) {
    e.message = `${where}: ${e.message}; the check runs again on 'pulumi up' once the value is known`;
  }
  return e;
}

/** What a workload rule's check receives besides the workload. */
export interface ResourceCheck<C> {
  args: ResourceValidationArgs;
  cfg: C;
  /** `Kind namespace/name` of the object, for messages. */
  display: string;
  report: (message: string) => void;
}

/**
 * A rule on one workload's pod template, scoped by environment and explicit about values
 * unknown in preview. Other resource types are not applicable (their values are not read).
 */
export function workloadRule<C extends BaseConfig>(
  meta: RuleMeta<C> & {
    check: (w: Workload, c: ResourceCheck<C>) => void;
    /** Which workloads the rule concerns (default: all). */
    applies?: (w: Workload, cfg: C) => boolean;
  },
): ResourceValidationPolicy {
  return {
    name: meta.name,
    description: meta.description,
    severity: meta.severity,
    remediationSteps: meta.remediationSteps,
    enforcementLevel: "mandatory",
    configSchema: configSchema(meta),
    validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
      if (!isWorkloadType(args.type)) args.notApplicable("not a workload");
      const cfg = configOf(meta, args);
      const props = args.props as Obj;
      let display = args.name;
      try {
        display = describe(args.type, props, args.name);
        const env = environmentOf(props);
        if (!inScope(cfg, env)) {
          args.notApplicable(`applies to ${cfg.environments.join(", ")}; this object is ${env}`);
        }
        const w = workloadOf(args.type, props, args.name);
        if (!w) return args.notApplicable("not a workload");
        if (meta.applies && !meta.applies(w, cfg)) {
          return args.notApplicable(`does not apply to ${display}`);
        }
        meta.check(w, { args, cfg, display, report });
      } catch (e) {
        throw explainUnknown(e, display);
      }
    },
  };
}

/** What a stack rule's check receives. */
export interface StackCheck<C> {
  args: StackValidationArgs;
  cfg: C;
  report: ReportViolation;
}

/** A rule over the whole stack (cross-object relations). */
export function stackRule<C extends BaseConfig>(
  meta: RuleMeta<C> & { check: (c: StackCheck<C>) => void },
): StackValidationPolicy {
  return {
    name: meta.name,
    description: meta.description,
    severity: meta.severity,
    remediationSteps: meta.remediationSteps,
    enforcementLevel: "mandatory",
    configSchema: configSchema(meta),
    validateStack: (args: StackValidationArgs, report: ReportViolation) => {
      const cfg = configOf(meta, args);
      try {
        meta.check({ args, cfg, report });
      } catch (e) {
        throw explainUnknown(e, "stack rule");
      }
    },
  };
}

/**
 * Stack rules read many resources; when one of them holds a value unknown in preview, name that
 * resource in the engine's message (its path alone does not say which object it is).
 */
function labelUnknowns<T>(value: T, label: string): T {
  if (value === null || typeof value !== "object") return value;
  return new Proxy(value as object, {
    get(target, prop, receiver) {
      const desc = Object.getOwnPropertyDescriptor(target, prop);
      // Proxy invariant: non-configurable read-only properties must come back unchanged.
      if (desc && "value" in desc && !desc.configurable && !desc.writable) return desc.value;
      try {
        return labelUnknowns(Reflect.get(target, prop, receiver), label);
      } catch (e) {
        if (isUnknownValueError(e) && !e.message.startsWith(label)) {
          e.message = `${label}: ${e.message}`;
        }
        throw e;
      }
    },
  }) as T;
}

/** Props of a stack resource, with unknowns in preview reported against the resource. */
export function stackProps(r: { type: string; name: string; props: Record<string, unknown> }): Obj {
  return labelUnknowns(r.props as Obj, `${kindOf(r.type)} ${r.name}`);
}

/** A workload of the stack with its URN (for violations), environment and replica range. */
export type StackWorkload = Workload & {
  urn: string;
  type: string;
  props: Obj;
  environment: string | undefined;
  /** Fewest and most replicas: the HPA's range when one scales the workload, else `replicas`. */
  minReplicas: number;
  maxReplicas: number;
  /** `HorizontalPodAutoscaler ns/name` when one owns the replica count. */
  autoscaler?: string;
};

export const HPA_TYPE = /^kubernetes:autoscaling\/v[0-9a-z]+:HorizontalPodAutoscaler$/;

/** Workloads of a stack that are in the rule's scope. */
export function stackWorkloads(args: StackValidationArgs, cfg: BaseConfig): StackWorkload[] {
  const hpas = args.resources
    .filter((r) => HPA_TYPE.test(r.type))
    .map((r) => ({ r, props: stackProps(r) }));
  const out: StackWorkload[] = [];
  for (const r of args.resources) {
    const props = stackProps(r);
    const w = workloadOf(r.type, props, r.name);
    if (!w) continue;
    const environment = environmentOf(props);
    if (!inScope(cfg, environment)) continue;
    const hpa = hpas.find(({ props }) => {
      const target = obj(obj(props.spec).scaleTargetRef);
      return (
        target.kind === w.kind &&
        target.name === w.name &&
        (str(obj(props.metadata).namespace) ?? "default") === w.namespace
      );
    });
    const hpaSpec = obj(hpa?.props.spec);
    out.push({
      ...w,
      urn: r.urn,
      type: r.type,
      props,
      environment,
      minReplicas: hpa
        ? typeof hpaSpec.minReplicas === "number"
          ? hpaSpec.minReplicas
          : 1
        : w.replicas,
      maxReplicas:
        hpa && typeof hpaSpec.maxReplicas === "number" ? hpaSpec.maxReplicas : w.replicas,
      autoscaler: hpa ? describe(hpa.r.type, hpa.props, hpa.r.name) : undefined,
    });
  }
  return out;
}

/** Stack resources of one type, with their props typed for the helpers. */
export function resourcesOfType(args: StackValidationArgs, type: string) {
  return args.resources
    .filter((r) => r.type === type)
    .map((r) => ({ urn: r.urn, name: r.name, type: r.type, props: stackProps(r) }));
}
