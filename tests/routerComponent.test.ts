// The router component: pure builders checked against the Kubernetes schemas and each other,
// and RouterService under Pulumi mocks (image built and deployed by digest).
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT, modelLabels, loadStackSpec } from "../components/spec";
import {
  schemaProblems,
  buildRouterDeployment,
  buildRouterObjects,
  buildRouterRedisSecret,
  ROUTER_DRAIN_SECONDS,
  ROUTER_PRESTOP_SECONDS,
  ROUTER_SHUTDOWN_DELAY_SECONDS,
  buildRouterRegistrySecret,
  routerUrl,
} from "../components/manifests";
import { ROUTER_METRICS_PORT, ROUTER_PORT } from "@vllm-fleet/router/contract";
import { readRouterConfig } from "../router/src/config";
import type { Manifest } from "../components/manifests";
import { registryAddress, RouterService } from "../components/resources";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const wiring = {
  image: `registry.example/vllm-router:staging@${DIGEST}`,
  registrySecretName: "vllm-router-registry",
};

/** True when every label of `selector` is on `labels`. */
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  !!selector && Object.entries(selector).every(([k, v]) => labels[k] === v);

describe("router manifests", () => {
  for (const stack of ["development", "staging", "production"]) {
    it(`are schema-valid and consistent for ${stack}`, () => {
      const s = loadStackSpec(stack);
      const objs = buildRouterObjects(s, wiring);
      const present = Object.values(objs).filter(
        (o): o is NonNullable<typeof o> => o !== undefined,
      ) as Manifest[];
      assert.deepEqual(present.flatMap(schemaProblems), []);
      const pod = objs.deployment.spec!.template;
      const podLabels = pod.metadata!.labels!;
      assert.ok(selects(objs.deployment.spec!.selector.matchLabels, podLabels));
      assert.ok(selects(objs.service.spec!.selector, podLabels), "Service selects the router pods");
      assert.ok(
        selects(objs.networkPolicy.spec!.podSelector.matchLabels, podLabels),
        "NetworkPolicy selects the router pods",
      );
      assert.ok(selects(objs.serviceMonitor?.spec.selector.matchLabels, podLabels));
      assert.equal(objs.autoscaler.spec!.scaleTargetRef.name, objs.deployment.metadata.name);
      assert.equal(objs.autoscaler.spec!.minReplicas, s.router.replicas);
      assert.equal(objs.deployment.spec!.replicas, undefined, "the HPA owns the replica count");
      assert.equal(!!objs.disruptionBudget, s.router.replicas > 1);
      assert.equal(routerUrl(s.namespace), `http://vllm-router.${s.namespace}.svc.cluster.local`);
    });
  }

  it("runs PSS-restricted: non-root, read-only root, no escalation, no capabilities, no token", () => {
    const pod = buildRouterObjects(loadStackSpec("production"), wiring).deployment.spec!.template
      .spec!;
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.enableServiceLinks, false);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault");
    const c = pod.containers[0];
    assert.equal(c.image, wiring.image);
    assert.deepEqual(c.securityContext, {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    assert.ok(c.resources?.requests && c.resources.limits);
    assert.notDeepEqual(c.readinessProbe?.httpGet?.path, c.livenessProbe?.httpGet?.path);
  });

  it("takes secrets from Secrets only and matches the grace period to the drain", () => {
    const s = {
      ...loadStackSpec("production"),
      router: { ...loadStackSpec("production").router, apiKeysSecret: "router-api-keys" },
    };
    const objs = buildRouterObjects(s, wiring);
    const pod = objs.deployment.spec!.template.spec!;
    const env = Object.fromEntries(pod.containers[0].env!.map((e) => [e.name, e]));
    const registrySecret = buildRouterRegistrySecret(s, "postgresql://router@db/r");
    assert.equal(env.DATABASE_URL.valueFrom?.secretKeyRef?.name, wiring.registrySecretName);
    assert.ok(env.DATABASE_URL.valueFrom!.secretKeyRef!.key! in registrySecret.stringData);
    assert.equal(env.REDIS_URL.value, undefined);
    const redisSecret = buildRouterRedisSecret(s, s.redis.url);
    assert.equal(env.REDIS_URL.valueFrom?.secretKeyRef?.name, redisSecret.metadata.name);
    assert.ok(env.REDIS_URL.valueFrom!.secretKeyRef!.key! in redisSecret.stringData);
    assert.equal(env.ROUTER_API_KEYS_FILE.value, "/etc/vllm-router/api-keys/keys");
    assert.ok(pod.volumes!.some((v) => v.secret?.secretName === "router-api-keys"));
    assert.ok(
      !JSON.stringify(objs.deployment).includes("rediss://"),
      "no Redis URL in the Deployment",
    );
    assert.equal(Number(env.ROUTER_DRAIN_TIMEOUT_MS.value), ROUTER_DRAIN_SECONDS * 1000);
    assert.deepEqual(pod.containers[0].lifecycle?.preStop?.exec?.command, [
      "sleep",
      String(ROUTER_PRESTOP_SECONDS),
    ]);
    assert.ok(
      pod.terminationGracePeriodSeconds! >
        ROUTER_PRESTOP_SECONDS + ROUTER_SHUTDOWN_DELAY_SECONDS + ROUTER_DRAIN_SECONDS,
    );
  });

  it("mounts the registry CA from a ConfigMap read-only and points REGISTRY_SSLROOTCERT at it", () => {
    const CA = "-----BEGIN CERTIFICATE-----\nregistry CA\n-----END CERTIFICATE-----\n";
    const withCa = (ca: string) => {
      const s = loadStackSpec("production");
      return buildRouterObjects({ ...s, registry: { ...s.registry, caCertificate: ca } }, wiring);
    };
    const objs = withCa(CA);
    assert.deepEqual(schemaProblems(objs.registryCa as Manifest), []);
    assert.equal(objs.registryCa?.data?.["ca.crt"], CA);
    const template = objs.deployment.spec!.template;
    const pod = template.spec!;
    const c = pod.containers[0];
    const file = c.env!.find((e) => e.name === "REGISTRY_SSLROOTCERT")!.value!;
    // The file is `<mountPath>/<key>` of a configMap volume (a projected key is a file named by
    // it: https://kubernetes.io/docs/concepts/configuration/configmap/#using-configmaps-as-files-from-a-pod).
    const mount = c.volumeMounts!.find((m) => file === `${m.mountPath}/ca.crt`)!;
    assert.equal(mount.readOnly, true);
    const volume = pod.volumes!.find((v) => v.name === mount.name)!;
    assert.equal(volume.configMap?.name, objs.registryCa?.metadata.name);
    assert.equal(
      c.securityContext?.readOnlyRootFilesystem,
      true,
      "root filesystem stays read-only",
    );
    // A new CA changes the pod template, so the pods restart and read it (it is read at start).
    const other = withCa(CA.replace("registry CA", "rotated CA")).deployment.spec!.template;
    assert.notDeepEqual(template.metadata?.annotations, other.metadata?.annotations);

    const none = buildRouterObjects(loadStackSpec("production"), wiring);
    assert.equal(none.registryCa, undefined);
    assert.ok(!JSON.stringify(none.deployment).includes("REGISTRY_SSLROOTCERT"));
  });

  it("sets an environment the router accepts: it listens on the container's ports with the Secrets' values", () => {
    const s = {
      ...loadStackSpec("production"),
      router: { ...loadStackSpec("production").router, apiKeysSecret: "router-api-keys" },
    };
    const objs = buildRouterObjects(s, wiring);
    const container = objs.deployment.spec!.template.spec!.containers[0];
    // What the kubelet gives the process: values, and Secret keys resolved from the Secrets.
    const registry = buildRouterRegistrySecret(s, "postgresql://router@db:5432/r");
    const redis = buildRouterRedisSecret(s, s.redis.url!);
    const secrets: Record<string, Record<string, string>> = {
      [wiring.registrySecretName]: registry.stringData,
      [redis.metadata.name]: redis.stringData,
    };
    const env = Object.fromEntries(
      container.env!.map((e) => {
        const ref = e.valueFrom?.secretKeyRef;
        return [e.name, ref ? secrets[ref.name!][ref.key] : e.value];
      }),
    );
    const config = readRouterConfig(env);
    const containerPort = (name: string) =>
      container.ports!.find((p) => p.name === name)?.containerPort;
    assert.equal(config.port, containerPort("http"));
    assert.equal(config.metricsPort, containerPort("metrics"));
    assert.equal(config.environment, s.environment);
    assert.equal(config.databaseUrl, "postgresql://router@db:5432/r");
    assert.equal(config.redisUrl, s.redis.url);
    assert.equal(config.apiKeysFile, "/etc/vllm-router/api-keys/keys");
    assert.equal(config.shutdownDelayMs, ROUTER_SHUTDOWN_DELAY_SECONDS * 1000);
    assert.equal(config.drainTimeoutMs, ROUTER_DRAIN_SECONDS * 1000);
  });

  it("serves metrics on a port of their own that the ServiceMonitor scrapes by name, apart from the API port", () => {
    const objs = buildRouterObjects(loadStackSpec("production"), wiring);
    const container = objs.deployment.spec!.template.spec!.containers[0];
    const env = Object.fromEntries(container.env!.map((e) => [e.name, e.value]));
    assert.equal(env.PORT, String(ROUTER_PORT));
    assert.equal(env.METRICS_PORT, String(ROUTER_METRICS_PORT));
    assert.notEqual(ROUTER_METRICS_PORT, ROUTER_PORT);
    const containerPort = (name: unknown) =>
      container.ports!.find((p) => p.name === name)?.containerPort;
    // ServiceMonitor endpoints[].port is the *name* of a Service port (prometheus-operator
    // API, Endpoint.port); the Service port's targetPort names the container port.
    const endpoint = objs.serviceMonitor!.spec.endpoints![0];
    const servicePort = (name: unknown) => objs.service.spec!.ports!.find((p) => p.name === name);
    assert.equal(endpoint.path, "/metrics");
    assert.equal(containerPort(servicePort(endpoint.port)?.targetPort), ROUTER_METRICS_PORT);
    assert.equal(containerPort(servicePort("http")?.targetPort), ROUTER_PORT);
    // Probes stay on the API port (kubelet probes from the node pass any NetworkPolicy).
    assert.equal(container.readinessProbe!.httpGet!.port, "http");
  });

  it("lets traffic in from client namespaces and Prometheus, and out only to vLLM, the registry, Redis and DNS", () => {
    const s = loadStackSpec("staging");
    const np = buildRouterObjects(s, wiring).networkPolicy.spec!;
    assert.deepEqual(np.policyTypes, ["Ingress", "Egress"]);
    const from = np.ingress!.flatMap((r) => r.from!.map((f) => f.namespaceSelector?.matchLabels));
    assert.deepEqual(from, [
      { "vllm.ai/router-client": "true" },
      { "kubernetes.io/metadata.name": s.monitoring.prometheusNamespace },
    ]);
    // NetworkPolicyPort.port is the pod's port (numeric or named), not the Service's
    // (k8s.io/api networking/v1 types.go): clients reach the API port only, Prometheus the
    // metrics port only.
    assert.deepEqual(
      np.ingress!.map((r) => r.ports),
      [[{ port: ROUTER_PORT, protocol: "TCP" }], [{ port: ROUTER_METRICS_PORT, protocol: "TCP" }]],
    );
    const [vllm, postgres, redis, dns] = np.egress!;
    for (const m of s.models)
      assert.ok(
        selects(vllm.to![0].podSelector?.matchLabels, modelLabels(m.name, s.environment)),
        m.name,
      );
    assert.deepEqual(vllm.ports, [{ port: 8000, protocol: "TCP" }]);
    // The stacks' registry is outside the cluster: only its port is opened.
    assert.deepEqual(postgres.to, [{ ipBlock: { cidr: "0.0.0.0/0" } }]);
    assert.deepEqual(postgres.ports, [{ port: 5432, protocol: "TCP" }]);
    const inCluster = buildRouterObjects(
      {
        ...s,
        registry: { ...s.registry, host: "registry-postgresql.platform-data.svc.cluster.local" },
      },
      wiring,
    ).networkPolicy.spec!.egress![1];
    assert.deepEqual(inCluster.to, [
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "platform-data" } } },
    ]);
    assert.deepEqual(redis.ports, [{ port: 6379, protocol: "TCP" }]);
    assert.deepEqual(
      dns.ports?.map((p) => p.port),
      [53, 53],
    );
    assert.equal(np.egress!.length, 4);
  });
});

