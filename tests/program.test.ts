import * as pulumi from "@pulumi/pulumi";
import { ROUTER_POOL_MAX } from "@vllm-fleet/registry";
import { strict as assert } from "node:assert";
import {
  MOCK_ADMIN_PASSWORD,
  MOCK_GENERATED_PASSWORD,
  MOCK_HF_TOKEN,
  MOCK_IMAGE_DIGEST,
  ProgramError,
  runProgram,
  ProgramRun,
} from "./support/program";
import { modelEndpoint, loadStackSpec } from "../components/spec";
import { podsServiceName } from "@vllm-fleet/router/routing";
import { registryStackProblems } from "../components/resources";

const STACKS = ["development", "staging", "production"] as const;
const REGISTRY_ENTRY = "pulumi-nodejs:dynamic/vllm-registry:RegistryEntry";
const K = {
  deployment: "kubernetes:apps/v1:Deployment",
  service: "kubernetes:core/v1:Service",
  pdb: "kubernetes:policy/v1:PodDisruptionBudget",
  netpol: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
  serviceMonitor: "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
  namespace: "kubernetes:core/v1:Namespace",
  quota: "kubernetes:core/v1:ResourceQuota",
};

/** JSON of a resource's inputs with every secret-wrapped value removed. */
function plainText(inputs: unknown): string {
  return JSON.stringify(inputs, (_k, v) =>
    v &&
    typeof v === "object" &&
    v[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig
      ? "[secret]"
      : v,
  );
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

for (const stack of STACKS) {
  describe(`program under mocks: ${stack}`, () => {
    let run: ProgramRun;
    before(async () => {
      run = await runProgram(stack);
    });

    it("gives every Kubernetes resource the explicit provider", () => {
      const k8s = run.resources.filter(
        (r) => r.type.startsWith("kubernetes:") && !r.type.startsWith("pulumi:providers"),
      );
      assert.ok(k8s.length > 5);
      for (const r of k8s)
        assert.match(
          r.provider ?? "",
          /pulumi:providers:kubernetes::kubernetes::/,
          `${r.type} ${r.name} has no explicit provider`,
        );
    });

    it("schedules each model on GPU nodes with requests equal to limits", () => {
      const deps = run
        .ofType(K.deployment)
        .filter((d) => d.inputs.metadata.labels["app.kubernetes.io/name"] === "vllm");
      assert.ok(deps.length >= 1);
      for (const d of deps) {
        const pod = d.inputs.spec.template.spec;
        const c = pod.containers.find((x: { name: string }) => x.name === "vllm");
        assert.equal(c.resources.requests["nvidia.com/gpu"], c.resources.limits["nvidia.com/gpu"]);
        assert.ok(Number(c.resources.limits["nvidia.com/gpu"]) >= 1);
        assert.equal(pod.nodeSelector["nvidia.com/gpu.present"], "true");
        assert.ok(pod.tolerations.some((t: { key: string }) => t.key === "nvidia.com/gpu"));
        assert.equal(pod.enableServiceLinks, false);
        assert.equal(pod.automountServiceAccountToken, false);
        assert.equal(d.inputs.spec.strategy.rollingUpdate.maxSurge, 0);
        assert.notDeepEqual(c.readinessProbe.httpGet.path, c.livenessProbe.httpGet.path);
        assert.ok(c.livenessProbe.failureThreshold >= 5);
        const budgetSeconds =
          Number(d.inputs.metadata.annotations["vllm.ai/startup-budget-minutes"]) * 60;
        assert.ok(c.startupProbe.failureThreshold * c.startupProbe.periodSeconds >= budgetSeconds);
        const tp = Number(/--tensor-parallel-size=(\d+)/.exec(c.args.join(" "))![1]);
        assert.equal(tp, Number(c.resources.limits["nvidia.com/gpu"]));
        const shm = pod.volumes.find((v: { name: string }) => v.name === "dshm");
        assert.equal(shm.emptyDir.medium, "Memory");
        assert.equal(shm.emptyDir.sizeLimit, tp > 1 ? `${4 * tp}Gi` : "2Gi");
      }
    });

    it("exports a predictable endpoint, Service name and registry key per model", () => {
      const ns = run.outputs.namespace as string;
      const models = run.outputs.models as Record<
        string,
        { endpoint: string; serviceName: string; registryKey: string }
      >;
      assert.ok(Object.keys(models).length >= 1);
      for (const [name, m] of Object.entries(models)) {
        assert.equal(m.serviceName, `${name}-${stack}`);
        assert.equal(m.endpoint, modelEndpoint(name, stack, ns));
        assert.equal(m.registryKey, `model_registry:${stack}:${name}`);
        const svc = run.ofType(K.service).find((s) => s.inputs.metadata.name === m.serviceName);
        assert.ok(svc, `Service ${m.serviceName} exists`);
        assert.equal(svc!.inputs.metadata.namespace, ns);
        assert.equal(svc!.inputs.spec.ports[0].port, 8000);
      }
    });

    it("selects the model pods from its Service, NetworkPolicy and ServiceMonitor", () => {
      for (const d of run
        .ofType(K.deployment)
        .filter((x) => x.inputs.metadata.labels["app.kubernetes.io/name"] === "vllm")) {
        const podLabels = d.inputs.spec.template.metadata.labels;
        const name = d.inputs.metadata.name;
        const svc = run.ofType(K.service).find((s) => s.inputs.metadata.name === name)!;
        assert.ok(matches(svc.inputs.spec.selector, podLabels));
        const np = run.ofType(K.netpol).find((n) => n.inputs.metadata.name === name)!;
        assert.ok(matches(np.inputs.spec.podSelector.matchLabels, podLabels));
        const sm = run.ofType(K.serviceMonitor).find((s) => s.inputs.metadata.name === name)!;
        assert.ok(matches(sm.inputs.spec.selector.matchLabels, svc.inputs.metadata.labels));
        assert.equal(sm.inputs.spec.endpoints[0].port, svc.inputs.spec.ports[0].name);
      }
    });

    it("adds each model a headless Service named by the router's podsServiceName, with the Service's selector and port, that no ServiceMonitor scrapes", () => {
      const models = run
        .ofType(K.deployment)
        .filter((x) => x.inputs.metadata.labels["app.kubernetes.io/name"] === "vllm");
      assert.ok(models.length > 0);
      for (const d of models) {
        const name = d.inputs.metadata.name;
        const svc = run.ofType(K.service).find((s) => s.inputs.metadata.name === name)!;
        const pods = run
          .ofType(K.service)
          .find((s) => s.inputs.metadata.name === podsServiceName(name))!;
        assert.ok(pods, `${name}: no headless Service ${podsServiceName(name)}`);
        assert.equal(pods.inputs.spec.clusterIP, "None");
        assert.equal(pods.inputs.spec.publishNotReadyAddresses, false);
        assert.deepEqual(pods.inputs.spec.selector, svc.inputs.spec.selector);
        assert.deepEqual(pods.inputs.spec.ports, svc.inputs.spec.ports);
        // One target per endpoint of each selected Service: a monitor selecting both would
        // scrape every pod twice.
        for (const sm of run.ofType(K.serviceMonitor))
          assert.ok(!matches(sm.inputs.spec.selector.matchLabels, pods.inputs.metadata.labels));
      }
    });

    it("creates a PDB exactly for models with more than one replica", () => {
      const deps = run
        .ofType(K.deployment)
        .filter((x) => x.inputs.metadata.labels["app.kubernetes.io/name"] === "vllm");
      for (const d of deps) {
        const pdb = run
          .ofType(K.pdb)
          .find((p) => p.inputs.metadata.name === d.inputs.metadata.name);
        assert.equal(Boolean(pdb), d.inputs.spec.replicas > 1, d.inputs.metadata.name);
        if (stack === "production")
          assert.ok(pdb, `production model ${d.inputs.metadata.name} has a PDB`);
      }
    });

    it("registers every model in the registry with its Service endpoint, keeping the password secret", () => {
      const entries = run.ofType(REGISTRY_ENTRY);
      const models = run.outputs.models as Record<string, { endpoint: string }>;
      assert.equal(entries.length, Object.keys(models).length);
      for (const e of entries) {
        assert.equal(e.inputs.environment, stack);
        assert.equal(e.inputs.endpoint, models[e.inputs.modelName].endpoint);
        assert.equal(e.inputs.managedBy, stack);
        assert.equal(e.inputs.enabled, true);
        // The engine receives the connection string wrapped as a secret, so state encrypts it.
        const conn = e.inputs.connectionString;
        assert.equal(
          conn[pulumi.runtime.specialSigKey],
          pulumi.runtime.specialSecretSig,
          "connectionString is a secret",
        );
        assert.match(
          conn.value,
          new RegExp(
            `^postgresql://vllm_registry_writer_${stack}:${MOCK_GENERATED_PASSWORD}@model-registry\\.db\\.acme-ml\\.internal:5432/model_registry\\?sslmode=`,
          ),
        );
      }
      const passwords = [MOCK_ADMIN_PASSWORD, MOCK_GENERATED_PASSWORD, MOCK_HF_TOKEN];
      for (const r of run.resources) {
        const text = plainText(r.inputs);
        for (const p of passwords)
          assert.ok(!text.includes(p), `${r.type} ${r.name} carries a password in plain text`);
      }
      // A stack output holding a password must be a secret: state encrypts it and
      // `pulumi stack output` prints "[secret]" without --show-secrets (pulumi/pulumi
      // pkg/backend/display/json.go massagePropertyValue).
      const exported = plainText(run.wireOutputs);
      for (const p of passwords)
        assert.ok(!exported.includes(p), `a stack output carries a password in plain text`);
    });

    it("exports the environment's writer URL as registryUrl, a secret", () => {
      const url = run.wireOutputs.registryUrl as Record<string, string>;
      assert.equal(url[pulumi.runtime.specialSigKey], pulumi.runtime.specialSecretSig);
      assert.match(
        url.value,
        new RegExp(`^postgresql://vllm_registry_writer_${stack}:${MOCK_GENERATED_PASSWORD}@`),
      );
      assert.equal(run.outputs.registryUrl, url.value);
    });

    it("deploys the router by digest and exports that image (routerImage) and its URL", () => {
      const images = run.ofType("docker-build:index:Image");
      const router = run
        .ofType(K.deployment)
        .find((d) => d.inputs.metadata.name === "vllm-router")!;
      const deployed = router.inputs.spec.template.spec.containers[0].image;
      if (stack === "production") {
        // Production runs the promoted image from its stack file and never builds one.
        assert.deepEqual(images, []);
        assert.match(deployed, /^ghcr\.io\/acme-ml\/vllm-fleet\/vllm-router@sha256:[0-9a-f]{64}$/);
      } else {
        assert.deepEqual(images[0].inputs.tags, [
          `ghcr.io/acme-ml/vllm-fleet/vllm-router:${stack}`,
        ]);
        assert.equal(images[0].inputs.push, true);
        assert.equal(deployed, `${images[0].inputs.tags[0]}@${MOCK_IMAGE_DIGEST}`);
      }
      assert.equal(run.outputs.routerImage, deployed, "routerImage is what the Deployment runs");
      assert.equal(
        run.outputs.routerUrl,
        `http://vllm-router.${run.outputs.namespace}.svc.cluster.local`,
      );
    });

    it("lets the router, and only the router and Prometheus, reach the model pods", () => {
      const routerPods = run
        .ofType(K.deployment)
        .find((d) => d.inputs.metadata.name === "vllm-router")!.inputs.spec.template.metadata
        .labels;
      for (const np of run
        .ofType(K.netpol)
        .filter((n) => n.inputs.metadata.labels?.["app.kubernetes.io/name"] === "vllm")) {
        const peers = np.inputs.spec.ingress.flatMap((r: { from: unknown[] }) => r.from);
        const podPeers = peers.filter(
          (p: { podSelector?: { matchLabels: Record<string, string> } }) => p.podSelector,
        );
        assert.equal(podPeers.length, 1);
        assert.ok(
          matches(podPeers[0].podSelector.matchLabels, routerPods),
          "router pods match the model's ingress rule",
        );
      }
    });

    it("alerts on the fleet and ships its dashboard", () => {
      const rule = run.ofType("kubernetes:monitoring.coreos.com/v1:PrometheusRule")[0];
      assert.ok(rule.inputs.spec.groups.flatMap((g: { rules: unknown[] }) => g.rules).length >= 5);
      const dash = run
        .ofType("kubernetes:core/v1:ConfigMap")
        .find((c) => c.inputs.metadata.labels?.grafana_dashboard === "1");
      assert.ok(dash, "dashboard ConfigMap for the Grafana sidecar");
    });

    it("budgets the namespace's GPUs and denies traffic by default", () => {
      const quota = run.ofType(K.quota)[0];
      assert.ok(Number(quota.inputs.spec.hard["requests.nvidia.com/gpu"]) >= 1);
      const deny = run.ofType(K.netpol).find((n) => n.inputs.metadata.name === "default-deny")!;
      assert.deepEqual(deny.inputs.spec.podSelector, {});
      assert.deepEqual(deny.inputs.spec.policyTypes, ["Ingress", "Egress"]);
      assert.ok(deny.inputs.spec.egress[0].ports.some((p: { port: number }) => p.port === 53));
    });
  });
}

describe("program under mocks: invalid config", () => {
  it("fails before creating any resource, naming every problem", async () => {
    const broken = await runProgram("production", {
      overrides: { redis: { url: "localhost" }, namespace: "Prod NS" },
    }).then(
      () => undefined,
      (e: ProgramError) => e,
    );
    assert.ok(broken instanceof ProgramError, "the program rejected the config");
    assert.match(broken.message, /namespace: namespace must be a DNS label/);
    assert.match(broken.message, /redis\.url: redis\.url must start with redis:\/\//);
    assert.deepEqual(broken.resources, [], "nothing was created");
  });
});

describe("program under mocks: the router image registry login", () => {
  const login = {
    router: {
      replicas: 2,
      imageRegistry: "ghcr.io/acme/platform",
      imageRegistryUsername: "ci-bot",
    },
  };

  it("fails before creating anything when the registry password secret is missing", async () => {
    const broken = await runProgram("staging", {
      overrides: login,
      secrets: { registryAdminPassword: MOCK_ADMIN_PASSWORD, huggingFaceToken: MOCK_HF_TOKEN },
    }).then(
      () => undefined,
      (e: ProgramError) => e,
    );
    assert.ok(broken instanceof ProgramError, "the program rejected the config");
    assert.match(
      broken.message,
      /routerImageRegistryPassword: is required to push the router image as router\.imageRegistryUsername 'ci-bot'; set it with `pulumi config set --secret routerImageRegistryPassword` \(it prompts, or reads stdin;/,
    );
    assert.deepEqual(broken.resources, [], "nothing was created");
  });

  it("pushes with the username and the password as a secret; a prebuilt image needs neither", async () => {
    const token = "ghp_mock-registry-token-51c2";
    const run = await runProgram("staging", {
      overrides: login,
      secrets: {
        registryAdminPassword: MOCK_ADMIN_PASSWORD,
        huggingFaceToken: MOCK_HF_TOKEN,
        routerImageRegistryPassword: token,
      },
    });
    const [image] = run.ofType("docker-build:index:Image");
    // The secret password makes the whole list a secret for the engine (encrypted in state).
    const registries = image.inputs.registries;
    assert.equal(registries[pulumi.runtime.specialSigKey], pulumi.runtime.specialSecretSig);
    assert.deepEqual(registries.value, [
      { address: "ghcr.io", username: "ci-bot", password: token },
    ]);
    for (const r of run.resources) assert.ok(!plainText(r.inputs).includes(token), r.name);

    // What CI does: router.image set for the run, the login settings left in the stack file.
    const prebuilt = `ghcr.io/acme/platform/vllm-router@sha256:${"e".repeat(64)}`;
    const ci = await runProgram("staging", {
      overrides: { router: { ...login.router, image: prebuilt } },
      secrets: { registryAdminPassword: MOCK_ADMIN_PASSWORD, huggingFaceToken: MOCK_HF_TOKEN },
    });
    assert.deepEqual(ci.ofType("docker-build:index:Image"), []);
    assert.equal(ci.outputs.routerImage, prebuilt);
  });
});

describe("program under mocks: registration is proof of readiness", () => {
  it("creates each registry row only after its Deployment, Service and pods Service are ready", async () => {
    const run = await runProgram("staging", {
      createDelays: { "kubernetes:apps/v1:Deployment": 40, "kubernetes:core/v1:Service": 20 },
    });
    for (const entry of run.ofType(REGISTRY_ENTRY)) {
      const name = `${entry.inputs.modelName}-staging`;
      const dep = run.ofType(K.deployment).find((d) => d.inputs.metadata.name === name)!;
      const svc = run.ofType(K.service).find((s) => s.inputs.metadata.name === name)!;
      assert.ok(entry.createdSeq! > dep.createdSeq!, `${name}: row after Deployment`);
      assert.ok(entry.createdSeq! > svc.createdSeq!, `${name}: row after Service`);
      const pods = run
        .ofType(K.service)
        .find((s) => s.inputs.metadata.name === podsServiceName(name))!;
      assert.ok(entry.createdSeq! > pods.createdSeq!, `${name}: row after the pods Service`);
    }
  });

  it("registers a disabled model as disabled and scales it to zero", async () => {
    const run = await runProgram("staging", {
      overrides: {
        capacity: {
          "llama-3-1-8b-instruct": { replicas: 1, gpu: { count: 1 } },
          "qwen2-5-32b-instruct-awq": { replicas: 1, gpu: { count: 2 }, enabled: false },
        },
      },
    });
    const entry = run
      .ofType(REGISTRY_ENTRY)
      .find((e) => e.inputs.modelName === "qwen2-5-32b-instruct-awq")!;
    assert.equal(entry.inputs.enabled, false);
    const dep = run
      .ofType(K.deployment)
      .find((d) => d.inputs.metadata.name === "qwen2-5-32b-instruct-awq-staging")!;
    assert.equal(dep.inputs.spec.replicas, 0);
  });
});

/** Lets registrations that wait on delayed resources (and are in no output) reach the mocks. */
const settle = () => new Promise((r) => setTimeout(r, 300));

describe("program under mocks: Hugging Face token", () => {
  it("turns huggingFaceToken into a secret Secret per gated model, before its Deployment", async () => {
    const run = await runProgram("staging", {
      createDelays: { "kubernetes:core/v1:Secret": 30 },
    });
    await settle();
    const secrets = run
      .ofType("kubernetes:core/v1:Secret")
      .filter((s) => s.inputs.metadata.name.endsWith("-huggingface"));
    assert.deepEqual(
      secrets.map((s) => s.inputs.metadata.name),
      ["llama-3-1-8b-instruct-staging-huggingface"],
    );
    // The engine receives stringData wrapped as a secret, so state encrypts the token.
    const data = secrets[0].inputs.stringData;
    assert.equal(data[pulumi.runtime.specialSigKey], pulumi.runtime.specialSecretSig);
    assert.deepEqual(data.value, { token: MOCK_HF_TOKEN });
    assert.equal(secrets[0].inputs.metadata.namespace, "llm-staging");
    const dep = run
      .ofType(K.deployment)
      .find((d) => d.inputs.metadata.name === "llama-3-1-8b-instruct-staging")!;
    const ref = dep.inputs.spec.template.spec.containers[0].env.find(
      (e: { name: string }) => e.name === "HF_TOKEN",
    );
    assert.equal(ref.valueFrom.secretKeyRef.name, secrets[0].inputs.metadata.name);
    assert.notEqual(ref.valueFrom.secretKeyRef.optional, true);
    assert.ok(dep.createdSeq! > secrets[0].createdSeq!, "the Secret exists before the pods");
  });

  it("fails before creating anything when a gated model has no token", async () => {
    const broken = await runProgram("production", {
      secrets: { registryAdminPassword: MOCK_ADMIN_PASSWORD },
    }).then(
      () => undefined,
      (e: ProgramError) => e,
    );
    assert.ok(broken instanceof ProgramError, "the program rejected the config");
    assert.match(broken.message, /huggingFaceToken: is required because llama-3-1-8b-instruct/);
    assert.deepEqual(broken.resources, [], "nothing was created");
  });
});

describe("program under mocks: no GitOps mode", () => {
  it("rejects kubernetes.renderYamlToDirectory before creating anything, pointing at npm run render", async () => {
    const broken = await runProgram("development", {
      overrides: { kubernetes: { renderYamlToDirectory: "out" } },
    }).then(
      () => undefined,
      (e: ProgramError) => e,
    );
    assert.ok(broken instanceof ProgramError, "the program rejected the config");
    assert.match(
      broken.message,
      /kubernetes\.renderYamlToDirectory: not supported.*npm run render/,
    );
    assert.deepEqual(broken.resources, [], "nothing was created");
  });

  it("configures the Kubernetes provider to apply, never to render", async () => {
    const run = await runProgram("development");
    const provider = run.ofType("pulumi:providers:kubernetes")[0];
    assert.ok(provider, "the explicit provider");
    assert.equal(provider.inputs.renderYamlToDirectory, undefined);
  });
});

describe("program under mocks: a disabled model does not make Pulumi wait", () => {
  it("skips the await of a pod-less Deployment only, and still registers it after the Deployment", async () => {
    const run = await runProgram("staging", {
      overrides: {
        capacity: {
          "llama-3-1-8b-instruct": { replicas: 1, gpu: { count: 1 } },
          "qwen2-5-32b-instruct-awq": { replicas: 1, gpu: { count: 2 }, enabled: false },
        },
      },
      createDelays: { "kubernetes:apps/v1:Deployment": 30 },
    });
    await settle();
    const dep = (name: string) =>
      run.ofType(K.deployment).find((d) => d.inputs.metadata.name === name)!;
    const off = dep("qwen2-5-32b-instruct-awq-staging");
    assert.equal(off.inputs.spec.replicas, 0);
    assert.equal(off.inputs.metadata.annotations["pulumi.com/skipAwait"], "true");
    const on = dep("llama-3-1-8b-instruct-staging");
    assert.equal(on.inputs.metadata.annotations["pulumi.com/skipAwait"], undefined);
    const entry = run
      .ofType(REGISTRY_ENTRY)
      .find((e) => e.inputs.modelName === "qwen2-5-32b-instruct-awq")!;
    assert.ok(entry.createdSeq! > off.createdSeq!);
  });

  // pulumi-kubernetes provider/pkg/await/service.go: shouldWaitForPods is false when
  // isHeadlessService (spec.clusterIP == "None", corev1.ClusterIPNone), so the awaiter reports
  // the Service ready once it exists and never waits for endpoints. The disabled model's pods
  // Service, with no pod behind it, therefore needs no skipAwait; were it not headless, the
  // awaiter would wait for ready endpoints that never come until the timeout.
  it("gives a pod-less model's headless Service no skipAwait: the provider does not wait for pods behind clusterIP None", async () => {
    const run = await runProgram("staging", {
      overrides: {
        capacity: {
          "llama-3-1-8b-instruct": { replicas: 1, gpu: { count: 1 } },
          "qwen2-5-32b-instruct-awq": { replicas: 1, gpu: { count: 2 }, enabled: false },
        },
      },
    });
    await settle();
    const name = podsServiceName("qwen2-5-32b-instruct-awq-staging");
    const pods = run.ofType(K.service).find((s) => s.inputs.metadata.name === name)!;
    assert.strictEqual(pods.inputs.spec.clusterIP, "None");
    assert.equal(pods.inputs.metadata.annotations?.["pulumi.com/skipAwait"], undefined);
  });
});

const PG = {
  database: "postgresql:index/database:Database",
  role: "postgresql:index/role:Role",
  grant: "postgresql:index/grant:Grant",
  migrations: "pulumi-nodejs:dynamic/vllm-registry:RegistryMigrations",
  stackReference: "pulumi:pulumi:StackReference",
};

// The postgresql provider's Database delete terminates every connection and runs DROP DATABASE
// (cyrilgdn/terraform-provider-postgresql, postgresql/resource_postgresql_database.go,
// resourcePostgreSQLDatabaseDelete): a database declared by an environment stack would be
// dropped under every other environment by that stack's `pulumi destroy`.
describe("program under mocks: environment stacks share the registry stack's database", () => {
  for (const stack of STACKS) {
    it(`${stack}: reads the registry stack and declares no database and no migrations`, async () => {
      const run = await runProgram(stack);
      assert.deepEqual(run.ofType(PG.database), []);
      assert.deepEqual(run.ofType(PG.migrations), []);
      const [ref] = run.ofType(PG.stackReference);
      assert.equal(ref.inputs.name, "acme-ml/vllm-registry/shared");
      const roles = run.ofType(PG.role);
      assert.deepEqual(
        roles.map((r) => [r.inputs.name, r.inputs.login, r.inputs.roles]),
        [
          [
            `vllm_registry_writer_${stack}`,
            true,
            [`vllm_registry_env_${stack}`, "vllm_registry_writers"],
          ],
          [`vllm_router_${stack}`, true, [`vllm_registry_env_${stack}`, "vllm_registry_readers"]],
        ],
        "two login roles, members of the environment's group role and of their access role",
      );
      assert.deepEqual(run.ofType(PG.grant), [], "the registry stack's owner grants");
    });

    // PostgreSQL refuses a role's connection past its CONNECTION LIMIT ("too many connections
    // for role"; docs: CREATE ROLE). Every router pod holds a pool, its LISTEN connection and,
    // while replacing a dead one, a second LISTEN connection; the autoscaler's maximum plus a
    // rollout's surge can run at once.
    it(`${stack}: the router role's connection limit admits every router pod the autoscaler and a rollout can run`, async () => {
      const run = await runProgram(stack);
      const [hpa] = run.ofType("kubernetes:autoscaling/v2:HorizontalPodAutoscaler");
      const [deployment] = run
        .ofType("kubernetes:apps/v1:Deployment")
        .filter((d) => d.inputs.metadata.name === "vllm-router");
      const pods =
        hpa.inputs.spec.maxReplicas + deployment.inputs.spec.strategy.rollingUpdate.maxSurge;
      const router = run.ofType(PG.role).find((r) => r.inputs.name === `vllm_router_${stack}`)!;
      assert.ok(pods > 2);
      assert.ok(
        router.inputs.connectionLimit >= pods * (ROUTER_POOL_MAX + 2),
        `${router.inputs.connectionLimit} < ${pods} pods x ${ROUTER_POOL_MAX + 2} connections`,
      );
    });
  }

  it("takes the database name from the registry stack", async () => {
    const run = await runProgram("staging", {
      overrides: {
        registry: {
          stack: "acme-ml/vllm-registry/shared",
          host: "model-registry.db.acme-ml.internal",
          database: "registry_two",
          sslmode: "verify-full",
        },
      },
    });
    const [entry] = run.ofType("pulumi-nodejs:dynamic/vllm-registry:RegistryEntry");
    assert.match(
      (entry.inputs.connectionString as { value: string }).value,
      /@model-registry\.db\.acme-ml\.internal:5432\/registry_two\?/,
    );
  });
});

describe("registry stack program under mocks (registry-stack/)", () => {
  for (const stack of ["shared", "ci"]) {
    it(`${stack}: owns the database, protected and retained on delete, with its owner and group roles`, async () => {
      const run = await runProgram(stack, { project: "vllm-registry" });
      const [database] = run.ofType(PG.database);
      assert.deepEqual(
        [database.inputs.name, database.inputs.owner, database.protect, database.retainOnDelete],
        ["model_registry", "vllm_registry_owner", true, true],
      );
      const roles = run.ofType(PG.role);
      assert.deepEqual(
        roles
          .map((r) => [r.inputs.name, r.inputs.login, r.protect, r.retainOnDelete])
          .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
        [
          ["vllm_registry_env_development", false, true, true],
          ["vllm_registry_env_production", false, true, true],
          ["vllm_registry_env_staging", false, true, true],
          ["vllm_registry_owner", true, true, true],
          ["vllm_registry_readers", false, true, true],
          ["vllm_registry_writers", false, true, true],
        ],
      );
      const [migrations] = run.ofType(PG.migrations);
      assert.match(
        (migrations.inputs.connectionString as { value: string }).value,
        /^postgresql:\/\/vllm_registry_owner:mock-generated-password-8c1d@/,
        "the owner role runs the migrations",
      );
      assert.ok(
        !migrations.inputs.__provider.includes(MOCK_GENERATED_PASSWORD),
        "no password in the serialized provider",
      );
      assert.deepEqual(run.outputs.environmentRoles, {
        development: "vllm_registry_env_development",
        staging: "vllm_registry_env_staging",
        production: "vllm_registry_env_production",
      });
      assert.equal(run.outputs.database, "model_registry");
      assert.equal(run.outputs.adminUser, "postgres");
      assert.deepEqual(run.outputs.accessRoles, {
        writer: "vllm_registry_writers",
        router: "vllm_registry_readers",
      });
    });
  }

  // A grant of the table needs the table: the engine creates a resource only after its
  // dependencies, so with migrations that take a while every grant still comes after them.
  it("grants the access roles, protected, only after the migrations created the table", async () => {
    const run = await runProgram("shared", {
      project: "vllm-registry",
      createDelays: { [PG.migrations]: 200 },
    });
    const [migrations] = run.ofType(PG.migrations);
    const grants = run.ofType(PG.grant);
    assert.equal(grants.length, 5);
    for (const g of grants) {
      assert.ok(g.createdSeq! > migrations.createdSeq!, `${g.name} waits for the migrations`);
      assert.deepEqual([g.protect, g.retainOnDelete], [true, true], g.name);
      assert.match(g.provider ?? "", /::registry-owner-postgresql::/);
    }
  });

  it("ci: reaches the end-to-end test server without TLS", async () => {
    const run = await runProgram("ci", { project: "vllm-registry" });
    const [provider] = run.ofType("pulumi:providers:postgresql");
    assert.deepEqual(
      [
        provider.inputs.host,
        provider.inputs.port,
        provider.inputs.username,
        provider.inputs.sslmode,
      ],
      ["vllm-registry-pg", "5432", "postgres", "disable"],
    );
    assert.deepEqual(
      [run.outputs.host, run.outputs.port, run.outputs.sslmode],
      ["vllm-registry-pg", 5432, "disable"],
    );
  });

  it("exports what the environment stacks check", async () => {
    const run = await runProgram("shared", { project: "vllm-registry" });
    const env = loadStackSpec("production");
    assert.deepEqual(registryStackProblems(env.registry, "production", run.outputs), []);
  });

  it("rejects invalid config before creating anything", async () => {
    const broken = await runProgram("shared", {
      project: "vllm-registry",
      overrides: { sslmode: "prefer", port: 0 },
    }).then(
      () => undefined,
      (e: ProgramError) => e,
    );
    assert.ok(broken instanceof ProgramError);
    assert.match(broken.message, /sslmode: Invalid enum value/);
    assert.match(broken.message, /port: Number must be greater than or equal to 1/);
    assert.deepEqual(broken.resources, []);
  });
});
