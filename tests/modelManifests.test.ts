// The model builders against the rules the real engine, provider and API server apply, which
// Pulumi mocks never run. Each rule is restated here from its upstream source, cited per test.
import { strict as assert } from "node:assert";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IPersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import type { IService } from "kubernetes-models/v1/Service";
import {
  DNS_LABEL,
  ModelSpec,
  StackSpec,
  loadStackSpec,
  routerLabels,
  serviceName,
} from "../components/spec";
import {
  buildHuggingFaceTokenSecret,
  buildModelCacheClaim,
  buildModelDeployment,
  buildModelObjects,
  buildModelPodsService,
  buildModelService,
  huggingFaceSecretName,
  renderStack,
  schemaProblems,
} from "../components/manifests";
import type { Manifest } from "../components/manifests";
import { podsServiceName } from "@vllm-fleet/router/routing";

const SKIP_AWAIT = "pulumi.com/skipAwait";

function withModel(s: StackSpec, name: string, change: Partial<ModelSpec>): ModelSpec {
  const m = s.models.find((x) => x.name === name)!;
  return { ...m, ...change, cache: { ...m.cache, ...(change.cache ?? {}) } };
}

/**
 * Whether pulumi-kubernetes' Deployment await can finish: it needs the ready replicas AND every
 * PVC of the pod template Bound (provider/pkg/await/deployment.go: checkReplicaSetStatus,
 * isEveryPVCReady), unless `pulumi.com/skipAwait: "true"` replaces it with an immediate
 * condition (provider/pkg/metadata/overrides.go: ReadyCondition).
 */
function deploymentAwaitFinishes(
  d: IDeployment,
  cluster: { readyPods: number; pvcPhase: string },
): boolean {
  if (d.metadata?.annotations?.[SKIP_AWAIT] === "true") return true;
  const claims = (d.spec!.template.spec!.volumes ?? []).filter((v) => v.persistentVolumeClaim);
  return (
    cluster.readyPods >= (d.spec!.replicas ?? 1) && claims.every(() => cluster.pvcPhase === "Bound")
  );
}

/**
 * Whether pulumi-kubernetes' Service await can finish (provider/pkg/await/service.go,
 * checkAndLogStatus since 4.17.0, pulumi/pulumi-kubernetes#3142): a ClusterIP Service with a
 * selector is done once its Endpoints object has settled with no not-ready addresses; zero
 * endpoints is fine. The endpoints controller writes that object even for zero pods
 * (kubernetes pkg/controller/endpoint/endpoints_controller.go, syncService). A headless Service
 * (`spec.clusterIP` exactly "None", corev1.ClusterIPNone: isHeadlessService) or one without a
 * selector is done as soon as it exists: shouldWaitForPods is false for them.
 */
function serviceAwaitFinishes(s: IService, endpoints: { notReady: number }): boolean {
  if (s.metadata?.annotations?.[SKIP_AWAIT] === "true") return true;
  if (s.spec?.clusterIP === "None") return true;
  if (!s.spec?.selector || Object.keys(s.spec.selector).length === 0) return true;
  return endpoints.notReady === 0;
}

/** WaitForFirstConsumer claims bind only once a pod using them is scheduled (kubernetes.io/docs/concepts/storage/storage-classes/#volume-binding-mode). */
const pvcPhase = (pods: number) => (pods > 0 ? "Bound" : "Pending");

