// Pure builders: the router's Kubernetes objects for one stack (Deployment, Service, autoscaler, PDB, NetworkPolicy).
import { createHash } from "node:crypto";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyEgressRule } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyEgressRule";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { ROUTER_CONNECTIONS_PER_PROCESS } from "@vllm-fleet/registry";
import {
  REGISTRY_URL_SECRET_KEY,
  ROUTER_ENV as ENV,
  ROUTER_METRICS_PORT,
  ROUTER_PORT,
} from "@vllm-fleet/router/contract";
import type { StackSpec } from "../spec";
import {
  AFFINITY_LOAD_FACTOR,
  routerLabels,
  routerSelector,
  ROUTING_ENV,
  VLLM_PORT,
} from "../spec";
import { dnsEgress } from "./environmentManifests";
import type { SecretManifest } from "./manifest";

type Named<T> = T & { metadata: { name: string } };

/** Name of the router's Deployment, Service and friends (one router per stack namespace). */
export const ROUTER_NAME = "vllm-router";
/**
 * The Service's port for the router's API (ROUTER_PORT). Metrics (ROUTER_METRICS_PORT) are apart
 * from the API: they name every model, so only Prometheus may reach them (NetworkPolicy).
 */
export const ROUTER_SERVICE_PORT = 80;
/** Namespaces whose pods may call the router carry this label with value "true". */
export const ROUTER_CLIENT_LABEL = "vllm.ai/router-client";
/** Secret (created by the router component) holding the Redis URL, which may carry a password. */
export const ROUTER_REDIS_SECRET_NAME = "vllm-router-redis";
/** Secret (created by RegistryAccess) holding the router's read-only registry URL. */
export const ROUTER_REGISTRY_SECRET_NAME = "vllm-router-registry";
/** Key of the API-keys Secret (`router.apiKeysSecret`) holding one key per line. */
export const API_KEYS_KEY = "keys";
const API_KEYS_DIR = "/etc/vllm-router/api-keys";
/** ConfigMap with the registry's CA certificate (`registry.sslrootcert`); a CA is public. */
export const ROUTER_REGISTRY_CA_NAME = "vllm-router-registry-ca";
export const REGISTRY_CA_KEY = "ca.crt";
const REGISTRY_CA_DIR = "/etc/vllm-router/registry-ca";
/** The image's numeric non-root user (router/Dockerfile `USER`). */
export const ROUTER_UID = 10001;

/**
 * Shutdown timing: kubelet runs the preStop sleep while endpoints drop the pod (it keeps
 * serving), then SIGTERM: the router fails readiness, serves `SHUTDOWN_DELAY` more, then
 * drains in-flight requests and streams for up to `DRAIN`. The grace period covers all three.
 */
export const ROUTER_PRESTOP_SECONDS = 5;
export const ROUTER_SHUTDOWN_DELAY_SECONDS = 2;
export const ROUTER_DRAIN_SECONDS = 60;
export const ROUTER_TERMINATION_GRACE_SECONDS =
  ROUTER_PRESTOP_SECONDS + ROUTER_SHUTDOWN_DELAY_SECONDS + ROUTER_DRAIN_SECONDS + 5;

/** What the builders need besides the stack: values known only at deploy time. */
export interface RouterWiring {
  /** Image reference pinned by digest (`registry/vllm-router:tag@sha256:...`). */
  image: string;
  /** Secret whose REGISTRY_URL_SECRET_KEY is the router's registry URL. */
  registrySecretName: string;
}

/** The router's in-cluster URL (what clients in other namespaces call). */
export function routerUrl(namespace: string): string {
  return `http://${ROUTER_NAME}.${namespace}.svc.cluster.local`;
}

/** Where the router's objects live: the stack's namespace, labelled for its environment. */
type RouterPlace = Pick<StackSpec, "environment" | "namespace">;

/** Name, namespace and labels of the router's objects: known before any deploy-time value. */
export function routerMetadata(spec: RouterPlace) {
  return { name: ROUTER_NAME, namespace: spec.namespace, labels: routerLabels(spec.environment) };
}

