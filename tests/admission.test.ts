// Admission of every pod the program creates, as the API server decides it (tests/support/admission.ts):
// first each rule against a small pod that breaks only it, then every real stack and the
// policy pack's passing fixtures.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseStackConfig, loadStackSpec } from "../components/spec";
import { rawStackFile } from "./support/stackFiles";
import { buildLimitRange, buildNamespace, renderStack } from "../components/manifests";
import type { IContainer as Container } from "kubernetes-models/v1/Container";
import { TYPES, quantity } from "../policies/kube";
import { Violation, admit, formatViolations } from "./support/admission";
import { Mutable, NS, fleet } from "./support/policyFixtures";
import { stackForPolicies } from "./support/policyStacks";

const ROOT = path.resolve(__dirname, "..");
const STACKS = fs
  .readdirSync(ROOT)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => s !== undefined)
  .sort();

const NAMESPACE = "llm-test";

function namespace(level?: string): Mutable {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: NAMESPACE,
      labels: level ? { "pod-security.kubernetes.io/enforce": level } : {},
    },
  };
}

function limitRange(item: Mutable): Mutable {
  return {
    apiVersion: "v1",
    kind: "LimitRange",
    metadata: { name: "limits", namespace: NAMESPACE },
    spec: { limits: [{ type: "Container", ...item }] },
  };
}

function quota(hard: Record<string, string>): Mutable {
  return {
    apiVersion: "v1",
    kind: "ResourceQuota",
    metadata: { name: "quota", namespace: NAMESPACE },
    spec: { hard },
  };
}

/** A container that passes the restricted profile with the given resources. */
function container(resources: Mutable = {}, name = "app"): Mutable {
  return {
    name,
    image: "example/app:1",
    resources,
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    },
  };
}

/** A Deployment whose pods pass every rule in a restricted namespace without quota or limits. */
function deployment(containers: Mutable[] = [container()], replicas = 1): Mutable {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "app", namespace: NAMESPACE },
    spec: {
      replicas,
      selector: { matchLabels: { app: "app" } },
      template: {
        metadata: { labels: { app: "app" } },
        spec: {
          securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
          containers,
        },
      },
    },
  };
}

const messages = (vs: Violation[]) => vs.map((v) => `${v.rule}: ${v.message}`);

/** Admits one deployment changed by `change` in a restricted namespace; the violations. */
function restricted(change: (d: Mutable) => void, extra: Mutable[] = []): Violation[] {
  const d = deployment();
  change(d);
  return admit([namespace("restricted"), ...extra, d]);
}