describe("model manifests: Pulumi waits only for what can happen", () => {
  const s = loadStackSpec("staging");
  const cases: [string, Partial<ModelSpec>, number][] = [
    ["a disabled model", { enabled: false }, 0],
    ["a disabled model with replicas 0", { enabled: false, replicas: 0 }, 0],
    ["an enabled model", {}, 1],
  ];
  for (const [what, change, pods] of cases) {
    it(`lets the Deployment await of ${what} finish (pulumi-kubernetes await/deployment.go waits for Bound PVCs)`, () => {
      const d = buildModelDeployment(s, withModel(s, "llama-3-1-8b-instruct", change));
      assert.equal(d.spec!.replicas, pods);
      assert.ok(deploymentAwaitFinishes(d, { readyPods: pods, pvcPhase: pvcPhase(pods) }));
    });
  }

  it("keeps the Deployment await of an enabled model: it is the proof of readiness", () => {
    const d = buildModelDeployment(s, withModel(s, "llama-3-1-8b-instruct", {}));
    assert.equal(d.metadata.annotations?.[SKIP_AWAIT], undefined);
    assert.equal(deploymentAwaitFinishes(d, { readyPods: 0, pvcPhase: "Bound" }), false);
  });

  it("the Deployment await rule: without skipAwait a pod-less Deployment waits on its unbound claim", () => {
    const d = buildModelDeployment(s, withModel(s, "llama-3-1-8b-instruct", { enabled: false }));
    delete d.metadata.annotations![SKIP_AWAIT];
    assert.equal(deploymentAwaitFinishes(d, { readyPods: 0, pvcPhase: pvcPhase(0) }), false);
  });

  it("lets the Service await finish with zero pods and wait while a pod is not ready (service.go, >= 4.17.0)", () => {
    const svc = buildModelService(s, withModel(s, "llama-3-1-8b-instruct", { enabled: false }));
    assert.ok(serviceAwaitFinishes(svc, { notReady: 0 }), "0 pods: empty Endpoints, done");
    assert.equal(serviceAwaitFinishes(svc, { notReady: 1 }), false, "a loading pod: waits");
  });

  it("lets the headless pods Service await finish at once, even while a pod loads (service.go, shouldWaitForPods)", () => {
    for (const change of [{}, { enabled: false }]) {
      const pods = buildModelPodsService(s, withModel(s, "llama-3-1-8b-instruct", change));
      assert.equal(pods.metadata.annotations?.[SKIP_AWAIT], undefined, "no skipAwait needed");
      assert.ok(serviceAwaitFinishes(pods, { notReady: 1 }));
      // The rule it rests on: the same Service with a cluster IP would wait for the pod.
      const clustered = { ...pods, spec: { ...pods.spec, clusterIP: undefined } };
      assert.equal(serviceAwaitFinishes(clustered, { notReady: 1 }), false);
    }
  });

  it("uses a Kubernetes provider whose Service await finishes with zero endpoints (4.17.0, #3142)", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { version, pulumi } = require("@pulumi/kubernetes/package.json") as {
      version: string;
      pulumi: { version: string };
    };
    for (const v of [version, pulumi.version]) {
      const [major, minor] = v.split(".").map(Number);
      assert.ok(major > 4 || (major === 4 && minor >= 17), `@pulumi/kubernetes ${v} < 4.17.0`);
    }
  });
});

/**
 * What pulumi-kubernetes does with a changed PVC: a change of `.spec.accessModes`,
 * `.spec.selector`, `.spec.storageClassName` or `.spec.volumeName` replaces it
 * (provider/pkg/provider/diff.go, forceNewProperties), because the API server forbids them
 * (kubernetes pkg/apis/core/validation ValidatePersistentVolumeClaimUpdate: "spec is immutable
 * after creation except resources.requests and volumeAttributesClassName for bound claims").
 * A replacement keeping the same name and namespace deletes first (provider/pkg/provider/
 * provider.go, Diff: deleteBeforeReplace) and the pvc-protection finalizer holds that delete
 * while pods mount the claim (kubernetes.io/docs/concepts/storage/persistent-volumes/
 * #storage-object-in-use-protection).
 */
function pvcDiff(old: IPersistentVolumeClaim, next: IPersistentVolumeClaim) {
  const forceNew = ["accessModes", "selector", "storageClassName", "volumeName"] as const;
  const changed = (k: (typeof forceNew)[number]) =>
    JSON.stringify(old.spec?.[k]) !== JSON.stringify(next.spec?.[k]);
  const renamed =
    old.metadata?.name !== next.metadata?.name ||
    old.metadata?.namespace !== next.metadata?.namespace;
  const replace = renamed || forceNew.some(changed);
  return {
    changed: JSON.stringify(old) !== JSON.stringify(next),
    replace,
    deleteBeforeReplace: replace && !renamed,
  };
}

