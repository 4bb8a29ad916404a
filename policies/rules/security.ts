// Container hygiene: pinned images, the restricted Pod Security Standard, resources, service links.
import { BaseConfig, ENVIRONMENTS, Role, roleOf, workloadRule } from "../fleet";
import { Container, containerLabel, containersOf, obj, quantity, str } from "../kube";
import { podSecurityFindings } from "../podSecurity";

const DIGEST = /@sha256:[a-f0-9]{64}$/;

export const imagePinnedByDigest = workloadRule<BaseConfig>({
  name: "image-pinned-by-digest",
  description:
    "Production containers run images pinned by digest, so a promotion deploys exactly what staging ran",
  severity: "high",
  remediationSteps:
    "Use image@sha256:<digest> in releases[].image (and the router image); `docker buildx imagetools inspect <image>` prints the digest.",
  defaults: { environments: ["production"] },
  check: (w, { display, report }) => {
    for (const c of containersOf(w.podSpec)) {
      const image = str(c.spec.image);
      if (image === undefined || !DIGEST.test(image)) {
        report(
          `${display}: ${containerLabel(c)} runs image '${image ?? "(none)"}', not pinned by digest; tags move, so staging and production could run different bits. Use '${(image ?? "<image>").split("@")[0]}@sha256:<digest>'`,
        );
      }
    }
  },
});

interface PodSecurityConfig extends BaseConfig {
  /** Workload roles held to the restricted Pod Security Standard. */
  roles: Role[];
  /** Roles that must also run with a read-only root filesystem. */
  readOnlyRootFilesystemRoles: Role[];
  /** Roles whose pods must not mount a service account token (they never call the API server). */
  noServiceAccountTokenRoles: Role[];
}

export const podSecurityRestricted = workloadRule<PodSecurityConfig>({
  name: "pod-security-restricted",
  description:
    "Router and vLLM pods meet the restricted Pod Security Standard and mount no service account token; the router also runs read-only",
  severity: "high",
  remediationSteps:
    'Set runAsNonRoot, seccompProfile RuntimeDefault, allowPrivilegeEscalation: false and capabilities.drop ["ALL"]; no privileged, host namespaces, host ports, hostProcess, procMount, unsafe sysctls, custom SELinux user/role/type or unconfined AppArmor; only configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected and secret volumes; automountServiceAccountToken: false; readOnlyRootFilesystem on the router.',
  defaults: {
    environments: [...ENVIRONMENTS],
    roles: ["router", "model"],
    readOnlyRootFilesystemRoles: ["router"],
    noServiceAccountTokenRoles: ["router", "model"],
  },
  schema: {
    roles: {
      type: "array",
      items: { type: "string", enum: ["router", "model", "other"] },
      default: ["router", "model"],
      description: "Workload roles held to the restricted Pod Security Standard",
    },
    readOnlyRootFilesystemRoles: {
      type: "array",
      items: { type: "string", enum: ["router", "model", "other"] },
      default: ["router"],
      description: "Workload roles that must set readOnlyRootFilesystem: true",
    },
    noServiceAccountTokenRoles: {
      type: "array",
      items: { type: "string", enum: ["router", "model", "other"] },
      default: ["router", "model"],
      description: "Workload roles that must set automountServiceAccountToken: false",
    },
  },
  applies: (w, cfg) => cfg.roles.includes(roleOf(w)),
  check: (w, { cfg, display, report }) => {
    const spec = w.podSpec;
    if (
      cfg.noServiceAccountTokenRoles.includes(roleOf(w)) &&
      spec.automountServiceAccountToken !== false
    ) {
      report(
        `${display}: pod mounts a service account token it never uses (automountServiceAccountToken is not false); a compromised container could call the Kubernetes API with it. Set automountServiceAccountToken: false`,
      );
    }
    // What a namespace labelled pod-security.kubernetes.io/enforce: restricted refuses, grouped
    // by the pod or container that breaks it.
    const problems = new Map<string, string[]>();
    const add = (c: Container | undefined, p: string) => {
      const where = c ? containerLabel(c) : "pod";
      problems.set(where, [...(problems.get(where) ?? []), p]);
    };
    for (const f of podSecurityFindings("restricted", w.podMeta, spec)) {
      add(f.container, `${f.check}: ${f.message}`);
    }
    if (cfg.readOnlyRootFilesystemRoles.includes(roleOf(w))) {
      for (const c of containersOf(spec)) {
        if (obj(c.spec.securityContext).readOnlyRootFilesystem !== true) {
          add(
            c,
            "readOnlyRootFilesystem: must set securityContext.readOnlyRootFilesystem=true (mount an emptyDir where it must write)",
          );
        }
      }
    }
    for (const [where, found] of problems) {
      report(
        `${display}: ${where} does not meet the restricted Pod Security Standard: ${found.join("; ")}`,
      );
    }
  },
});

