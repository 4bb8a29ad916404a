import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { buildPrometheusRule, buildDashboardConfigMap } from "../manifests";
import type { StackSpec } from "../spec";

export interface FleetMonitoringArgs {
  /** The validated stack: its models, thresholds and `monitoring` switches. */
  stack: StackSpec;
  /** Objects (the Namespace) that must exist first. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** The stack's alerts (PrometheusRule) and Grafana dashboard (ConfigMap for the sidecar). */
export class FleetMonitoring extends pulumi.ComponentResource {
  constructor(name: string, args: FleetMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vllm:monitoring:FleetMonitoring", name, {}, opts);
    const child = { parent: this, dependsOn: args.dependsOn };
    if (args.stack.monitoring.alerts) {
      new k8s.apiextensions.CustomResource(
        `${name}-alerts`,
        buildPrometheusRule(args.stack),
        child,
      );
    }
    if (args.stack.monitoring.dashboard) {
      new k8s.core.v1.ConfigMap(
        `${name}-dashboard`,
        buildDashboardConfigMap(args.stack) as k8s.core.v1.ConfigMapArgs,
        child,
      );
    }
    this.registerOutputs({});
  }
}