describe("model manifests: the cache volume survives scaling", () => {
  const p = loadStackSpec("production");
  const llama = (change: Partial<ModelSpec>) => withModel(p, "llama-3-1-8b-instruct", change);

  it("never changes the claim when replicas or enabled change", () => {
    const base = buildModelCacheClaim(p, llama({}));
    for (const change of [{ replicas: 1 }, { replicas: 2 }, { replicas: 7 }, { enabled: false }]) {
      assert.deepEqual(pvcDiff(base, buildModelCacheClaim(p, llama(change))), {
        changed: false,
        replace: false,
        deleteBeforeReplace: false,
      });
    }
  });

  it("uses the configured access mode, not one derived from replicas", () => {
    const d = loadStackSpec("development");
    const m = d.models[0];
    assert.deepEqual(buildModelCacheClaim(d, { ...m, replicas: 4 }).spec!.accessModes, [
      "ReadWriteOnce",
    ]);
    assert.deepEqual(buildModelCacheClaim(p, llama({})).spec!.accessModes, ["ReadWriteMany"]);
  });

  for (const [what, cache] of [
    ["access mode", { accessMode: "ReadWriteOnce" }],
    ["storage class", { storageClass: "standard-rwx" }],
  ] as const) {
    it(`replaces the claim create-first when its ${what} changes (new name, so no delete-first)`, () => {
      const old = buildModelCacheClaim(p, llama({}));
      const next = buildModelCacheClaim(p, llama({ cache: { ...llama({}).cache, ...cache } }));
      assert.deepEqual(pvcDiff(old, next), {
        changed: true,
        replace: true,
        deleteBeforeReplace: false,
      });
      const pod = buildModelDeployment(p, llama({ cache: { ...llama({}).cache, ...cache } })).spec!
        .template.spec!;
      const vol = pod.volumes!.find((v) => v.name === "model-cache")!;
      assert.equal(vol.persistentVolumeClaim!.claimName, next.metadata.name, "pods move to it");
    });
  }

  it("grows the cache in place (resources.requests may change)", () => {
    const old = buildModelCacheClaim(p, llama({}));
    const next = buildModelCacheClaim(p, llama({ cache: { ...llama({}).cache, size: "200Gi" } }));
    assert.deepEqual(pvcDiff(old, next), {
      changed: true,
      replace: false,
      deleteBeforeReplace: false,
    });
  });

  it("the rule: an access mode change under a fixed name deletes first", () => {
    const old = buildModelCacheClaim(p, llama({}));
    const next = structuredClone(old);
    next.spec!.accessModes = ["ReadWriteOnce"];
    assert.deepEqual(pvcDiff(old, next), {
      changed: true,
      replace: true,
      deleteBeforeReplace: true,
    });
  });
});

describe("model manifests: the Hugging Face token of gated models", () => {
  const s = loadStackSpec("staging");
  const env = (m: ModelSpec) =>
    buildModelDeployment(s, m).spec!.template.spec!.containers[0].env ?? [];

  it("gives a gated model HF_TOKEN from its own Secret, required so a missing one fails at pod start", () => {
    const llama = s.models.find((m) => m.name === "llama-3-1-8b-instruct")!;
    assert.equal(llama.gated, true);
    const token = env(llama).find((e) => e.name === "HF_TOKEN")!;
    // SecretKeySelector.optional defaults to false: the kubelet refuses to start the container
    // when the Secret or key is missing (kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-environment-variables).
    assert.deepEqual(token.valueFrom, {
      secretKeyRef: { name: "llama-3-1-8b-instruct-staging-huggingface", key: "token" },
    });
    const secret = buildHuggingFaceTokenSecret(s, llama, "hf_x");
    assert.equal(secret.metadata.name, huggingFaceSecretName(s, llama));
    assert.equal(secret.metadata.namespace, s.namespace);
    assert.deepEqual(secret.stringData, { token: "hf_x" });
  });

  it("gives ungated models no token reference", () => {
    const qwen = s.models.find((m) => m.name === "qwen2-5-32b-instruct-awq")!;
    assert.equal(qwen.gated, false);
    assert.equal(
      env(qwen).find((e) => e.name === "HF_TOKEN"),
      undefined,
    );
  });

  it("renders the Deployment's reference but never the token Secret", () => {
    const kinds = renderStack(s).map((m) => `${m.kind}/${m.metadata.name}`);
    assert.ok(kinds.includes("Deployment/llama-3-1-8b-instruct-staging"));
    assert.ok(!kinds.some((k) => k.startsWith("Secret/")), kinds.join(", "));
  });
});