describe("admission helper: each rule refuses what the API server refuses", () => {
  it("admits the baseline pod (so every refusal below comes from its one change)", () => {
    assert.deepEqual(admit([namespace("restricted"), deployment()]), []);
  });

  describe("LimitRanger (plugin/pkg/admission/limitranger/admission.go)", () => {
    it("refuses the pre-fix case: request 4 CPU, no limit, LimitRange default limit 1", () => {
      const lr = limitRange({
        defaultRequest: { cpu: "100m", memory: "128Mi" },
        default: { cpu: "1", memory: "512Mi" },
      });
      const vllm = container(
        { requests: { cpu: "4", memory: "16Gi" }, limits: { memory: "16Gi" } },
        "vllm",
      );
      const vs = admit([namespace("restricted"), lr, deployment([vllm])]);
      assert.deepEqual(
        vs.map((v) => [v.object, v.container, v.rule, v.message]),
        [
          [
            "Deployment llm-test/app",
            "vllm",
            "validation",
            "resources.requests[cpu]: 4: must be less than or equal to cpu limit of 1",
          ],
        ],
      );
    });

    it("fills in defaultRequest and default only where the container sets none", () => {
      // The default limit of 1 CPU reaches only the container without a CPU limit of its own.
      const lr = limitRange({ default: { cpu: "1" }, defaultRequest: { cpu: "500m" } });
      const own = container({ requests: { cpu: "2" }, limits: { cpu: "4" } }, "own");
      const none = container({}, "none");
      assert.deepEqual(admit([namespace("restricted"), lr, deployment([own, none])]), []);
    });

    it("a container with a limit and no request gets request = limit (SetDefaults_Pod), then min applies", () => {
      const lr = limitRange({ min: { cpu: "200m" } });
      const ok = container({ limits: { cpu: "500m" } }, "ok");
      const low = container({ limits: { cpu: "100m" } }, "low");
      const vs = admit([namespace("restricted"), lr, deployment([ok, low])]);
      assert.deepEqual(messages(vs), [
        "LimitRanger: minimum cpu usage per Container is 200m, but request is 100m.",
      ]);
      assert.equal(vs[0].container, "low");
    });

    it("defaultRequest falls back to min, default limit to max (SetDefaults_LimitRangeItem)", () => {
      // max 2 CPU becomes the default limit: a 4-CPU request without a limit exceeds both.
      const lr = limitRange({ max: { cpu: "2" } });
      const vs = admit([
        namespace("restricted"),
        lr,
        deployment([container({ requests: { cpu: "4" } })]),
      ]);
      assert.deepEqual(messages(vs).sort(), [
        "LimitRanger: maximum cpu usage per Container is 2, but request is 4.",
        "validation: resources.requests[cpu]: 4: must be less than or equal to cpu limit of 2",
      ]);
      const vsMin = admit([
        namespace("restricted"),
        limitRange({ min: { memory: "256Mi" }, defaultRequest: {} }),
        deployment([container({ limits: { memory: "128Mi" } })]),
      ]);
      assert.deepEqual(messages(vsMin), [
        "LimitRanger: minimum memory usage per Container is 256Mi, but request is 128Mi.",
      ]);
    });

    it("max needs a limit on every container", () => {
      const vs = admit([
        namespace("restricted"),
        limitRange({ max: { memory: "1Gi" }, default: { cpu: "1" } }),
        deployment([container({ requests: { memory: "512Mi" }, limits: { memory: "2Gi" } })]),
      ]);
      assert.deepEqual(messages(vs), [
        "LimitRanger: maximum memory usage per Container is 1Gi, but limit is 2Gi.",
      ]);
    });

    it("maxLimitRequestRatio bounds limit / request", () => {
      const vs = admit([
        namespace("restricted"),
        limitRange({ maxLimitRequestRatio: { cpu: "2" } }),
        deployment([container({ requests: { cpu: "1" }, limits: { cpu: "4" } })]),
      ]);
      assert.deepEqual(messages(vs), [
        "LimitRanger: cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000.",
      ]);
    });

    it("Pod items bound the sum over the pod's containers", () => {
      const lr = {
        ...limitRange({}),
        spec: { limits: [{ type: "Pod", max: { cpu: "3" } }] },
      };
      const c = (name: string) => container({ requests: { cpu: "2" }, limits: { cpu: "2" } }, name);
      const vs = admit([namespace("restricted"), lr, deployment([c("a"), c("b")])]);
      assert.deepEqual(messages(vs), [
        "LimitRanger: maximum cpu usage per Pod is 3, but limit is 4000m.",
      ]);
      assert.equal(vs[0].container, undefined);
    });

    it("applies to init containers too", () => {
      const d = deployment();
      d.spec.template.spec.initContainers = [container({ requests: { cpu: "2" } }, "warmup")];
      const vs = admit([namespace("restricted"), limitRange({ default: { cpu: "1" } }), d]);
      assert.deepEqual(
        vs.map((v) => v.container),
        ["init:warmup"],
      );
    });
  });

  describe("resource validation (pkg/apis/core/validation ValidateContainerResourceRequirements)", () => {
    it("an extended resource needs a limit equal to its request, in whole units", () => {
      const gpu = (r: Mutable) => admit([namespace("restricted"), deployment([container(r)])]);
      assert.deepEqual(messages(gpu({ limits: { "nvidia.com/gpu": "1" } })), []);
      assert.deepEqual(messages(gpu({ requests: { "nvidia.com/gpu": "1" } })), [
        "validation: resources.limits[nvidia.com/gpu]: Limit must be set for non overcommitable resources",
      ]);
      assert.deepEqual(
        messages(gpu({ requests: { "nvidia.com/gpu": "1" }, limits: { "nvidia.com/gpu": "2" } })),
        [
          "validation: resources.requests[nvidia.com/gpu]: 1: must be equal to nvidia.com/gpu limit of 2",
        ],
      );
      assert.deepEqual(messages(gpu({ limits: { "nvidia.com/gpu": "500m" } })), [
        "validation: resources.limits[nvidia.com/gpu]: 500m: must be an integer",
        "validation: resources.requests[nvidia.com/gpu]: 500m: must be an integer",
      ]);
    });

    it("a native resource's request may not exceed its limit", () => {
      const vs = restricted((d) => {
        d.spec.template.spec.containers[0].resources = {
          requests: { memory: "2Gi" },
          limits: { memory: "1Gi" },
        };
      });
      assert.deepEqual(messages(vs), [
        "validation: resources.requests[memory]: 2Gi: must be less than or equal to memory limit of 1Gi",
      ]);
    });
  });

  describe("ResourceQuota (plugin/pkg/admission/resourcequota, pkg/quota/v1/evaluator/core/pods.go)", () => {
    it("a quota on cpu or memory makes every container specify it", () => {
      const vs = admit([
        namespace("restricted"),
        quota({ "requests.cpu": "10", "limits.memory": "10Gi" }),
        deployment([container({ requests: { cpu: "1" } }, "a"), container({}, "b")]),
      ]);
      assert.deepEqual(
        vs.map((v) => `${v.container} ${v.message}`),
        [
          "a must specify limits.memory (quota quota constrains it)",
          "b must specify requests.cpu, limits.memory (quota quota constrains it)",
        ],
      );
    });

    it("LimitRanger runs first, so its defaultRequest satisfies a cpu quota", () => {
      const vs = admit([
        namespace("restricted"),
        limitRange({ defaultRequest: { cpu: "100m" } }),
        quota({ "requests.cpu": "10" }),
        deployment(),
      ]);
      assert.deepEqual(vs, []);
    });

    it("a GPU quota does not make pods without GPUs specify one (extended resources are not in validationSet)", () => {
      const vs = admit([
        namespace("restricted"),
        quota({ "requests.nvidia.com/gpu": "2" }),
        deployment(),
      ]);
      assert.deepEqual(vs, []);
    });

    it("totals over every pod (replicas, HPA maximum, rollout surge) stay within hard", () => {
      const gpuPod = container({ limits: { "nvidia.com/gpu": "1" } });
      const d = deployment([gpuPod], 2);
      d.spec.strategy = {
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: 0, maxUnavailable: 1 },
      };
      const q = quota({ "requests.nvidia.com/gpu": "2" });
      assert.deepEqual(admit([namespace("restricted"), q, d]), []);
      // The default maxSurge (25%, rounded up) needs a third GPU during every rollout.
      delete d.spec.strategy;
      assert.deepEqual(messages(admit([namespace("restricted"), q, d])), [
        "ResourceQuota: exceeded quota: requests.nvidia.com/gpu 3 > hard 2 (Deployment llm-test/app: 3)",
      ]);
      const hpa = {
        apiVersion: "autoscaling/v2",
        kind: "HorizontalPodAutoscaler",
        metadata: { name: "app", namespace: NAMESPACE },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "app" },
          maxReplicas: 3,
        },
      };
      d.spec.strategy = { type: "Recreate" };
      assert.deepEqual(messages(admit([namespace("restricted"), q, d, hpa])), [
        "ResourceQuota: exceeded quota: requests.nvidia.com/gpu 3 > hard 2 (Deployment llm-test/app: 3)",
      ]);
    });

    it("a limits.<extended> quota is never enforced (only requests.<extended> is tracked)", () => {
      const vs = admit([namespace("restricted"), quota({ "limits.nvidia.com/gpu": "2" })]);
      assert.deepEqual(
        vs.map((v) => [v.object, v.message]),
        [
          [
            "ResourceQuota llm-test/quota",
            "limits.nvidia.com/gpu is never enforced: extended resources are quota'd only as requests.nvidia.com/gpu",
          ],
        ],
      );
    });
  });

  describe("Pod Security restricted (k8s.io/pod-security-admission policy/check_*.go)", () => {
    const pod = (d: Mutable) => d.spec.template.spec;
    const ctr = (d: Mutable) => d.spec.template.spec.containers[0];
    const cases: [string, (d: Mutable) => void, string][] = [
      [
        "runAsNonRoot unset",
        (d) => delete pod(d).securityContext.runAsNonRoot,
        "runAsNonRoot: pod or container must set securityContext.runAsNonRoot=true",
      ],
      [
        "runAsNonRoot false",
        (d) => (ctr(d).securityContext.runAsNonRoot = false),
        "runAsNonRoot: must not set securityContext.runAsNonRoot=false",
      ],
      [
        "runAsUser 0",
        (d) => (ctr(d).securityContext.runAsUser = 0),
        "runAsUser: must not set runAsUser=0",
      ],
      [
        "allowPrivilegeEscalation unset",
        (d) => delete ctr(d).securityContext.allowPrivilegeEscalation,
        "allowPrivilegeEscalation: must set securityContext.allowPrivilegeEscalation=false",
      ],
      [
        "capabilities not dropped",
        (d) => (ctr(d).securityContext.capabilities = { drop: ["NET_RAW"] }),
        `capabilities_restricted: must set securityContext.capabilities.drop=["ALL"]`,
      ],
      [
        "capability added",
        (d) => (ctr(d).securityContext.capabilities.add = ["CHOWN"]),
        "capabilities_restricted: must not add CHOWN (only NET_BIND_SERVICE)",
      ],
      [
        "seccomp unset",
        (d) => delete pod(d).securityContext.seccompProfile,
        `seccompProfile_restricted: pod or container must set seccompProfile.type to "RuntimeDefault" or "Localhost"`,
      ],
      [
        "seccomp Unconfined",
        (d) => (ctr(d).securityContext.seccompProfile = { type: "Unconfined" }),
        "seccompProfile_restricted: must not set seccompProfile.type to Unconfined",
      ],
      [
        "hostPath volume",
        (d) => (pod(d).volumes = [{ name: "host", hostPath: { path: "/" } }]),
        "restrictedVolumes: volume 'host' uses a restricted volume type",
      ],
      [
        "nfs volume",
        (d) => (pod(d).volumes = [{ name: "share", nfs: { server: "nfs", path: "/" } }]),
        "restrictedVolumes: volume 'share' uses a restricted volume type",
      ],
      [
        "hostNetwork",
        (d) => (pod(d).hostNetwork = true),
        "hostNamespaces: host namespaces: hostNetwork=true",
      ],
      ["hostPID", (d) => (pod(d).hostPID = true), "hostNamespaces: host namespaces: hostPID=true"],
      ["hostIPC", (d) => (pod(d).hostIPC = true), "hostNamespaces: host namespaces: hostIPC=true"],
      [
        "hostPort",
        (d) => (ctr(d).ports = [{ containerPort: 80, hostPort: 80 }]),
        "hostPorts: hostPort 80",
      ],
      [
        "privileged",
        (d) => (ctr(d).securityContext.privileged = true),
        "privileged: must not set securityContext.privileged=true",
      ],
      [
        "procMount Unmasked",
        (d) => (ctr(d).securityContext.procMount = "Unmasked"),
        // check_procMount_restricted.go (1.35+) overrides the baseline procMount check.
        "procMount_restricted: must not set procMount to Unmasked",
      ],
      [
        "unsafe sysctl",
        (d) => (pod(d).securityContext.sysctls = [{ name: "kernel.msgmax", value: "1" }]),
        "sysctls: forbidden sysctl kernel.msgmax",
      ],
      [
        "SELinux user",
        (d) => (ctr(d).securityContext.seLinuxOptions = { user: "root" }),
        "seLinuxOptions: forbidden seLinuxOptions (type, user or role)",
      ],
      [
        "SELinux type",
        (d) => (pod(d).securityContext.seLinuxOptions = { type: "spc_t" }),
        "seLinuxOptions: forbidden seLinuxOptions (type, user or role)",
      ],
      [
        "AppArmor Unconfined",
        (d) => (ctr(d).securityContext.appArmorProfile = { type: "Unconfined" }),
        "appArmorProfile: forbidden AppArmor profile type",
      ],
      [
        "AppArmor annotation",
        (d) =>
          (d.spec.template.metadata.annotations = {
            "container.apparmor.security.beta.kubernetes.io/app": "unconfined",
          }),
        "appArmorProfile: forbidden AppArmor annotation container.apparmor.security.beta.kubernetes.io/app=unconfined",
      ],
      [
        "Windows hostProcess",
        (d) => (ctr(d).securityContext.windowsOptions = { hostProcess: true }),
        "windowsHostProcess: must not set windowsOptions.hostProcess=true",
      ],
      [
        "probe host",
        (d) => (ctr(d).livenessProbe = { httpGet: { host: "10.0.0.1", port: 80 } }),
        "hostProbesAndHostLifecycle: probe or lifecycle host 10.0.0.1",
      ],
    ];
    for (const [what, change, message] of cases) {
      it(`refuses ${what}`, () => {
        assert.deepEqual(
          restricted(change).map((v) => `${v.rule}: ${v.message}`),
          [`PodSecurity: ${message}`],
        );
      });
    }

    it("allows NET_BIND_SERVICE, Localhost seccomp, PVC/emptyDir/secret/projected volumes", () => {
      const vs = restricted((d) => {
        const c = d.spec.template.spec.containers[0];
        c.securityContext.capabilities.add = ["NET_BIND_SERVICE"];
        c.securityContext.seccompProfile = { type: "Localhost", localhostProfile: "p.json" };
        d.spec.template.spec.volumes = [
          { name: "a", persistentVolumeClaim: { claimName: "c" } },
          { name: "b", emptyDir: { medium: "Memory" } },
          { name: "c", secret: { secretName: "s" } },
          { name: "d", projected: { sources: [] } },
        ];
      });
      assert.deepEqual(vs, []);
    });

    it("allows the latest safe sysctls, SELinux container_engine_t and AppArmor RuntimeDefault/Localhost", () => {
      // check_sysctls.go sysctlsAllowedV1Dot37, check_seLinuxOptions.go selinuxAllowedTypes1_31,
      // check_appArmorProfile.go allowedProfileType / allowedAnnotationValue.
      const vs = restricted((d) => {
        const pod = d.spec.template.spec;
        pod.securityContext.sysctls = [
          { name: "net.ipv4.tcp_notsent_lowat", value: "16384" },
          { name: "net.ipv4.tcp_slow_start_after_idle", value: "0" },
        ];
        pod.securityContext.seLinuxOptions = { type: "container_engine_t", level: "s0:c1,c2" };
        pod.securityContext.appArmorProfile = { type: "RuntimeDefault" };
        pod.containers[0].securityContext.appArmorProfile = {
          type: "Localhost",
          localhostProfile: "k8s-app",
        };
        d.spec.template.metadata.annotations = {
          "container.apparmor.security.beta.kubernetes.io/app": "localhost/k8s-app",
        };
      });
      assert.deepEqual(vs, []);
    });

    it("refuses an image, ephemeral or csi volume never; gitRepo and other inline sources always", () => {
      const volumes = (vs: Mutable[]) =>
        messages(restricted((d) => (d.spec.template.spec.volumes = vs)));
      assert.deepEqual(
        volumes([
          { name: "a", image: { reference: "example/weights:1" } },
          { name: "b", ephemeral: { volumeClaimTemplate: { spec: {} } } },
          { name: "c", csi: { driver: "secrets-store.csi.k8s.io" } },
          { name: "d", downwardAPI: { items: [] } },
          { name: "e", configMap: { name: "x" } },
        ]),
        [],
      );
      assert.deepEqual(volumes([{ name: "g", gitRepo: { repository: "x" } }]), [
        "PodSecurity: restrictedVolumes: volume 'g' uses a restricted volume type",
      ]);
    });

    it("relaxes runAsNonRoot and runAsUser for user-namespace pods (hostUsers: false, 1.35+), never procMount in restricted", () => {
      const root = (d: Mutable) => {
        d.spec.template.spec.hostUsers = false;
        delete d.spec.template.spec.securityContext.runAsNonRoot;
        d.spec.template.spec.securityContext.runAsUser = 0;
      };
      assert.deepEqual(restricted(root), []);
      const unmasked = (d: Mutable) => {
        root(d);
        d.spec.template.spec.containers[0].securityContext.procMount = "Unmasked";
      };
      assert.deepEqual(messages(restricted(unmasked)), [
        "PodSecurity: procMount_restricted: must not set procMount to Unmasked",
      ]);
      // Baseline relaxes procMount for user-namespace pods (check_procMount_baseline.go 1.35).
      const d = deployment();
      unmasked(d);
      assert.deepEqual(admit([namespace("baseline"), d]), []);
      delete d.spec.template.spec.hostUsers;
      assert.deepEqual(messages(admit([namespace("baseline"), d])), [
        "PodSecurity: procMount: must not set procMount to Unmasked",
      ]);
    });

    it("exempts Windows pods from seccomp, capabilities and allowPrivilegeEscalation (1.25+)", () => {
      const vs = restricted((d) => {
        d.spec.template.spec.os = { name: "windows" };
        delete d.spec.template.spec.securityContext.seccompProfile;
        d.spec.template.spec.containers[0].securityContext = {};
      });
      assert.deepEqual(vs, []);
    });

    it("checks init containers and names them", () => {
      const vs = restricted((d) => {
        d.spec.template.spec.initContainers = [{ name: "setup", image: "busybox" }];
      });
      assert.deepEqual(vs.map((v) => `${v.container} ${v.message}`).sort(), [
        `init:setup allowPrivilegeEscalation: must set securityContext.allowPrivilegeEscalation=false`,
        `init:setup capabilities_restricted: must set securityContext.capabilities.drop=["ALL"]`,
      ]);
    });

    it("enforces only the namespace's level: baseline skips restricted checks, none skips all", () => {
      const d = deployment([{ name: "root", image: "x", securityContext: { privileged: true } }]);
      assert.deepEqual(messages(admit([namespace("baseline"), d])), [
        "PodSecurity: privileged: must not set securityContext.privileged=true",
      ]);
      assert.deepEqual(admit([namespace(), d]), []);
    });

    it("finds the pods of Pods, StatefulSets, DaemonSets, Jobs and CronJobs too", () => {
      const bad = { name: "c", image: "x" };
      const podSpec = { containers: [bad] };
      const meta = { name: "w", namespace: NAMESPACE };
      const objects = [
        { apiVersion: "v1", kind: "Pod", metadata: meta, spec: podSpec },
        {
          apiVersion: "apps/v1",
          kind: "StatefulSet",
          metadata: meta,
          spec: { template: { spec: podSpec } },
        },
        {
          apiVersion: "apps/v1",
          kind: "DaemonSet",
          metadata: meta,
          spec: { template: { spec: podSpec } },
        },
        {
          apiVersion: "batch/v1",
          kind: "Job",
          metadata: meta,
          spec: { template: { spec: podSpec } },
        },
        {
          apiVersion: "batch/v1",
          kind: "CronJob",
          metadata: meta,
          spec: { jobTemplate: { spec: { template: { spec: podSpec } } } },
        },
      ];
      const refused = new Set(admit([namespace("restricted"), ...objects]).map((v) => v.object));
      assert.deepEqual([...refused].sort(), [
        "CronJob llm-test/w",
        "DaemonSet llm-test/w",
        "Job llm-test/w",
        "Pod llm-test/w",
        "StatefulSet llm-test/w",
      ]);
    });
  });
});