/** The Redis URL in a Secret, so a password in it never lands in the Deployment spec. */
export function buildRouterRedisSecret<T>(spec: RouterPlace, redisUrl: T): SecretManifest<T> {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { ...routerMetadata(spec), name: ROUTER_REDIS_SECRET_NAME },
    type: "Opaque",
    stringData: { [ENV.redisUrl]: redisUrl },
  };
}

/** The router's read-only registry URL in a Secret (the Deployment's DATABASE_URL). */
export function buildRouterRegistrySecret<T>(spec: RouterPlace, url: T): SecretManifest<T> {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { ...routerMetadata(spec), name: ROUTER_REGISTRY_SECRET_NAME },
    type: "Opaque",
    stringData: { [REGISTRY_URL_SECRET_KEY]: url },
  };
}

/** The registry's CA certificate, mounted read-only into the router (REGISTRY_SSLROOTCERT). */
export function buildRouterRegistryCa(spec: StackSpec): Named<IConfigMap> | undefined {
  if (!spec.registry.caCertificate) return undefined;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { ...routerMetadata(spec), name: ROUTER_REGISTRY_CA_NAME },
    data: { [REGISTRY_CA_KEY]: spec.registry.caCertificate },
  };
}

/**
 * The router's routing variables (router.routing): the mode always, so the Deployment shows it;
 * the load factor in mode scored, the only one that bounds load (the router's default unless set).
 */
export function routingEnv(
  routing: StackSpec["router"]["routing"],
): { name: string; value: string }[] {
  return [
    { name: ROUTING_ENV.mode, value: routing.mode },
    ...(routing.mode === "scored"
      ? [
          {
            name: ROUTING_ENV.affinityLoadFactor,
            value: String(routing.affinityLoadFactor ?? AFFINITY_LOAD_FACTOR.default),
          },
        ]
      : []),
  ];
}

