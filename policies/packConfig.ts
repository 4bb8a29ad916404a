// Enforcement per environment: everything blocks in staging and production; in development the
// rules a team iterating on one GPU would rather see as warnings are advisory. The JSON files in
// policies/config/ (passed with --policy-pack-config) are this function's output, checked by tests.
import { EnforcementLevel, PolicyPackConfig } from "@pulumi/policy";
import { ENVIRONMENTS } from "./fleet";
import { rules } from "./rules";

/** Rules that only warn in development (no Prometheus, single replicas, quick experiments). */
export const ADVISORY_IN_DEVELOPMENT = [
  "pdb-for-replicated-workloads",
  "service-monitor-per-model",
  "container-resources",
  "ephemeral-storage-requests",
];

export type EnvironmentName = (typeof ENVIRONMENTS)[number];

/** The policy-pack config for one environment's stacks (policies/config/<stack>.json). */
export function packConfig(environment: EnvironmentName): PolicyPackConfig {
  const config: PolicyPackConfig = {};
  for (const rule of rules) {
    const level: EnforcementLevel =
      environment === "development" && ADVISORY_IN_DEVELOPMENT.includes(rule.name)
        ? "advisory"
        : "mandatory";
    config[rule.name] = { enforcementLevel: level };
  }
  // Binds the file to its environment: the rule refuses it for a stack of another environment.
  config["stack-environment"] = { enforcementLevel: "mandatory", environment };
  return config;
}
