// Pure builders: one model of one stack -> its Kubernetes objects (cache volume, Deployment,
// Service, headless pods Service, PDB, NetworkPolicy, ServiceMonitor, Hugging Face token Secret).
import { createHash } from "node:crypto";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IPersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import type { IService } from "kubernetes-models/v1/Service";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import type { ModelSpec, StackSpec } from "../spec";
import type { ModelRegistration } from "@vllm-fleet/registry";
import type { SecretManifest } from "./manifest";
import {
  MODEL_SERVER_COMPONENT,
  modelLabels,
  modelSelector,
  podsServiceName,
  routerSelector,
  serviceName,
  VLLM_PORT,
} from "../spec";

/** Seconds the pod keeps serving after removal from endpoints, so in-flight routing settles. */
export const PRESTOP_SECONDS = 15;
/** Seconds vLLM gets to finish in-flight generations after SIGTERM. */
export const DRAIN_SECONDS = 90;
/** Startup probe period; the failure threshold is derived from the startup budget. */
export const STARTUP_PERIOD_SECONDS = 10;
/** Where the model cache volume is mounted (HF_HOME lives below it). */
export const CACHE_MOUNT = "/models";
/** Annotation carrying the startup budget so policies can check the probes cover it. */
export const STARTUP_BUDGET_ANNOTATION = "vllm.ai/startup-budget-minutes";
/**
 * Node disk a vLLM container reserves: its writable layer holds HOME=/tmp, where torch.compile,
 * Triton and FlashInfer keep their kernel caches (weights live on the cache PVC, /dev/shm in memory).
 */
export const VLLM_EPHEMERAL_STORAGE = "10Gi";
/** Key of the Hugging Face token in a gated model's token Secret. */
export const HF_TOKEN_SECRET_KEY = "token";

/** Pods the model runs: none while disabled. */
export function podCount(model: ModelSpec): number {
  return model.enabled ? model.replicas : 0;
}

/** Annotation `none` marks a model deliberately run without GPUs (policies allow it outside production). */
export const ACCELERATOR_ANNOTATION = "vllm.ai/accelerator";

/** Probe timings derived from the startup budget (minutes vLLM may take to load weights). */
export function probeBudget(startupBudgetMinutes: number) {
  return {
    startupFailureThreshold: Math.ceil((startupBudgetMinutes * 60) / STARTUP_PERIOD_SECONDS),
    /** Pulumi must wait at least as long as Kubernetes does, plus scheduling and image pull. */
    customTimeoutMinutes: startupBudgetMinutes + 10,
  };
}

/**
 * vLLM's `--tensor-parallel-size`: one rank per GPU the pod requests (`gpu.count`), 1 without
 * GPUs. Pipeline and data parallelism stay 1 (MANAGED_VLLM_FLAGS), so vLLM's world size, pipeline
 * x tensor parallel (vllm/config/parallel.py, ParallelConfig.__post_init__), is the pod's GPUs.
 */
export function tensorParallelSize(model: ModelSpec): number {
  return model.gpu?.count ?? 1;
}

/** `/dev/shm` size: NCCL exchanges tensors through shared memory between tensor-parallel ranks. */
export function shmSize(ranks: number): string {
  return ranks > 1 ? `${4 * ranks}Gi` : "2Gi";
}

/** What the registry records as the running release: the image (by digest where pinned) and the model revision. */
export function releaseRevision(model: ModelSpec): string {
  return `${model.image} ${model.revision ?? "unpinned"}`;
}

/**
 * A stack's model as the registry's registerModel takes it (all but how to reach the database):
 * the Pulumi program and the local platform register models through this one mapping. The
 * endpoint is a parameter: a Pulumi Output in the program, the simulator's address locally.
 */
export function modelRegistration<E>(
  spec: StackSpec,
  model: ModelSpec,
  endpoint: E,
  managedBy: string,
): Omit<ModelRegistration, "endpoint"> & { endpoint: E } {
  return {
    environment: spec.environment,
    modelName: model.name,
    endpoint,
    namespace: spec.namespace,
    servedModelName: model.servedModelName,
    fallbacks: model.fallbacks,
    revision: releaseRevision(model),
    enabled: model.enabled,
    managedBy,
  };
}