describe("model manifests: replicas on different nodes, node disk reserved", () => {
  const s = loadStackSpec("production");
  const pod = (m: ModelSpec) => buildModelDeployment(s, m).spec!.template.spec!;

  it("spreads two or more replicas over kubernetes.io/hostname, never blocking scheduling", () => {
    const m = withModel(s, s.models[0].name, { replicas: 2, enabled: true });
    const [c] = pod(m).topologySpreadConstraints ?? [];
    assert.ok(c, "a topology spread constraint");
    // kubernetes.io/hostname is the node's own name
    // (https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetesiohostname);
    // the selector must select the model's own pods or it spreads nothing.
    assert.equal(c.topologyKey, "kubernetes.io/hostname");
    assert.equal(c.whenUnsatisfiable, "ScheduleAnyway");
    assert.equal(c.maxSkew, 1);
    const labels = buildModelDeployment(s, m).spec!.template.metadata!.labels!;
    for (const [k, v] of Object.entries(c.labelSelector!.matchLabels!)) assert.equal(labels[k], v);
  });

  it("adds no constraint to a single replica or a disabled model", () => {
    assert.equal(
      pod(withModel(s, s.models[0].name, { replicas: 1 })).topologySpreadConstraints,
      undefined,
    );
    assert.equal(
      pod(withModel(s, s.models[0].name, { replicas: 3, enabled: false }))
        .topologySpreadConstraints,
      undefined,
    );
  });

  it("requests ephemeral storage for vLLM's caches under HOME=/tmp on the writable layer", () => {
    const c = pod(s.models[0]).containers[0];
    assert.equal(c.resources!.requests!["ephemeral-storage"], "10Gi");
    assert.equal(c.env!.find((e) => e.name === "HOME")?.value, "/tmp");
    // No /tmp volume: the writable layer is what ephemeral-storage accounts for.
    assert.ok(!(c.volumeMounts ?? []).some((v) => v.mountPath === "/tmp"));
  });
});

// vLLM's world size is pipeline x tensor parallel (vllm/config/parallel.py,
// ParallelConfig.__post_init__), with pipeline parallelism left at 1: the tensor-parallel size
// is the number of GPUs a pod uses, so it comes from gpu.count and nowhere else.
describe("model tensor parallelism", () => {
  for (const stack of ["development", "staging", "production"]) {
    it(`${stack}: vLLM's --tensor-parallel-size is the GPUs the pod requests, set once`, () => {
      const s = loadStackSpec(stack);
      for (const m of s.models) {
        const pod = buildModelDeployment(s, m).spec!.template.spec!;
        const c = pod.containers[0];
        const tp = c.args!.filter((a) => /^--tensor[-_]parallel[-_]size/.test(a));
        assert.deepEqual(tp, [`--tensor-parallel-size=${m.gpu!.count}`], m.name);
        assert.equal(c.resources!.limits![m.gpu!.resourceName], String(m.gpu!.count), m.name);
        const shm = pod.volumes!.find((v) => v.name === "dshm")!.emptyDir!.sizeLimit;
        assert.equal(shm, m.gpu!.count > 1 ? `${4 * m.gpu!.count}Gi` : "2Gi", m.name);
      }
    });
  }

  it("a model on two GPUs runs two ranks (staging's AWQ model)", () => {
    const s = loadStackSpec("staging");
    const m = s.models.find((x) => x.name === "qwen2-5-32b-instruct-awq")!;
    assert.equal(m.gpu?.count, 2);
    assert.ok(
      buildModelDeployment(s, m).spec!.template.spec!.containers[0].args!.includes(
        "--tensor-parallel-size=2",
      ),
    );
  });
});