export function buildRouterDeployment(spec: StackSpec, wiring: RouterWiring): Named<IDeployment> {
  const secretEnv = (name: string, secret: string, key: string) => ({
    name,
    valueFrom: { secretKeyRef: { name: secret, key } },
  });
  const ca = spec.registry.caCertificate;
  const env = [
    { name: ENV.environment, value: spec.environment },
    { name: ENV.port, value: String(ROUTER_PORT) },
    { name: ENV.metricsPort, value: String(ROUTER_METRICS_PORT) },
    { name: ENV.logLevel, value: "info" },
    { name: ENV.shutdownDelayMs, value: String(ROUTER_SHUTDOWN_DELAY_SECONDS * 1000) },
    { name: ENV.drainTimeoutMs, value: String(ROUTER_DRAIN_SECONDS * 1000) },
    secretEnv(ENV.databaseUrl, wiring.registrySecretName, REGISTRY_URL_SECRET_KEY),
    ...(spec.redis.url ? [secretEnv(ENV.redisUrl, ROUTER_REDIS_SECRET_NAME, ENV.redisUrl)] : []),
    ...(spec.router.apiKeysSecret
      ? [{ name: ENV.apiKeysFile, value: `${API_KEYS_DIR}/${API_KEYS_KEY}` }]
      : []),
    ...(ca ? [{ name: ENV.registryCa, value: `${REGISTRY_CA_DIR}/${REGISTRY_CA_KEY}` }] : []),
    ...routingEnv(spec.router.routing),
  ];
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: routerMetadata(spec),
    spec: {
      // No `replicas`: the HPA owns the count (minReplicas = router.replicas); a value here
      // would scale the router back down on every `pulumi up`.
      selector: { matchLabels: routerSelector(spec.environment) },
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: { maxUnavailable: 0, maxSurge: ROUTER_MAX_SURGE },
      },
      template: {
        metadata: {
          labels: routerLabels(spec.environment),
          // The router reads the CA once at start: a new CA must roll the pods.
          ...(ca
            ? {
                annotations: {
                  "vllm.ai/registry-ca-sha256": createHash("sha256").update(ca).digest("hex"),
                },
              }
            : {}),
        },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: ROUTER_TERMINATION_GRACE_SECONDS,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: ROUTER_UID,
            runAsGroup: ROUTER_UID,
            seccompProfile: { type: "RuntimeDefault" },
          },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: { matchLabels: routerSelector(spec.environment) },
            },
          ],
          containers: [
            {
              name: "router",
              image: wiring.image,
              imagePullPolicy: "IfNotPresent",
              env,
              ports: [
                { name: "http", containerPort: ROUTER_PORT, protocol: "TCP" },
                { name: "metrics", containerPort: ROUTER_METRICS_PORT, protocol: "TCP" },
              ],
              readinessProbe: {
                httpGet: { path: "/readyz", port: "http" },
                periodSeconds: 5,
                failureThreshold: 2,
              },
              livenessProbe: {
                httpGet: { path: "/healthz", port: "http" },
                periodSeconds: 10,
                failureThreshold: 3,
                timeoutSeconds: 2,
              },
              lifecycle: {
                preStop: { exec: { command: ["sleep", String(ROUTER_PRESTOP_SECONDS)] } },
              },
              resources: {
                // The /tmp emptyDir (64Mi) and the container's logs live on node disk.
                requests: { cpu: "250m", memory: "128Mi", "ephemeral-storage": "256Mi" },
                limits: { cpu: "2", memory: "512Mi" },
              },
              securityContext: {
                runAsNonRoot: true,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
                seccompProfile: { type: "RuntimeDefault" },
              },
              volumeMounts: [
                { name: "tmp", mountPath: "/tmp" },
                ...(spec.router.apiKeysSecret
                  ? [{ name: "api-keys", mountPath: API_KEYS_DIR, readOnly: true }]
                  : []),
                ...(ca
                  ? [{ name: "registry-ca", mountPath: REGISTRY_CA_DIR, readOnly: true }]
                  : []),
              ],
            },
          ],
          volumes: [
            { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
            ...(spec.router.apiKeysSecret
              ? [
                  {
                    name: "api-keys",
                    secret: { secretName: spec.router.apiKeysSecret, defaultMode: 0o440 },
                  },
                ]
              : []),
            ...(ca
              ? [
                  {
                    name: "registry-ca",
                    configMap: { name: ROUTER_REGISTRY_CA_NAME, defaultMode: 0o444 },
                  },
                ]
              : []),
          ],
        },
      },
    },
  };
}

export function buildRouterService(spec: StackSpec): Named<IService> {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: routerMetadata(spec),
    spec: {
      type: "ClusterIP",
      selector: routerSelector(spec.environment),
      // The ServiceMonitor scrapes through the Service's named `metrics` port; the
      // NetworkPolicy keeps everyone but Prometheus off it.
      ports: [
        { name: "http", port: ROUTER_SERVICE_PORT, targetPort: "http", protocol: "TCP" },
        { name: "metrics", port: ROUTER_METRICS_PORT, targetPort: "metrics", protocol: "TCP" },
      ],
    },
  };
}

/** Extra router pods a rollout adds next to the ones it replaces. */
export const ROUTER_MAX_SURGE = 1;

/**
 * The router role's connection limit: every pod the autoscaler and a rollout can run at once,
 * each with all the registry connections one router process may hold. Below it, the pods the
 * autoscaler adds under load would be refused ("too many connections for role").
 */
export function routerConnectionLimit(spec: StackSpec): number {
  const pods = buildRouterAutoscaler(spec).spec!.maxReplicas + ROUTER_MAX_SURGE;
  return pods * ROUTER_CONNECTIONS_PER_PROCESS;
}

/** Scales on CPU between router.replicas and four times that. */
export function buildRouterAutoscaler(spec: StackSpec): Named<IHorizontalPodAutoscaler> {
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: routerMetadata(spec),
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: ROUTER_NAME },
      minReplicas: spec.router.replicas,
      maxReplicas: Math.max(spec.router.replicas * 4, 2),
      metrics: [
        {
          type: "Resource",
          resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } },
        },
      ],
      behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
    },
  };
}