/** Command-line flags of `vllm serve` for one release. */
export function vllmArgs(model: ModelSpec): string[] {
  const a = model.args;
  const args = [
    model.source,
    "--host=0.0.0.0",
    `--port=${VLLM_PORT}`,
    `--served-model-name=${model.servedModelName}`,
    `--tensor-parallel-size=${tensorParallelSize(model)}`,
    `--gpu-memory-utilization=${a.gpuMemoryUtilization}`,
    `--dtype=${a.dtype}`,
  ];
  if (model.revision) args.push(`--revision=${model.revision}`);
  if (a.maxModelLen) args.push(`--max-model-len=${a.maxModelLen}`);
  if (a.quantization) args.push(`--quantization=${a.quantization}`);
  return [...args, ...a.extraArgs];
}

function meta(spec: StackSpec, model: ModelSpec, name = serviceName(model.name, spec.environment)) {
  return { name, namespace: spec.namespace, labels: modelLabels(model.name, spec.environment) };
}

/**
 * The cache claim's name carries a hash of its immutable fields (access mode, storage class:
 * ValidatePersistentVolumeClaimUpdate in kubernetes pkg/apis/core/validation, and the
 * provider's replace list in pulumi-kubernetes provider/pkg/provider/diff.go). Changing them
 * then renames the claim, so Pulumi creates the new one before deleting the old, instead of
 * deleting first a claim the pvc-protection finalizer keeps while pods mount it.
 */
export function cacheClaimName(spec: StackSpec, model: ModelSpec): string {
  const immutable = `${model.cache.accessMode}/${model.cache.storageClass ?? ""}`;
  const hash = createHash("sha256").update(immutable).digest("hex").slice(0, 8);
  return `${serviceName(model.name, spec.environment)}-cache-${hash}`;
}

export function buildModelCacheClaim(
  spec: StackSpec,
  model: ModelSpec,
): IPersistentVolumeClaim & { metadata: { name: string } } {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      ...meta(spec, model, cacheClaimName(spec, model)),
      // With WaitForFirstConsumer storage the claim binds only once the pod exists; waiting
      // for Bound before creating the Deployment would deadlock.
      annotations: { "pulumi.com/skipAwait": "true" },
    },
    spec: {
      // Chosen per environment, never derived from replicas: the spec is immutable.
      accessModes: [model.cache.accessMode],
      resources: { requests: { storage: model.cache.size } },
      ...(model.cache.storageClass ? { storageClassName: model.cache.storageClass } : {}),
    },
  };
}

/** Name of a gated model's Secret holding the Hugging Face token. */
export function huggingFaceSecretName(spec: StackSpec, model: ModelSpec): string {
  return `${serviceName(model.name, spec.environment)}-huggingface`;
}

/** A gated model's token Secret; `token` is a Pulumi secret at deploy time, never rendered. */
export function buildHuggingFaceTokenSecret<T>(
  spec: StackSpec,
  model: ModelSpec,
  token: T,
): SecretManifest<T> {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: meta(spec, model, huggingFaceSecretName(spec, model)),
    type: "Opaque",
    stringData: { [HF_TOKEN_SECRET_KEY]: token },
  };
}

