// The deployment environments and which stack runs which: one list for the database, the
// router, the program and the policy pack.

/** Every environment a registry row, a stack or a router can belong to. */
export const ENVIRONMENTS = ["development", "staging", "production"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export function isEnvironment(value: unknown): value is Environment {
  return typeof value === "string" && (ENVIRONMENTS as readonly string[]).includes(value);
}

/**
 * The environment of each stack, by stack name: the name decides the environment (and with it
 * every guardrail), so a stack file cannot declare itself another environment. A new stack is
 * added here and as policies/config/<stack>.json.
 */
export const STACK_ENVIRONMENTS: Readonly<Record<string, Environment>> = {
  development: "development",
  staging: "staging",
  production: "production",
  // The end-to-end stack on kind: no GPUs, development guardrails.
  ci: "development",
};

/** The environment of a stack (`org/stack` and `org/project/stack` name the same stack); undefined when unmapped. */
export function stackEnvironment(stack: string): Environment | undefined {
  const name = stack.split("/").pop() ?? stack;
  return Object.hasOwn(STACK_ENVIRONMENTS, name) ? STACK_ENVIRONMENTS[name] : undefined;
}