describe("model manifests: the headless pods Service the router resolves", () => {
  const s = loadStackSpec("staging");

  it("is named by the router's podsServiceName, a DNS-1035 label even for the longest model names", () => {
    const env = s.environment;
    // The longest model name whose Service `{model}-{env}` still fits 63 characters.
    const longest = "m".repeat(63 - `-${env}`.length);
    for (const name of ["llama-3-1-8b-instruct", longest]) {
      const pods = buildModelPodsService(s, withModel(s, "llama-3-1-8b-instruct", { name }));
      assert.equal(pods.metadata.name, podsServiceName(serviceName(name, env)));
      assert.ok(pods.metadata.name.length <= 63, pods.metadata.name);
      assert.match(pods.metadata.name, DNS_LABEL);
      assert.deepEqual(schemaProblems(pods as Manifest), []);
    }
  });

  it("lists only ready pods: headless, publishNotReadyAddresses false (kubernetes/dns specification 2.4.1, A records)", () => {
    for (const m of s.models) {
      const { service, podsService } = buildModelObjects(s, m);
      assert.equal(podsService.spec!.clusterIP, "None");
      // DNS lists not-ready endpoints only with publishNotReadyAddresses; a loading vLLM pod
      // (readiness on /v1/models) must not be picked.
      assert.equal(podsService.spec!.publishNotReadyAddresses, false);
      assert.deepEqual(podsService.spec!.selector, service.spec!.selector);
      assert.deepEqual(podsService.spec!.ports, service.spec!.ports);
    }
  });

  it("is not scraped: the ServiceMonitor selects the model's Service only (one target per pod)", () => {
    // prometheus-operator: a ServiceMonitor's selector picks Services, and every endpoint of
    // each picked Service becomes a target, so two Services over one pod scrape it twice.
    const m = s.models[0];
    const { service, podsService, serviceMonitor } = buildModelObjects(s, m);
    const selects = (labels: Record<string, string> | undefined) =>
      Object.entries(serviceMonitor!.spec.selector.matchLabels!).every(
        ([k, v]) => labels?.[k] === v,
      );
    assert.ok(selects(service.metadata.labels));
    assert.equal(selects(podsService.metadata.labels), false);
  });

  it("lets the router dial the pods it resolves: the model's NetworkPolicy admits the router pods on the pod's port, for requests and /metrics", () => {
    // A NetworkPolicy port is the pod's port (k8s.io/api networking/v1 NetworkPolicyPort): the
    // router sends requests and reads vLLM's /metrics (served on the API port) at <pod IP>:8000,
    // the headless Service's port, which is the container port it targets.
    for (const m of s.models) {
      const { podsService, networkPolicy, deployment } = buildModelObjects(s, m);
      const [port] = podsService.spec!.ports!;
      const container = deployment.spec!.template.spec!.containers[0];
      const target = container.ports!.find((p) => p.name === port.targetPort)!;
      assert.equal(target.containerPort, port.port, "the pod listens on the port DNS clients use");
      const fromRouter = networkPolicy.spec!.ingress!.filter((r) =>
        r.from!.some((f) =>
          Object.entries(f.podSelector?.matchLabels ?? { none: "" }).every(
            ([k, v]) => routerLabels(s.environment)[k] === v,
          ),
        ),
      );
      assert.deepEqual(
        fromRouter.flatMap((r) => r.ports),
        [{ port: port.port, protocol: "TCP" }],
      );
    }
  });
});