export function buildModelDeployment(
  spec: StackSpec,
  model: ModelSpec,
): IDeployment & { metadata: { name: string } } {
  const gpu = model.gpu;
  const budget = probeBudget(model.startupBudgetMinutes);
  const gpus: Record<string, string> = gpu ? { [gpu.resourceName]: String(gpu.count) } : {};
  const limits: Record<string, string> = { ...gpus };
  if (model.resources.cpuLimit) limits.cpu = model.resources.cpuLimit;
  limits.memory = model.resources.memoryLimit ?? model.resources.memory;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      ...meta(spec, model),
      annotations: {
        [STARTUP_BUDGET_ANNOTATION]: String(model.startupBudgetMinutes),
        // The provider's Deployment await also waits for every PVC of the pod template to be
        // Bound (pulumi-kubernetes provider/pkg/await/deployment.go, isEveryPVCReady); with no
        // pod a WaitForFirstConsumer claim never binds. With pods, the await is the proof of
        // readiness the registry row waits for.
        ...(podCount(model) === 0 ? { "pulumi.com/skipAwait": "true" } : {}),
        ...(gpu ? {} : { [ACCELERATOR_ANNOTATION]: "none" }),
      },
    },
    spec: {
      replicas: podCount(model),
      revisionHistoryLimit: 5,
      selector: { matchLabels: modelSelector(model.name, spec.environment) },
      // GPUs are scarce: replace pods one at a time instead of needing twice the GPUs.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
      template: {
        metadata: { labels: modelLabels(model.name, spec.environment) },
        spec: {
          // A Service named like `vllm` would inject VLLM_PORT=tcp://... and break vLLM's config.
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          // Replicas on different nodes where possible, so one node does not take the model down;
          // ScheduleAnyway, because GPU nodes are few and a Pending replica serves nobody.
          ...(podCount(model) > 1
            ? {
                topologySpreadConstraints: [
                  {
                    maxSkew: 1,
                    topologyKey: "kubernetes.io/hostname",
                    whenUnsatisfiable: "ScheduleAnyway",
                    labelSelector: { matchLabels: modelSelector(model.name, spec.environment) },
                  },
                ],
              }
            : {}),
          terminationGracePeriodSeconds: PRESTOP_SECONDS + DRAIN_SECONDS,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            runAsGroup: 1000,
            fsGroup: 1000,
            seccompProfile: { type: "RuntimeDefault" },
          },
          // The accelerator vendor's node labels (components/spec/accelerators.ts), then extras.
          nodeSelector: { ...gpu?.nodeLabels, ...model.nodeSelector },
          tolerations: model.tolerations,
          containers: [
            {
              name: "vllm",
              image: model.image,
              command: ["vllm", "serve"],
              args: vllmArgs(model),
              ports: [{ name: "http", containerPort: VLLM_PORT, protocol: "TCP" }],
              env: [
                { name: "HF_HOME", value: `${CACHE_MOUNT}/huggingface` },
                { name: "HOME", value: "/tmp" },
                { name: "VLLM_NO_USAGE_STATS", value: "1" },
                // Required: a missing token fails the pod at start, not the download later.
                ...(model.gated
                  ? [
                      {
                        name: "HF_TOKEN",
                        valueFrom: {
                          secretKeyRef: {
                            name: huggingFaceSecretName(spec, model),
                            key: HF_TOKEN_SECRET_KEY,
                          },
                        },
                      },
                    ]
                  : []),
              ],
              resources: {
                requests: {
                  cpu: model.resources.cpu,
                  memory: model.resources.memory,
                  "ephemeral-storage": VLLM_EPHEMERAL_STORAGE,
                  ...gpus,
                },
                limits,
              },
              startupProbe: {
                httpGet: { path: "/health", port: "http" },
                periodSeconds: STARTUP_PERIOD_SECONDS,
                timeoutSeconds: 5,
                failureThreshold: budget.startupFailureThreshold,
              },
              // Ready only when the model is loaded and listed, not when the process is up.
              readinessProbe: {
                httpGet: { path: "/v1/models", port: "http" },
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 3,
              },
              // Long generations can stall /health briefly; restart only after a sustained failure.
              livenessProbe: {
                httpGet: { path: "/health", port: "http" },
                periodSeconds: 15,
                timeoutSeconds: 10,
                failureThreshold: 6,
              },
              lifecycle: { preStop: { exec: { command: ["sleep", String(PRESTOP_SECONDS)] } } },
              securityContext: {
                allowPrivilegeEscalation: false,
                runAsNonRoot: true,
                capabilities: { drop: ["ALL"] },
                seccompProfile: { type: "RuntimeDefault" },
              },
              volumeMounts: [
                { name: "model-cache", mountPath: CACHE_MOUNT },
                { name: "dshm", mountPath: "/dev/shm" },
              ],
            },
          ],
          volumes: [
            {
              name: "model-cache",
              persistentVolumeClaim: { claimName: cacheClaimName(spec, model) },
            },
            {
              name: "dshm",
              emptyDir: { medium: "Memory", sizeLimit: shmSize(tensorParallelSize(model)) },
            },
          ],
        },
      },
    },
  };
}

export function buildModelService(
  spec: StackSpec,
  model: ModelSpec,
): IService & { metadata: { name: string } } {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(spec, model),
    spec: {
      type: "ClusterIP",
      selector: modelSelector(model.name, spec.environment),
      ports: [{ name: "http", port: VLLM_PORT, targetPort: "http", protocol: "TCP" }],
    },
  };
}

/** `app.kubernetes.io/component` of the headless pods Service, which no ServiceMonitor selects. */
export const POD_DISCOVERY_COMPONENT = "pod-discovery";

