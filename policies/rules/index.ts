// Every rule of the pack (README: "Policy pack and CI"), importable without starting the policy server.
import { Policies } from "@pulumi/policy";
import { minReplicas, pdbForReplicatedWorkloads } from "./availability";
import {
  networkPolicySelectsModels,
  registryEndpointMatchesService,
  serviceMonitorPerModel,
} from "./coverage";
import { gpuNodeSelector, gpuQuota, gpuRequestsEqualLimits } from "./gpu";
import { probesConfigured, startupBudgetCovered } from "./probes";
import {
  containerResources,
  imagePinnedByDigest,
  podSecurityRestricted,
  serviceLinksDisabled,
} from "./security";

export const rules: Policies = [
  gpuRequestsEqualLimits,
  gpuNodeSelector,
  probesConfigured,
  startupBudgetCovered,
  imagePinnedByDigest,
  minReplicas,
  pdbForReplicatedWorkloads,
  networkPolicySelectsModels,
  serviceMonitorPerModel,
  podSecurityRestricted,
  containerResources,
  serviceLinksDisabled,
  registryEndpointMatchesService,
  gpuQuota,
];