describe("router.routing on the router Deployment", () => {
  /** The Deployment's literal env (secrets stand in), as the router process reads it. */
  const deploymentEnv = (s: ReturnType<typeof loadStackSpec>) => {
    const env = buildRouterDeployment(s, wiring).spec!.template.spec!.containers[0].env!;
    const secrets: Record<string, string> = {
      DATABASE_URL: "postgresql://u@db:5432/r",
      REDIS_URL: "redis://cache:6379/0",
    };
    return Object.fromEntries(env.map((e) => [e.name, e.value ?? secrets[e.name]]));
  };

  for (const [stack, mode, factor] of [
    ["development", "scored", 2], // the router's default
    ["staging", "scored", 2],
    ["production", "service", undefined],
  ] as const)
    it(`${stack}: mode ${mode}, read back by the router's own config reader`, () => {
      const env = deploymentEnv(loadStackSpec(stack));
      assert.equal(env.ROUTER_ROUTING_MODE, mode);
      // The factor only in mode scored, the one mode that bounds load.
      assert.equal(
        env.ROUTER_AFFINITY_LOAD_FACTOR,
        factor === undefined ? undefined : String(factor),
      );
      const routing = readRouterConfig(env).routing;
      assert.equal(routing.mode, mode);
      if (factor !== undefined) assert.equal(routing.affinityLoadFactor, factor);
    });

  it("passes a stack's affinityLoadFactor as given; the router accepts every value the spec does", () => {
    const s = loadStackSpec("staging");
    for (const affinityLoadFactor of [1.01, 2, 10]) {
      const env = deploymentEnv({
        ...s,
        router: { ...s.router, routing: { mode: "scored", affinityLoadFactor } },
      });
      assert.equal(readRouterConfig(env).routing.affinityLoadFactor, affinityLoadFactor);
    }
    const leastLoaded = deploymentEnv({
      ...s,
      router: { ...s.router, routing: { mode: "least-loaded" } },
    });
    assert.equal(leastLoaded.ROUTER_ROUTING_MODE, "least-loaded");
    assert.equal(leastLoaded.ROUTER_AFFINITY_LOAD_FACTOR, undefined);
  });
});

