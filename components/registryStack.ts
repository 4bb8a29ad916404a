// The contract between the registry stack (registry-stack/, one per registry server) and the
// environment stacks: what the registry stack exports, and the check that an environment's
// `registry` config agrees with it before the environment touches the registry.
import * as pulumi from "@pulumi/pulumi";
import { LATEST_VERSION } from "../router/src/registry/migrations";
import { StackConfigError, StackSpec } from "./config";
import { ENVIRONMENTS, Environment } from "./naming";

/** Outputs of a registry stack. */
export interface RegistryStackOutputs {
  host: string;
  port: number;
  database: string;
  sslmode: string;
  /** Schema version the registry stack migrated the database to. */
  schemaVersion: number;
  /** NOLOGIN group role per environment; an environment's login roles are made its members. */
  environmentRoles: Record<Environment, string>;
}

/** Settings an environment keeps in its own config (offline scripts read them) and must share. */
const SHARED_SETTINGS = ["host", "port", "database", "sslmode"] as const;

/** One line per disagreement between `registry` config and the registry stack, with the fix. */
export function registryStackProblems(
  registry: StackSpec["registry"],
  environment: Environment,
  outputs: Record<string, unknown>,
): string[] {
  const source = `registry stack ${registry.stack}`;
  const update = `run \`pulumi -C registry-stack up --stack ${registry.stack.split("/")[2]}\` first`;
  const problems: string[] = [];
  for (const key of SHARED_SETTINGS) {
    if (outputs[key] === undefined)
      problems.push(`registry.stack: ${source} exports no '${key}'; ${update}`);
    else if (outputs[key] !== registry[key])
      problems.push(
        `registry.${key}: is '${registry[key]}' but ${source} serves '${String(outputs[key])}'; set registry.${key} to '${String(outputs[key])}', or point registry.stack at the registry stack of this server`,
      );
  }
  const version = Number(outputs.schemaVersion ?? 0);
  if (version < LATEST_VERSION)
    problems.push(
      `registry.stack: ${source} is at schema version ${version} but this program needs ${LATEST_VERSION}; ${update}`,
    );
  const roles = (outputs.environmentRoles ?? {}) as Partial<Record<Environment, string>>;
  if (!roles[environment])
    problems.push(
      `registry.stack: ${source} has no group role for environment '${environment}' (it has ${ENVIRONMENTS.filter((e) => roles[e]).join(", ") || "none"}); ${update}`,
    );
  return problems;
}

/** The registry stack's outputs if they agree with `registry`; otherwise a RunError listing why. */
export function checkRegistryStack(
  registry: StackSpec["registry"],
  environment: Environment,
  outputs: Record<string, unknown>,
): RegistryStackOutputs {
  const problems = registryStackProblems(registry, environment, outputs);
  // RunError prints without a stack trace; StackReference outputs are known in preview, so a
  // mismatch fails the preview that `pulumi up` runs before it changes anything.
  if (problems.length) throw new pulumi.RunError(new StackConfigError(problems).message);
  return outputs as unknown as RegistryStackOutputs;
}

/** Reads the registry stack named by `registry.stack` and checks it against the stack config. */
export function readRegistryStack(
  registry: StackSpec["registry"],
  environment: Environment,
): pulumi.Output<RegistryStackOutputs> {
  const ref = new pulumi.StackReference("registry", { name: registry.stack });
  return ref.outputs.apply((outputs) => checkRegistryStack(registry, environment, outputs));
}