/** One router pod may be down at a time; none with a single replica (it would block node drains). */
export function buildRouterDisruptionBudget(
  spec: StackSpec,
): Named<IPodDisruptionBudget> | undefined {
  if (spec.router.replicas < 2) return undefined;
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: routerMetadata(spec),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: routerSelector(spec.environment) },
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    },
  };
}

/** `host:port` of a URL-ish string, or undefined. */
function hostPort(url: string, defaultPort: number): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    return { host: u.hostname, port: u.port ? Number(u.port) : defaultPort };
  } catch {
    return undefined;
  }
}

/**
 * Egress to a server by host name: in-cluster Service names (`svc.ns.svc.cluster.local`)
 * become a namespace selector; anything else can only be matched by port.
 */
function egressTo(host: string, port: number): INetworkPolicyEgressRule {
  const inCluster = /^[^.]+\.([^.]+)\.svc(\.cluster\.local)?$/.exec(host);
  return {
    to: inCluster
      ? [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": inCluster[1] } } }]
      : [{ ipBlock: { cidr: "0.0.0.0/0" } }],
    ports: [{ port, protocol: "TCP" }],
  };
}

/**
 * Ingress from namespaces labelled `vllm.ai/router-client: "true"` to the API port only, and
 * from Prometheus to the metrics port only (a NetworkPolicy port is the pod's port, after the
 * Service's translation); egress only to vLLM pods of this namespace, the registry's
 * PostgreSQL and Redis, and DNS. Kubelet probes come from the node, which NetworkPolicy
 * always allows (https://kubernetes.io/docs/concepts/services-networking/network-policies/).
 */
export function buildRouterNetworkPolicy(spec: StackSpec): Named<INetworkPolicy> {
  const redis = spec.redis.url ? hostPort(spec.redis.url, 6379) : undefined;
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: routerMetadata(spec),
    spec: {
      podSelector: { matchLabels: routerSelector(spec.environment) },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { [ROUTER_CLIENT_LABEL]: "true" } } }],
          ports: [{ port: ROUTER_PORT, protocol: "TCP" }],
        },
        {
          from: [
            {
              namespaceSelector: {
                matchLabels: { "kubernetes.io/metadata.name": spec.monitoring.prometheusNamespace },
              },
            },
          ],
          ports: [{ port: ROUTER_METRICS_PORT, protocol: "TCP" }],
        },
      ],
      egress: [
        {
          to: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "vllm" } } }],
          ports: [{ port: VLLM_PORT, protocol: "TCP" }],
        },
        egressTo(spec.registry.host, spec.registry.port),
        ...(redis ? [egressTo(redis.host, redis.port)] : []),
        dnsEgress(),
      ],
    },
  };
}

export function buildRouterServiceMonitor(spec: StackSpec): Named<IServiceMonitor> | undefined {
  if (!spec.monitoring.serviceMonitor) return undefined;
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: {
      ...routerMetadata(spec),
      labels: { ...routerLabels(spec.environment), release: spec.monitoring.prometheusRelease },
    },
    spec: {
      selector: { matchLabels: routerSelector(spec.environment) },
      namespaceSelector: { matchNames: [spec.namespace] },
      endpoints: [{ port: "metrics", path: "/metrics", interval: "15s", scrapeTimeout: "10s" }],
    },
  };
}

/**
 * Every router object of a stack in apply order, as render and the policy tests see it: not the
 * Secrets, whose values stay in Pulumi state, nor the image, which is built or given.
 */
export function buildRouterObjects(spec: StackSpec, wiring: RouterWiring) {
  return {
    registryCa: buildRouterRegistryCa(spec),
    deployment: buildRouterDeployment(spec, wiring),
    service: buildRouterService(spec),
    autoscaler: buildRouterAutoscaler(spec),
    disruptionBudget: buildRouterDisruptionBudget(spec),
    networkPolicy: buildRouterNetworkPolicy(spec),
    serviceMonitor: buildRouterServiceMonitor(spec),
  };
}
