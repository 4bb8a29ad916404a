// The CrossGuard pack. Constructing a PolicyPack starts the policy server, so nothing imports
// this file: tests and tools import ./rules instead.
import { PolicyPack } from "@pulumi/policy";
import { rules } from "./rules";

new PolicyPack("vllm-fleet", {
  description:
    "Guardrails for vLLM model fleets: GPUs, probes, startup budgets, pinned images, availability and spreading, network isolation, selectors, the restricted Pod Security Standard, ephemeral storage, autoscaled replicas, monitoring, registry endpoints and GPU quotas",
  enforcementLevel: "mandatory",
  policies: rules,
});