/**
 * The headless Service the router resolves to find the model's ready pods (modes least-loaded
 * and scored): `podsServiceName("{model}-{env}")`, the router's own naming function, with the
 * model Service's selector and port. `clusterIP: None` makes the cluster DNS answer its name
 * with one A record per ready endpoint, and `publishNotReadyAddresses: false` keeps it to ready
 * ones (kubernetes/dns docs/specification.md, 2.4.1 "A Records"), so a pod that fails readiness
 * stops being picked. Made for every model in every mode: it costs no cluster IP and no
 * kube-proxy rules (kube-proxy skips headless Services), and switching router.routing.mode is
 * then only a router rollout, never a wait for DNS names to appear. The registry row keeps
 * pointing at the model's Service.
 */
export function buildModelPodsService(
  spec: StackSpec,
  model: ModelSpec,
): IService & { metadata: { name: string } } {
  const service = serviceName(model.name, spec.environment);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      ...meta(spec, model, podsServiceName(service)),
      labels: {
        ...modelLabels(model.name, spec.environment),
        "app.kubernetes.io/component": POD_DISCOVERY_COMPONENT,
      },
    },
    spec: {
      clusterIP: "None",
      selector: modelSelector(model.name, spec.environment),
      ports: [{ name: "http", port: VLLM_PORT, targetPort: "http", protocol: "TCP" }],
      publishNotReadyAddresses: false,
    },
  };
}

/** Only when there is more than one replica: a PDB on a single replica blocks node drains forever. */
export function buildModelDisruptionBudget(
  spec: StackSpec,
  model: ModelSpec,
): (IPodDisruptionBudget & { metadata: { name: string } }) | undefined {
  if (podCount(model) < 2) return undefined;
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta(spec, model),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: modelSelector(model.name, spec.environment) },
      // A pod that never became ready (e.g. a bad rollout) must not block node drains.
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    },
  };
}

export function buildModelNetworkPolicy(
  spec: StackSpec,
  model: ModelSpec,
): INetworkPolicy & { metadata: { name: string } } {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta(spec, model),
    spec: {
      podSelector: { matchLabels: modelSelector(model.name, spec.environment) },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: routerSelector(spec.environment) } }],
          ports: [{ port: VLLM_PORT, protocol: "TCP" }],
        },
        {
          from: [
            {
              namespaceSelector: {
                matchLabels: { "kubernetes.io/metadata.name": spec.monitoring.prometheusNamespace },
              },
            },
          ],
          ports: [{ port: VLLM_PORT, protocol: "TCP" }],
        },
      ],
      // Weights are downloaded from the model hub over HTTPS on first start.
      egress: [{ ports: [{ port: 443, protocol: "TCP" }] }],
    },
  };
}

export function buildModelServiceMonitor(
  spec: StackSpec,
  model: ModelSpec,
): (IServiceMonitor & { metadata: { name: string } }) | undefined {
  if (!spec.monitoring.serviceMonitor) return undefined;
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: {
      ...meta(spec, model),
      labels: {
        ...modelLabels(model.name, spec.environment),
        release: spec.monitoring.prometheusRelease,
      },
    },
    spec: {
      // The model's Service only: the headless pods Service has the same endpoints, and a
      // ServiceMonitor makes one target per endpoint of every Service it selects, so selecting
      // both would scrape each pod twice and double every sum over vLLM's series.
      selector: {
        matchLabels: {
          ...modelSelector(model.name, spec.environment),
          "app.kubernetes.io/component": MODEL_SERVER_COMPONENT,
        },
      },
      namespaceSelector: { matchNames: [spec.namespace] },
      endpoints: [{ port: "http", path: "/metrics", interval: "30s", scrapeTimeout: "10s" }],
    },
  };
}

/** Every Kubernetes object of one model, in apply order. */
export function buildModelObjects(spec: StackSpec, model: ModelSpec) {
  return {
    cacheClaim: buildModelCacheClaim(spec, model),
    deployment: buildModelDeployment(spec, model),
    service: buildModelService(spec, model),
    podsService: buildModelPodsService(spec, model),
    disruptionBudget: buildModelDisruptionBudget(spec, model),
    networkPolicy: buildModelNetworkPolicy(spec, model),
    serviceMonitor: buildModelServiceMonitor(spec, model),
  };
}
