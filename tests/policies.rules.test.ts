// Each rule of the policy pack against a passing and a failing fixture, called directly.
import { strict as assert } from "node:assert";
import { ResourceValidationPolicy } from "@pulumi/policy";
import { TYPES } from "../policies/kube";
import {
  autoscaledReplicasUnset,
  minReplicas,
  pdbForReplicatedWorkloads,
  replicasSpreadAcrossNodes,
} from "../policies/rules/availability";
import {
  networkPolicySelectsModels,
  registryEndpointMatchesService,
  selectorsMatchPods,
  serviceMonitorPerModel,
} from "../policies/rules/coverage";
import { gpuNodeSelector, gpuQuota, gpuRequestsEqualLimits } from "../policies/rules/gpu";
import { probesConfigured, startupBudgetCovered } from "../policies/rules/probes";
import {
  containerResources,
  ephemeralStorageRequests,
  imagePinnedByDigest,
  podSecurityRestricted,
  serviceLinksDisabled,
} from "../policies/rules/security";
import {
  MODEL_TIMEOUTS,
  Mutable,
  NAME,
  Outcome,
  checkResource,
  checkStack,
  fleet,
  fleetWith,
  fleetWithout,
  modelDeployment,
  routerAutoscaler,
  routerDeployment,
} from "./support/policyFixtures";

const vllm = (d: Mutable) => d.spec.template.spec.containers[0];

function model(change?: (d: Mutable) => void): Mutable {
  const d = modelDeployment();
  change?.(d);
  return d;
}

function router(change?: (d: Mutable) => void): Mutable {
  const d = routerDeployment();
  change?.(d);
  return d;
}

const checkModel = (policy: ResourceValidationPolicy, d: Mutable, config?: object) =>
  checkResource(policy, TYPES.deployment, d, {
    opts: { customTimeouts: MODEL_TIMEOUTS },
    config,
  });

function passes(outcome: Outcome) {
  assert.equal(
    outcome.notApplicable,
    undefined,
    `rule was not applicable: ${outcome.notApplicable}`,
  );
  assert.deepEqual(outcome.violations, []);
}

/** Exactly one violation, matching every pattern (what, where, how to fix). */
function failsWith(outcome: Outcome, ...patterns: RegExp[]) {
  assert.equal(outcome.violations.length, 1, `violations: ${JSON.stringify(outcome.violations)}`);
  for (const p of patterns) assert.match(outcome.violations[0], p);
}

