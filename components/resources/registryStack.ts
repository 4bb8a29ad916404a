// The contract between the registry stack (registry-stack/, one per registry server) and the
// environment stacks: what the registry stack exports, and the check that an environment's
// `registry` config agrees with it before the environment touches the registry.
import * as pulumi from "@pulumi/pulumi";
import { LATEST_VERSION } from "@vllm-fleet/registry";
import { StackConfigError, StackSpec, ENVIRONMENTS, Environment } from "../spec";

/** What an environment's login roles do: the writer registers models, the router reads them. */
export type LoginKind = "writer" | "router";
export const LOGIN_KINDS: readonly LoginKind[] = ["writer", "router"];

/** Outputs of a registry stack. */
export interface RegistryStackOutputs {
  host: string;
  port: number;
  database: string;
  sslmode: string;
  /** The admin user that created the registry's roles; environment stacks must use the same. */
  adminUser: string;
  /** Schema version the registry stack migrated the database to. */
  schemaVersion: number;
  /** NOLOGIN group role per environment; an environment's login roles are made its members. */
  environmentRoles: Record<Environment, string>;
  /** NOLOGIN role holding the table privileges per kind of login role; login roles are made its members. */
  accessRoles: Record<LoginKind, string>;
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
  if (outputs.adminUser === undefined)
    problems.push(`registry.stack: ${source} exports no 'adminUser'; ${update}`);
  else if (outputs.adminUser !== registry.adminUser)
    problems.push(
      // PostgreSQL 16+: adding members to a role needs ADMIN OPTION on it, and a CREATEROLE
      // role that is not superuser holds ADMIN OPTION only on the roles it created itself.
      `registry.adminUser: is '${registry.adminUser}' but ${source} created the registry's roles as '${String(outputs.adminUser)}'; on PostgreSQL 16 and later only a role with ADMIN OPTION on a group role may add members to it, and an admin that is not superuser holds it only on the roles it created (https://www.postgresql.org/docs/16/sql-createrole.html), so '${registry.adminUser}' fails with "permission denied to grant role"; set registry.adminUser to '${String(outputs.adminUser)}' and registryAdminPassword to its password`,
    );
  const access = (outputs.accessRoles ?? {}) as Partial<Record<LoginKind, string>>;
  if (LOGIN_KINDS.some((kind) => !access[kind]))
    problems.push(
      `registry.stack: ${source} has no access roles for the writer and router logins; ${update}`,
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