describe("registryAddress", () => {
  // Docker's rule (distribution/reference normalize.go, splitDockerDomain): the first segment is a
  // registry host only with '.', ':', `localhost` or upper case; otherwise the name is Docker Hub's.
  const cases: [string, string][] = [
    ["ghcr.io/acme-ml/vllm-fleet", "ghcr.io"],
    ["registry.example:5000/platform", "registry.example:5000"],
    ["localhost/platform", "localhost"],
    ["Registry/platform", "Registry"],
    ["acme/platform", "docker.io"],
    ["platform", "docker.io"],
    ["index.docker.io/acme", "docker.io"],
  ];
  for (const [repository, address] of cases) {
    it(`logs in to ${address} to push to ${repository}`, () => {
      assert.equal(registryAddress(repository), address);
    });
  }
});

describe("RouterService under mocks", () => {
  const created: { type: string; name: string; inputs: Record<string, unknown> }[] = [];

  before(() => {
    pulumi.runtime.setMocks(
      {
        newResource(args) {
          created.push({ type: args.type, name: args.name, inputs: args.inputs });
          const state =
            args.type === "docker-build:index:Image"
              ? {
                  ...args.inputs,
                  ref: `${(args.inputs.tags as string[])[0]}@${DIGEST}`,
                  digest: DIGEST,
                }
              : args.inputs;
          return { id: `${args.name}-id`, state };
        },
        call: (args) => args.inputs,
      },
      PROJECT,
      "staging",
      false,
    );
  });

  const valueOf = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));

  it("builds the image, deploys it by digest and outputs the in-cluster URL", async () => {
    const s = loadStackSpec("staging");
    s.router.imageRegistry = "registry.example/platform";
    const router = new RouterService("router", {
      stack: s,
      // An Output, as RegistryAccess gives it: resolved before the Deployment is built.
      registrySecretName: pulumi.output("vllm-router-registry"),
    });
    assert.equal(await valueOf(router.url), "http://vllm-router.llm-staging.svc.cluster.local");
    const image = await valueOf(router.image);
    assert.equal(image, `registry.example/platform/vllm-router:staging@${DIGEST}`);
    await new Promise((r) => setTimeout(r, 100));
    const built = created.find((r) => r.type === "docker-build:index:Image")!;
    assert.equal(built.inputs.push, true);
    assert.match(
      String((built.inputs.dockerfile as { location: string }).location),
      /router\/Dockerfile$/,
    );
    const deployment = created.find((r) => r.type === "kubernetes:apps/v1:Deployment")!;
    const pod = (
      deployment.inputs.spec as { template: { spec: { containers: { image: string }[] } } }
    ).template.spec;
    assert.equal(pod.containers[0].image, image);
    // One builder call with the deploy-time values: nothing in the Deployment is a stand-in.
    const { metadata, spec } = buildRouterDeployment(s, {
      image,
      registrySecretName: "vllm-router-registry",
    });
    assert.deepEqual(
      { metadata: deployment.inputs.metadata, spec: deployment.inputs.spec },
      JSON.parse(JSON.stringify({ metadata, spec })),
    );
    const types = created.map((r) => r.type).sort();
    for (const t of [
      "kubernetes:core/v1:Secret",
      "kubernetes:core/v1:Service",
      "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
      "kubernetes:policy/v1:PodDisruptionBudget",
      "kubernetes:networking.k8s.io/v1:NetworkPolicy",
      "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
    ]) {
      assert.ok(types.includes(t), `missing ${t}`);
    }
    const secret = created.find((r) => r.type === "kubernetes:core/v1:Secret")!;
    assert.ok(
      !JSON.stringify(deployment.inputs).includes("redis://"),
      "the Redis URL stays in its Secret",
    );
    assert.ok(JSON.stringify(secret.inputs).includes("redis://"));
  });

  it("creates the registry CA ConfigMap from registry.sslrootcert", async () => {
    const s = loadStackSpec("staging");
    s.router.image = `registry.example/vllm-router@${DIGEST}`;
    s.registry = { ...s.registry, caCertificate: "-----BEGIN CERTIFICATE-----\n" };
    const router = new RouterService("with-ca", { stack: s, registrySecretName: "x" });
    await valueOf(router.deployment.urn);
    const [configMap] = created.filter(
      (r) => r.type === "kubernetes:core/v1:ConfigMap" && r.name === "with-ca-registry-ca",
    );
    assert.equal(
      (configMap.inputs.data as Record<string, string>)["ca.crt"],
      s.registry.caCertificate,
    );
  });

  it("deploys a prebuilt router.image as given, building nothing", async () => {
    const s = loadStackSpec("staging");
    s.router.image = `registry.example/vllm-router@${DIGEST}`;
    const images = created.filter((r) => r.type === "docker-build:index:Image").length;
    const prebuilt = new RouterService("prebuilt", { stack: s, registrySecretName: "x" });
    assert.equal(await valueOf(prebuilt.image), s.router.image);
    assert.equal(created.filter((r) => r.type === "docker-build:index:Image").length, images);
  });
});