describe("admission of every real stack", () => {
  it("covers every Pulumi.<stack>.yaml in the repository", () => {
    assert.ok(STACKS.length >= 3, `stacks: ${STACKS}`);
  });

  for (const stack of STACKS) {
    it(`${stack}: every rendered pod is admitted under the stack's own LimitRange, quota and Pod Security level`, () => {
      const s = loadStackSpec(stack);
      const objects = renderStack(s);
      // Not vacuous: the namespace objects and both kinds of pods are there.
      assert.equal(
        buildNamespace(s).metadata.labels?.["pod-security.kubernetes.io/enforce"],
        "restricted",
      );
      for (const kind of ["Namespace", "LimitRange", "ResourceQuota"])
        assert.ok(
          objects.some((o) => o.kind === kind),
          `${stack} renders a ${kind}`,
        );
      const apps = objects
        .filter((o) => o.kind === "Deployment")
        .map((o) => o.metadata.labels?.["app.kubernetes.io/name"]);
      assert.ok(apps.includes("vllm") && apps.includes("vllm-router"), `deployments: ${apps}`);
      const vs = admit(objects);
      assert.deepEqual(vs, [], formatViolations(vs));
    });

    it(`${stack}: the pre-fix LimitRange (default limit cpu 1, memory 512Mi) refuses every model pod requesting more (all GPU models)`, () => {
      const s = loadStackSpec(stack);
      const old = buildLimitRange(s);
      old.spec!.limits[0].default = { cpu: "1", memory: "512Mi" };
      const objects = renderStack(s).map((o) => (o.kind === "LimitRange" ? old : o));
      const refused = new Set(admit(objects).map((v) => v.object));
      const models = objects.filter(
        (o) => o.kind === "Deployment" && o.metadata.labels?.["app.kubernetes.io/name"] === "vllm",
      );
      const over = models.filter((o) => {
        const pod = (o as unknown as { spec: { template: { spec: { containers: Container[] } } } })
          .spec.template.spec;
        const requests = pod.containers[0].resources?.requests ?? {};
        return quantity(requests.cpu)! > 1 || quantity(requests.memory)! > 512 * 2 ** 20;
      });
      const id = (o: (typeof models)[number]) =>
        `Deployment ${o.metadata.namespace}/${o.metadata.name}`;
      assert.ok(models.length > 0);
      // Every GPU model requests several CPUs: the old default refused all of them.
      if (s.models.some((m) => m.gpu)) assert.equal(over.length, models.length);
      assert.deepEqual([...refused].sort(), over.map(id).sort());
    });

    it(`${stack}: what the program registers under mocks is admitted too`, async () => {
      const { resources } = await stackForPolicies(stack);
      const kube = resources.filter((r) => r.type.startsWith("kubernetes:")).map((r) => r.inputs);
      assert.ok(resources.some((r) => r.type === TYPES.deployment));
      assert.ok(
        kube.some((o) => o.kind === "LimitRange") && kube.some((o) => o.kind === "Namespace"),
      );
      const vs = admit(kube);
      assert.deepEqual(vs, [], formatViolations(vs));
    });
  }

  it("sees the capacity config through the builders: a cpuLimit below the cpu request is refused", () => {
    const raw = rawStackFile("production") as Mutable;
    raw.capacity["llama-3-1-8b-instruct"].resources.cpuLimit = "2";
    // The config refuses it first, by the same rule; the builders are checked on the spec.
    assert.throws(() => parseStackConfig(raw), /resources\.cpuLimit: 2 is below the request/);
    const s = loadStackSpec("production");
    s.models.find((m) => m.name === "llama-3-1-8b-instruct")!.resources.cpuLimit = "2";
    const vs = admit(renderStack(s));
    assert.deepEqual(
      vs.map((v) => [v.object, v.container, v.message]),
      [
        [
          "Deployment llm-production/llama-3-1-8b-instruct-production",
          "vllm",
          "resources.requests[cpu]: 8: must be less than or equal to cpu limit of 2",
        ],
      ],
    );
  });

  it("the policy pack's passing fleet is admitted in a namespace the program sets up", () => {
    const s = loadStackSpec("production");
    assert.equal(s.namespace, NS, "the fixtures live in the production namespace");
    const objects = [buildNamespace(s), buildLimitRange(s), ...fleet().map((r) => r.inputs)];
    assert.ok(objects.filter((o) => o.kind === "Deployment").length >= 2);
    const vs = admit(objects);
    assert.deepEqual(vs, [], formatViolations(vs));
  });
});