describe("policy rules (each with a passing and a failing fixture)", () => {
  describe("gpu-requests-equal-limits", () => {
    it("passes when the vLLM container requests exactly its GPU limit", async () => {
      passes(await checkModel(gpuRequestsEqualLimits, model()));
    });
    it("fails when requests differ from limits", async () => {
      const d = model((d) => (vllm(d).resources.limits["nvidia.com/gpu"] = "2"));
      failsWith(
        await checkModel(gpuRequestsEqualLimits, d),
        /Deployment llm-production\/llama-3-1-8b-instruct-production/,
        /container 'vllm' requests 1 nvidia.com\/gpu but limits 2/,
        /set requests equal to limits/,
      );
    });
    it("fails when the vLLM pod requests no GPU at all", async () => {
      const d = model((d) => {
        delete vllm(d).resources.requests["nvidia.com/gpu"];
        delete vllm(d).resources.limits["nvidia.com/gpu"];
      });
      failsWith(await checkModel(gpuRequestsEqualLimits, d), /requests no GPU/, /gpu.count/);
    });
    it("fails on a fractional GPU limit", async () => {
      const d = model((d) => {
        vllm(d).resources.limits["nvidia.com/gpu"] = "500m";
        delete vllm(d).resources.requests["nvidia.com/gpu"];
      });
      failsWith(await checkModel(gpuRequestsEqualLimits, d), /whole devices, use an integer >= 1/);
    });
  });

  describe("gpu-node-selector", () => {
    it("passes with the GPU product node label", async () => {
      passes(await checkModel(gpuNodeSelector, model()));
    });
    it("passes with required node affinity on a GPU label", async () => {
      const d = model((d) => {
        d.spec.template.spec.nodeSelector = {};
        d.spec.template.spec.affinity = {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: "nvidia.com/gpu.present", operator: "Exists" }] },
              ],
            },
          },
        };
      });
      passes(await checkModel(gpuNodeSelector, d));
    });
    it("fails when a GPU pod does not select GPU nodes", async () => {
      const d = model((d) => (d.spec.template.spec.nodeSelector = { "kubernetes.io/os": "linux" }));
      failsWith(
        await checkModel(gpuNodeSelector, d),
        /llama-3-1-8b-instruct-production: requests GPUs but its nodeSelector \(kubernetes.io\/os\)/,
        /capacity.<model>.gpu.product/,
      );
    });
    it("does not apply to pods without GPUs", async () => {
      const outcome = await checkResource(gpuNodeSelector, TYPES.deployment, router());
      assert.match(outcome.notApplicable ?? "", /does not apply/);
    });
  });

  describe("probes-configured", () => {
    it("passes for vLLM and router probes", async () => {
      passes(await checkModel(probesConfigured, model()));
      passes(await checkResource(probesConfigured, TYPES.deployment, router()));
    });
    it("fails when readiness and liveness check the same thing", async () => {
      const d = model(
        (d) => (vllm(d).readinessProbe = { httpGet: { path: "/health", port: "http" } }),
      );
      failsWith(
        await checkModel(probesConfigured, d),
        /container 'vllm' uses the same check for readiness and liveness/,
        /Point readiness at a deeper check \(vLLM: \/v1\/models\)/,
      );
    });
    it("fails without a startup probe on vLLM", async () => {
      const d = model((d) => delete vllm(d).startupProbe);
      failsWith(
        await checkModel(probesConfigured, d),
        /has no startupProbe/,
        /startupBudgetMinutes/,
      );
    });
    it("fails without a readiness probe on the router", async () => {
      const r = router((r) => delete r.spec.template.spec.containers[0].readinessProbe);
      failsWith(
        await checkResource(probesConfigured, TYPES.deployment, r),
        /Deployment llm-production\/vllm-router-production: container 'router' has no readinessProbe/,
      );
    });
    it("fails when vLLM's liveness gives up after fewer than 5 failures", async () => {
      const d = model((d) => (vllm(d).livenessProbe.failureThreshold = 3));
      failsWith(await checkModel(probesConfigured, d), /failureThreshold is 3/, /5 or more/);
    });
    it("honours a configured liveness threshold", async () => {
      const d = model((d) => (vllm(d).livenessProbe.failureThreshold = 3));
      passes(await checkModel(probesConfigured, d, { minLivenessFailureThreshold: 3 }));
    });
  });

  describe("startup-budget-covered", () => {
    it("passes when probe and Pulumi timeouts cover the budget", async () => {
      passes(await checkModel(startupBudgetCovered, model()));
    });
    it("fails when the startup probe gives up before the budget", async () => {
      const d = model((d) => (vllm(d).startupProbe.failureThreshold = 30));
      failsWith(
        await checkModel(startupBudgetCovered, d),
        /startupProbe allows 300s .* startup budget is 15 min \(900s\)/,
        /Raise failureThreshold to at least 90/,
      );
    });
    it("fails when Pulumi would stop waiting after its 10 minute default", async () => {
      const outcome = await checkResource(startupBudgetCovered, TYPES.deployment, model());
      assert.equal(outcome.violations.length, 2, JSON.stringify(outcome.violations));
      assert.match(
        outcome.violations[0],
        /Pulumi waits 600s .* on create .* customTimeouts.create/,
      );
      assert.match(outcome.violations[1], /on update/);
    });
    it("accepts the pulumi.com/timeoutSeconds annotation instead of customTimeouts", async () => {
      const d = model((d) => (d.metadata.annotations["pulumi.com/timeoutSeconds"] = "1800"));
      passes(await checkResource(startupBudgetCovered, TYPES.deployment, d));
    });
    it("fails when the budget annotation is missing", async () => {
      const d = model((d) => (d.metadata.annotations = {}));
      failsWith(
        await checkModel(startupBudgetCovered, d),
        /annotation vllm.ai\/startup-budget-minutes is missing/,
      );
    });
  });

  describe("image-pinned-by-digest", () => {
    it("passes for digest-pinned production images", async () => {
      passes(await checkModel(imagePinnedByDigest, model()));
    });
    it("fails for a production image by tag", async () => {
      const d = model((d) => (vllm(d).image = "vllm/vllm-openai:v0.11.0"));
      failsWith(
        await checkModel(imagePinnedByDigest, d),
        /container 'vllm' runs image 'vllm\/vllm-openai:v0.11.0', not pinned by digest/,
        /Use 'vllm\/vllm-openai:v0.11.0@sha256:<digest>'/,
      );
    });
    it("does not apply to development objects by default", async () => {
      const d = model((d) => {
        vllm(d).image = "vllm/vllm-openai:v0.11.0";
        d.metadata.labels = { ...d.metadata.labels, "vllm.ai/environment": "development" };
      });
      const outcome = await checkModel(imagePinnedByDigest, d);
      assert.match(
        outcome.notApplicable ?? "",
        /applies to production; this object is development/,
      );
    });
  });

  describe("min-replicas", () => {
    it("passes with two model replicas and an autoscaled router (minimum 3)", async () => {
      passes(await checkStack(minReplicas, fleet()));
    });
    it("fails with one model replica in production", async () => {
      failsWith(
        await checkStack(
          minReplicas,
          fleetWith(NAME, (d) => (d.spec.replicas = 1)),
        ),
        /Deployment llm-production\/llama-3-1-8b-instruct-production: runs 1 replica; production needs at least 2/,
        /Raise capacity.llama-3-1-8b-instruct.replicas/,
      );
    });
    it("fails when the router's autoscaler may scale down to one", async () => {
      failsWith(
        await checkStack(
          minReplicas,
          fleetWith("vllm-router-hpa", (h) => (h.spec.minReplicas = 1)),
        ),
        /vllm-router-production: may scale down to 1 \(HorizontalPodAutoscaler llm-production\/vllm-router-production minReplicas\)/,
        /Raise router.replicas/,
      );
    });
    it("fails for a single router replica without an autoscaler", async () => {
      failsWith(
        await checkStack(minReplicas, fleetWithout("vllm-router-hpa")),
        /vllm-router-production: runs 1 replica/,
      );
    });
    it("ignores a model switched off (zero replicas)", async () => {
      passes(
        await checkStack(
          minReplicas,
          fleetWith(NAME, (d) => (d.spec.replicas = 0)),
        ),
      );
    });
  });

  describe("pdb-for-replicated-workloads", () => {
    it("passes when every replicated workload has a PDB", async () => {
      passes(await checkStack(pdbForReplicatedWorkloads, fleet()));
    });
    it("fails when a replicated model has no PDB", async () => {
      failsWith(
        await checkStack(pdbForReplicatedWorkloads, fleetWithout(`${NAME}-pdb`)),
        /Deployment llm-production\/llama-3-1-8b-instruct-production: 2 replicas but no PodDisruptionBudget/,
        /maxUnavailable: 1/,
      );
    });
    it("fails when the PDB blocks every eviction", async () => {
      const resources = fleetWith(`${NAME}-pdb`, (p) => {
        delete p.spec.maxUnavailable;
        p.spec.minAvailable = "100%";
      });
      failsWith(
        await checkStack(pdbForReplicatedWorkloads, resources),
        /PodDisruptionBudget llm-production\/llama-3-1-8b-instruct-production: allows 0 of 2 pods/,
        /blocks node drains/,
      );
    });
  });

  describe("network-policy-selects-models", () => {
    it("passes with a model policy and a default-deny", async () => {
      passes(await checkStack(networkPolicySelectsModels, fleet()));
    });
    it("fails when no policy selects the model's pods", async () => {
      const resources = fleetWithout(`${NAME}-netpol`);
      failsWith(
        await checkStack(networkPolicySelectsModels, resources),
        /llama-3-1-8b-instruct-production: no NetworkPolicy selects its pods/,
        /allows ingress from the router pods/,
      );
    });
    it("fails when a selecting policy admits every source", async () => {
      const resources = fleetWith(`${NAME}-netpol`, (p) => (p.spec.ingress = [{}]));
      failsWith(
        await checkStack(networkPolicySelectsModels, resources),
        /NetworkPolicy llm-production\/llama-3-1-8b-instruct-production: has an ingress rule without 'from'/,
      );
    });
    it("fails without a namespace default-deny", async () => {
      failsWith(
        await checkStack(networkPolicySelectsModels, fleetWithout("default-deny")),
        /namespace llm-production: no default-deny NetworkPolicy/,
      );
    });
  });

  describe("service-monitor-per-model", () => {
    it("passes when a ServiceMonitor selects the model's Service", async () => {
      passes(await checkStack(serviceMonitorPerModel, fleet()));
    });
    it("fails when no ServiceMonitor selects it", async () => {
      const resources = fleet().filter((r) => r.type !== TYPES.serviceMonitor);
      failsWith(
        await checkStack(serviceMonitorPerModel, resources),
        /llama-3-1-8b-instruct-production: no ServiceMonitor .* selects its Service Service llm-production\/llama-3-1-8b-instruct-production/,
        /monitoring.serviceMonitor: true/,
      );
    });
    it("fails when the ServiceMonitor looks in another namespace", async () => {
      const resources = fleetWith(`${NAME}-monitor`, (m) => {
        m.spec.namespaceSelector = { matchNames: ["other"] };
      });
      failsWith(await checkStack(serviceMonitorPerModel, resources), /no ServiceMonitor/);
    });
  });

  describe("pod-security-restricted", () => {
    it("passes for the router and vLLM", async () => {
      passes(await checkResource(podSecurityRestricted, TYPES.deployment, router()));
      passes(await checkModel(podSecurityRestricted, model()));
    });
    it("fails when the router may escalate and writes its root filesystem", async () => {
      const r = router((r) => (r.spec.template.spec.containers[0].securityContext = {}));
      failsWith(
        await checkResource(podSecurityRestricted, TYPES.deployment, r),
        /vllm-router-production: container 'router' does not meet the restricted Pod Security Standard/,
        /allowPrivilegeEscalation=false; capabilities_restricted: must set securityContext.capabilities.drop=\["ALL"\]/,
        /readOnlyRootFilesystem=true/,
      );
    });
    it("fails on host namespaces", async () => {
      const r = router((r) => (r.spec.template.spec.hostNetwork = true));
      failsWith(
        await checkResource(podSecurityRestricted, TYPES.deployment, r),
        /vllm-router-production: pod does not meet the restricted Pod Security Standard: hostNamespaces: host namespaces: hostNetwork=true/,
      );
    });
    it("fails when a pod mounts a service account token", async () => {
      const r = router((r) => delete r.spec.template.spec.automountServiceAccountToken);
      failsWith(
        await checkResource(podSecurityRestricted, TYPES.deployment, r),
        /vllm-router-production: pod mounts a service account token/,
        /Set automountServiceAccountToken: false/,
      );
    });
    it("fails when vLLM runs as root, set on the pod or on the container", async () => {
      const pod = model((d) => (d.spec.template.spec.securityContext = { runAsUser: 0 }));
      failsWith(
        await checkModel(podSecurityRestricted, pod),
        /llama-3-1-8b-instruct-production: pod does not meet the restricted Pod Security Standard: runAsUser: pod must not set runAsUser=0/,
      );
      const ctr = model((d) => (vllm(d).securityContext.runAsUser = 0));
      failsWith(
        await checkModel(podSecurityRestricted, ctr),
        /container 'vllm' does not meet the restricted Pod Security Standard: runAsUser: must not set runAsUser=0/,
      );
    });

    // Every part of the restricted standard, one failing fixture each (kubernetes/pod-security-admission
    // policy/check_*.go; the check's ID leads the message).
    const pod = (d: Mutable) => d.spec.template.spec;
    const cases: [string, (d: Mutable) => void, RegExp][] = [
      [
        "procMount Unmasked",
        (d) => (vllm(d).securityContext.procMount = "Unmasked"),
        /container 'vllm' .*procMount_restricted: must not set procMount to Unmasked/,
      ],
      [
        "an unsafe sysctl",
        (d) => (pod(d).securityContext.sysctls = [{ name: "kernel.msgmax", value: "65536" }]),
        /pod .*sysctls: forbidden sysctl kernel.msgmax/,
      ],
      [
        "an SELinux type outside the allowed set",
        (d) => (pod(d).securityContext.seLinuxOptions = { type: "spc_t" }),
        /pod .*seLinuxOptions: forbidden seLinuxOptions/,
      ],
      [
        "an SELinux user",
        (d) => (vllm(d).securityContext.seLinuxOptions = { user: "system_u" }),
        /container 'vllm' .*seLinuxOptions/,
      ],
      [
        "an SELinux role",
        (d) => (vllm(d).securityContext.seLinuxOptions = { role: "sysadm_r" }),
        /container 'vllm' .*seLinuxOptions/,
      ],
      [
        "AppArmor Unconfined in the securityContext",
        (d) => (vllm(d).securityContext.appArmorProfile = { type: "Unconfined" }),
        /container 'vllm' .*appArmorProfile: forbidden AppArmor profile type/,
      ],
      [
        "an unconfined AppArmor annotation",
        (d) =>
          (d.spec.template.metadata.annotations = {
            "container.apparmor.security.beta.kubernetes.io/vllm": "unconfined",
          }),
        /pod .*appArmorProfile: forbidden AppArmor annotation container.apparmor.security.beta.kubernetes.io\/vllm=unconfined/,
      ],
      [
        "an nfs volume",
        (d) => (pod(d).volumes = [{ name: "weights", nfs: { server: "nfs", path: "/w" } }]),
        /pod .*restrictedVolumes: volume 'weights' uses a restricted volume type/,
      ],
      [
        "a hostPath volume",
        (d) => (pod(d).volumes = [{ name: "host", hostPath: { path: "/" } }]),
        /pod .*restrictedVolumes: volume 'host'/,
      ],
      [
        "a Windows hostProcess container",
        (d) => (vllm(d).securityContext.windowsOptions = { hostProcess: true }),
        /container 'vllm' .*windowsHostProcess/,
      ],
      [
        "a host port",
        (d) => (vllm(d).ports = [{ containerPort: 8000, hostPort: 8000 }]),
        /container 'vllm' .*hostPorts: hostPort 8000/,
      ],
      [
        "hostPID",
        (d) => (pod(d).hostPID = true),
        /pod .*hostNamespaces: host namespaces: hostPID=true/,
      ],
      [
        "a privileged container",
        (d) => (vllm(d).securityContext.privileged = true),
        /container 'vllm' .*privileged: must not set securityContext.privileged=true/,
      ],
      [
        "an added capability",
        (d) => (vllm(d).securityContext.capabilities.add = ["SYS_ADMIN"]),
        /container 'vllm' .*capabilities_restricted: must not add SYS_ADMIN/,
      ],
      [
        "runAsNonRoot: false",
        (d) => (vllm(d).securityContext.runAsNonRoot = false),
        /container 'vllm' .*runAsNonRoot: must not set securityContext.runAsNonRoot=false/,
      ],
      [
        "seccomp Unconfined",
        (d) => (vllm(d).securityContext.seccompProfile = { type: "Unconfined" }),
        /container 'vllm' .*seccompProfile_restricted: must not set seccompProfile.type to Unconfined/,
      ],
      [
        "a probe on another host",
        (d) => (vllm(d).livenessProbe.httpGet.host = "10.0.0.1"),
        /container 'vllm' .*hostProbesAndHostLifecycle/,
      ],
    ];
    for (const [what, change, pattern] of cases) {
      it(`fails on ${what}`, async () => {
        failsWith(await checkModel(podSecurityRestricted, model(change)), pattern);
      });
    }

    it("allows what the standard allows: safe sysctls, container_t, RuntimeDefault AppArmor, PVC/emptyDir/secret/projected/csi volumes", async () => {
      const d = model((d) => {
        pod(d).securityContext.sysctls = [{ name: "net.ipv4.tcp_keepalive_time", value: "60" }];
        pod(d).securityContext.seLinuxOptions = { type: "container_t", level: "s0:c1,c2" };
        vllm(d).securityContext.appArmorProfile = { type: "RuntimeDefault" };
        d.spec.template.metadata.annotations = {
          "container.apparmor.security.beta.kubernetes.io/vllm": "runtime/default",
        };
        pod(d).volumes = [
          { name: "a", persistentVolumeClaim: { claimName: "c" } },
          { name: "b", emptyDir: { medium: "Memory" } },
          { name: "c", secret: { secretName: "s" } },
          { name: "d", projected: { sources: [] } },
          { name: "e", csi: { driver: "secrets-store.csi.k8s.io" } },
        ];
      });
      passes(await checkModel(podSecurityRestricted, d));
    });
  });

  describe("container-resources", () => {
    it("passes when requests and memory limits are set", async () => {
      passes(await checkModel(containerResources, model()));
    });
    it("fails for an init container without resources", async () => {
      const d = model(
        (d) => (d.spec.template.spec.initContainers = [{ name: "fetch", image: "busybox" }]),
      );
      failsWith(
        await checkModel(containerResources, d),
        /init container 'fetch' has no requests.cpu, requests.memory, limits.memory/,
      );
    });
    it("fails when a limit is below the request", async () => {
      const d = model((d) => (vllm(d).resources.limits.memory = "16Gi"));
      failsWith(
        await checkModel(containerResources, d),
        /container 'vllm' limits memory to 16Gi, below its request of 48Gi/,
        /capacity.<model>.resources.memoryLimit/,
      );
    });
    it("requires CPU limits only when configured", async () => {
      failsWith(
        await checkModel(containerResources, model(), { requireCpuLimit: true }),
        /container 'vllm' has no limits.cpu/,
      );
    });
  });

  describe("service-links-disabled", () => {
    it("passes when vLLM pods disable service links", async () => {
      passes(await checkModel(serviceLinksDisabled, model()));
    });
    it("fails when service links are left on", async () => {
      const d = model((d) => delete d.spec.template.spec.enableServiceLinks);
      failsWith(
        await checkModel(serviceLinksDisabled, d),
        /enableServiceLinks is unset \(defaults to true\)/,
        /VLLM_PORT/,
        /Set enableServiceLinks: false/,
      );
    });
  });

  describe("registry-endpoint-matches-service", () => {
    it("passes when the entry points at the Service DNS name", async () => {
      passes(await checkStack(registryEndpointMatchesService, fleet()));
    });
    it("fails for an endpoint that is not the Service DNS name", async () => {
      const resources = fleetWith(`${NAME}-registry`, (e) => (e.endpoint = "10.0.0.7:8000"));
      failsWith(
        await checkStack(registryEndpointMatchesService, resources),
        /registry entry llama-3-1-8b-instruct-production-registry \(model llama-3-1-8b-instruct, production\): endpoint is '10.0.0.7:8000'/,
        /answers at 'llama-3-1-8b-instruct-production.llm-production.svc.cluster.local:8000'/,
      );
    });
    it("fails when the Service is missing", async () => {
      const resources = fleet().filter((r) => r.type !== TYPES.service);
      failsWith(
        await checkStack(registryEndpointMatchesService, resources),
        /no Service llm-production\/llama-3-1-8b-instruct-production in the stack/,
      );
    });
    it("fails when a served model is not registered", async () => {
      failsWith(
        await checkStack(registryEndpointMatchesService, fleetWithout(`${NAME}-registry`)),
        /serves model 'llama-3-1-8b-instruct' but no registry entry registers it/,
      );
    });
  });

  describe("gpu-quota", () => {
    it("passes when replicas x GPUs fit the quota", async () => {
      passes(await checkStack(gpuQuota, fleet()));
    });
    it("fails when the namespace needs more GPUs than its quota", async () => {
      const resources = fleetWith(
        "gpu-budget",
        (q) => (q.spec.hard["requests.nvidia.com/gpu"] = "1"),
      );
      failsWith(
        await checkStack(gpuQuota, resources),
        /ResourceQuota llm-production\/gpu-budget: allows 1 nvidia.com\/gpu but the namespace needs 2/,
        /raise gpuQuota/,
      );
    });
    it("counts the pods a rolling update surges", async () => {
      const resources = fleetWith(NAME, (d) => {
        d.spec.strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%" } };
        d.spec.replicas = 4;
      });
      failsWith(
        await checkStack(gpuQuota, resources),
        /needs 5 .*4x1 \(\+1 during rollout\)/,
        /maxSurge: 0/,
      );
      passes(await checkStack(gpuQuota, resources, { includeRolloutSurge: false }));
    });
    it("counts an autoscaled GPU workload at its maximum", async () => {
      const resources = fleet().concat({
        type: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        name: `${NAME}-hpa`,
        inputs: {
          metadata: { name: NAME, namespace: "llm-production" },
          spec: {
            scaleTargetRef: { kind: "Deployment", name: NAME },
            minReplicas: 2,
            maxReplicas: 8,
          },
        },
      });
      failsWith(await checkStack(gpuQuota, resources), /needs 8 .*8x1/);
    });
    it("fails when GPU workloads have no quota", async () => {
      failsWith(
        await checkStack(gpuQuota, fleetWithout("gpu-budget")),
        /namespace llm-production: workloads request 2 nvidia.com\/gpu but no ResourceQuota/,
      );
    });
  });

  // kube-score's deployment-pod-anti-affinity / kube-linter's no-anti-affinity, for GPU models:
  // kubernetes.io/hostname is the node's own name (https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetesiohostname).
  describe("replicas-spread-across-nodes", () => {
    const spreadless = (d: Mutable) => delete d.spec.template.spec.topologySpreadConstraints;
    it("passes with a hostname topology spread constraint selecting the model's pods", async () => {
      passes(await checkModel(replicasSpreadAcrossNodes, model()));
    });
    it("passes with preferred or required pod anti-affinity on the hostname", async () => {
      const term = {
        topologyKey: "kubernetes.io/hostname",
        labelSelector: { matchLabels: { "app.kubernetes.io/instance": NAME } },
      };
      const preferred = model((d) => {
        spreadless(d);
        d.spec.template.spec.affinity = {
          podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 100, podAffinityTerm: term },
            ],
          },
        };
      });
      passes(await checkModel(replicasSpreadAcrossNodes, preferred));
      const required = model((d) => {
        spreadless(d);
        d.spec.template.spec.affinity = {
          podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] },
        };
      });
      passes(await checkModel(replicasSpreadAcrossNodes, required));
    });
    it("fails when two replicas may land on one node", async () => {
      failsWith(
        await checkModel(replicasSpreadAcrossNodes, model(spreadless)),
        /llama-3-1-8b-instruct-production: runs 2 replicas but nothing spreads them across nodes/,
        /topologyKey kubernetes.io\/hostname, whenUnsatisfiable: ScheduleAnyway/,
      );
    });
    it("fails when the constraint spreads over zones only, or selects other pods, or none (null selector)", async () => {
      const zone = model(
        (d) =>
          (d.spec.template.spec.topologySpreadConstraints[0].topologyKey =
            "topology.kubernetes.io/zone"),
      );
      failsWith(await checkModel(replicasSpreadAcrossNodes, zone), /nothing spreads them/);
      const other = model(
        (d) =>
          (d.spec.template.spec.topologySpreadConstraints[0].labelSelector = {
            matchLabels: { "app.kubernetes.io/instance": "other" },
          }),
      );
      failsWith(await checkModel(replicasSpreadAcrossNodes, other), /nothing spreads them/);
      const none = model(
        (d) => delete d.spec.template.spec.topologySpreadConstraints[0].labelSelector,
      );
      failsWith(await checkModel(replicasSpreadAcrossNodes, none), /nothing spreads them/);
    });
    it("does not apply to a single replica", async () => {
      const one = model((d) => {
        spreadless(d);
        d.spec.replicas = 1;
      });
      assert.match(
        (await checkModel(replicasSpreadAcrossNodes, one)).notApplicable ?? "",
        /does not apply/,
      );
    });
  });

  // kube-score's container-ephemeral-storage-request-and-limit; node-pressure eviction ranks pods
  // by usage above requests (https://kubernetes.io/docs/concepts/scheduling-eviction/node-pressure-eviction/).
  describe("ephemeral-storage-requests", () => {
    it("passes when vLLM and the router request ephemeral storage", async () => {
      passes(await checkModel(ephemeralStorageRequests, model()));
      passes(await checkResource(ephemeralStorageRequests, TYPES.deployment, router()));
    });
    it("fails for a container without an ephemeral-storage request", async () => {
      const d = model((d) => delete vllm(d).resources.requests["ephemeral-storage"]);
      failsWith(
        await checkModel(ephemeralStorageRequests, d),
        /llama-3-1-8b-instruct-production: container 'vllm' requests no ephemeral-storage/,
        /Set resources.requests.ephemeral-storage/,
      );
    });
    it("fails for an init container without one, and for a limit below the request", async () => {
      const init = model(
        (d) =>
          (d.spec.template.spec.initContainers = [
            { name: "fetch", image: "busybox", resources: { requests: { cpu: "1" } } },
          ]),
      );
      failsWith(
        await checkModel(ephemeralStorageRequests, init),
        /init container 'fetch' requests no ephemeral-storage/,
      );
      const low = model((d) => (vllm(d).resources.limits["ephemeral-storage"] = "1Gi"));
      failsWith(
        await checkModel(ephemeralStorageRequests, low),
        /limits ephemeral-storage to 1Gi, below its request of 10Gi/,
      );
    });
  });

  // https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#migrating-deployments-and-statefulsets-to-horizontal-autoscaling
  describe("autoscaled-replicas-unset", () => {
    it("passes when the HPA-scaled router declares no replicas", async () => {
      passes(await checkStack(autoscaledReplicasUnset, fleet()));
    });
    it("fails when the router also sets spec.replicas", async () => {
      failsWith(
        await checkStack(
          autoscaledReplicasUnset,
          fleetWith("vllm-router", (r) => (r.spec.replicas = 3)),
        ),
        /Deployment llm-production\/vllm-router-production: sets spec.replicas: 3 but HorizontalPodAutoscaler llm-production\/vllm-router-production scales it/,
        /Omit spec.replicas .* or add ignoreChanges: \["spec.replicas"\]/,
      );
    });
    it("passes with ignoreChanges on spec.replicas (Pulumi's other pattern)", async () => {
      const resources = fleetWith("vllm-router", (r) => (r.spec.replicas = 3)).map((r) =>
        r.name === "vllm-router" ? { ...r, opts: { ignoreChanges: ["spec.replicas"] } } : r,
      );
      passes(await checkStack(autoscaledReplicasUnset, resources));
    });
    it("reads what the program declared, not the live replicas in the outputs (pulumi-kubernetes checkpointObject keeps inputs under __inputs)", async () => {
      // After `up`, outputs are the live object: the API server defaults spec.replicas (1) and the HPA changes it.
      const live = fleet().map((r) => {
        if (r.name !== "vllm-router") return r;
        const inputs = structuredClone(r.inputs) as Mutable;
        const outputs = structuredClone(inputs);
        outputs.spec.replicas = 5;
        outputs.__inputs = inputs;
        return { ...r, outputs };
      });
      passes(await checkStack(autoscaledReplicasUnset, live));
      const declared = live.map((r) => {
        if (r.name !== "vllm-router") return r;
        const outputs = structuredClone(r.outputs) as Mutable;
        outputs.__inputs.spec.replicas = 2;
        return { ...r, outputs };
      });
      failsWith(await checkStack(autoscaledReplicasUnset, declared), /sets spec.replicas: 2/);
    });
    it("ignores replicas on workloads no HPA scales", async () => {
      const resources = fleetWith(
        "vllm-router-hpa",
        (h) => (h.spec.scaleTargetRef.name = "something-else"),
      );
      passes(await checkStack(autoscaledReplicasUnset, resources));
      assert.equal(routerAutoscaler().spec.scaleTargetRef.kind, "Deployment");
    });
  });

  // kube-linter's dangling-service and dangling-networkpolicy.
  describe("selectors-match-pods", () => {
    it("passes when every Service and NetworkPolicy selects pods of the stack", async () => {
      passes(await checkStack(selectorsMatchPods, fleet()));
    });
    it("fails for a Service whose selector matches no pod template", async () => {
      const resources = fleetWith(
        `${NAME}-service`,
        (s) => (s.spec.selector = { ...s.spec.selector, "app.kubernetes.io/instance": "llama" }),
      );
      failsWith(
        await checkStack(selectorsMatchPods, resources),
        /Service llm-production\/llama-3-1-8b-instruct-production: selector .* selects no pods of the stack in llm-production, so the Service has no endpoints/,
      );
    });
    it("fails for a NetworkPolicy whose podSelector matches no pod template", async () => {
      const resources = fleetWith(
        `${NAME}-netpol`,
        (p) =>
          (p.spec.podSelector = {
            matchExpressions: [{ key: "app.kubernetes.io/name", operator: "In", values: ["llm"] }],
          }),
      );
      failsWith(
        await checkStack(selectorsMatchPods, resources),
        /NetworkPolicy llm-production\/llama-3-1-8b-instruct-production: podSelector .* selects no pods of the stack/,
      );
    });
    it("fails for a selector that matches pods of another namespace only", async () => {
      const resources = fleetWith(`${NAME}-service`, (s) => (s.metadata.namespace = "elsewhere"));
      failsWith(
        await checkStack(selectorsMatchPods, resources),
        /selects no pods of the stack in elsewhere/,
      );
    });
    it("skips Services without a selector and namespace-wide (empty) podSelectors", async () => {
      const resources = fleetWith(`${NAME}-service`, (s) => delete s.spec.selector);
      passes(await checkStack(selectorsMatchPods, resources));
      // The default-deny's podSelector {} is in the fleet and must not be reported.
      assert.ok(fleet().some((r) => r.name === "default-deny"));
    });
  });
});
