// Every rule of the pack (README: "Policy pack and CI"), importable without starting the policy server.
import { Policies } from "@pulumi/policy";
import {
  autoscaledReplicasUnset,
  minReplicas,
  pdbForReplicatedWorkloads,
  replicasSpreadAcrossNodes,
} from "./availability";
import {
  networkPolicySelectsModels,
  registryEndpointMatchesService,
  selectorsMatchPods,
  serviceMonitorPerModel,
} from "./coverage";
import { gpuNodeSelector, gpuQuota, gpuRequestsEqualLimits } from "./gpu";
import { probesConfigured, startupBudgetCovered } from "./probes";
import { stackEnvironment } from "./stack";
import {
  containerResources,
  ephemeralStorageRequests,
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
  replicasSpreadAcrossNodes,
  ephemeralStorageRequests,
  autoscaledReplicasUnset,
  selectorsMatchPods,
  stackEnvironment,
];