interface ResourcesConfig extends BaseConfig {
  requireCpuLimit: boolean;
  requireMemoryLimit: boolean;
}

export const containerResources = workloadRule<ResourcesConfig>({
  name: "container-resources",
  description:
    "Every container sets CPU and memory requests and a memory limit (not below the request), so scheduling and eviction are predictable",
  severity: "medium",
  remediationSteps:
    "Set capacity.<model>.resources (cpu, memory, memoryLimit) and the router's resources; init containers need them too.",
  defaults: { environments: [...ENVIRONMENTS], requireCpuLimit: false, requireMemoryLimit: true },
  schema: {
    requireCpuLimit: {
      type: "boolean",
      default: false,
      description: "Also require CPU limits (off by default: CPU limits throttle vLLM's tokenizer)",
    },
    requireMemoryLimit: {
      type: "boolean",
      default: true,
      description: "Require memory limits",
    },
  },
  check: (w, { cfg, display, report }) => {
    for (const c of containersOf(w.podSpec)) {
      const res = obj(c.spec.resources);
      const missing: string[] = [];
      for (const r of ["cpu", "memory"]) {
        if (obj(res.requests)[r] === undefined) missing.push(`requests.${r}`);
      }
      if (cfg.requireMemoryLimit && obj(res.limits).memory === undefined) {
        missing.push("limits.memory");
      }
      if (cfg.requireCpuLimit && obj(res.limits).cpu === undefined) missing.push("limits.cpu");
      if (missing.length) {
        report(
          `${display}: ${containerLabel(c)} has no ${missing.join(", ")}; set them in resources (for models: capacity.<model>.resources) so the scheduler reserves what it uses and the kernel kills the right pod`,
        );
      }
      for (const r of ["cpu", "memory"]) {
        const request = quantity(obj(res.requests)[r]);
        const limit = quantity(obj(res.limits)[r]);
        if (request !== undefined && limit !== undefined && limit < request) {
          report(
            `${display}: ${containerLabel(c)} limits ${r} to ${String(obj(res.limits)[r])}, below its request of ${String(obj(res.requests)[r])}; Kubernetes rejects the pod. Raise the limit (for models: capacity.<model>.resources.${r}Limit) to at least the request`,
          );
        }
      }
    }
  },
});

export const serviceLinksDisabled = workloadRule<BaseConfig>({
  name: "service-links-disabled",
  description:
    "vLLM pods set enableServiceLinks: false (a Service named vllm injects VLLM_PORT and breaks vLLM)",
  severity: "high",
  remediationSteps: "Set spec.template.spec.enableServiceLinks: false on vLLM Deployments.",
  defaults: { environments: [...ENVIRONMENTS] },
  applies: (w) => roleOf(w) === "model",
  check: (w, { display, report }) => {
    if (w.podSpec.enableServiceLinks !== false) {
      report(
        `${display}: enableServiceLinks is ${w.podSpec.enableServiceLinks === undefined ? "unset (defaults to true)" : String(w.podSpec.enableServiceLinks)}; any Service named 'vllm' in the namespace injects VLLM_PORT=tcp://..., which vLLM reads as its own config and fails. Set enableServiceLinks: false in the pod spec`,
      );
    }
  },
});

export const ephemeralStorageRequests = workloadRule<BaseConfig>({
  name: "ephemeral-storage-requests",
  description:
    "Every container requests ephemeral-storage (writable layer, logs, disk emptyDirs), so the scheduler reserves node disk for it and disk-pressure evictions take the pods that overran their request first",
  severity: "medium",
  remediationSteps:
    "Set resources.requests.ephemeral-storage on every container (vLLM: its compile caches under HOME=/tmp; the router: its /tmp emptyDir and logs); a limit, if set, must not be below it.",
  defaults: { environments: [...ENVIRONMENTS] },
  check: (w, { display, report }) => {
    for (const c of containersOf(w.podSpec)) {
      const res = obj(c.spec.resources);
      const request = obj(res.requests)["ephemeral-storage"];
      const limit = obj(res.limits)["ephemeral-storage"];
      if (request === undefined) {
        // https://kubernetes.io/docs/concepts/scheduling-eviction/node-pressure-eviction/: under
        // disk pressure the kubelet first evicts pods whose usage exceeds their requests.
        report(
          `${display}: ${containerLabel(c)} requests no ephemeral-storage; the scheduler reserves no node disk for its writable layer, logs and emptyDirs, and under disk pressure it is among the first pods evicted. Set resources.requests.ephemeral-storage`,
        );
      } else if (limit !== undefined && (quantity(limit) ?? 0) < (quantity(request) ?? 0)) {
        report(
          `${display}: ${containerLabel(c)} limits ephemeral-storage to ${String(limit)}, below its request of ${String(request)}; Kubernetes rejects the pod. Raise the limit to at least the request`,
        );
      }
    }
  },
});
