import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { StackSpec } from "../spec";
import { buildEnvironmentObjects } from "../manifests";

export interface EnvironmentArgs {
  /** The validated stack (namespace, environment, GPU quota). */
  stack: StackSpec;
}

/** The stack's namespace with its GPU quota, container defaults and default-deny network policy. */
export class Environment extends pulumi.ComponentResource {
  readonly namespace: k8s.core.v1.Namespace;
  /** Name of the namespace, known once it exists. */
  readonly namespaceName: pulumi.Output<string>;

  constructor(name: string, args: EnvironmentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vllm:platform:Environment", name, {}, opts);
    const objs = buildEnvironmentObjects(args.stack);
    this.namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      objs.namespace as k8s.core.v1.NamespaceArgs,
      { parent: this },
    );
    const inNamespace = { parent: this, dependsOn: [this.namespace] };
    new k8s.core.v1.ResourceQuota(
      `${name}-gpu-budget`,
      objs.resourceQuota as k8s.core.v1.ResourceQuotaArgs,
      inNamespace,
    );
    new k8s.core.v1.LimitRange(
      `${name}-limits`,
      objs.limitRange as k8s.core.v1.LimitRangeArgs,
      inNamespace,
    );
    new k8s.networking.v1.NetworkPolicy(
      `${name}-default-deny`,
      objs.defaultDeny as k8s.networking.v1.NetworkPolicyArgs,
      inNamespace,
    );
    this.namespaceName = this.namespace.metadata.name;
    this.registerOutputs({ namespace: this.namespaceName });
  }
}
