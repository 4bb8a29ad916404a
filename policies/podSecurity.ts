// The Pod Security Standards as the pod-security-admission plugin enforces them, at the latest
// version of each check: kubernetes/pod-security-admission policy/check_*.go (at 8f84a87c).
// One implementation, used by the pack's `pod-security-restricted` rule and by the tests'
// admission helper, so the pack refuses exactly what a `restricted` namespace refuses.
import { Container, Obj, containersOf, list, obj, str, strMap } from "./kube";

export type PodSecurityLevel = "baseline" | "restricted";

/** One refusal: the check's upstream ID, the container (or the pod when absent) and why. */
export interface PodSecurityFinding {
  check: string;
  container?: Container;
  message: string;
}

type Found = [Container | undefined, string][];

interface Check {
  id: string;
  level: PodSecurityLevel;
  /** Baseline checks a restricted check replaces (its OverrideCheckIDs). */
  overrides?: string[];
  check(meta: Obj, podSpec: Obj, ctrs: Container[]): Found;
}

const sc = (o: Obj) => obj(o.securityContext);

/** A check of each container's own fields. */
const perContainer =
  (bad: (c: Container) => string | undefined) =>
  (_m: Obj, _p: Obj, ctrs: Container[]): Found =>
    ctrs.flatMap((c) => {
      const m = bad(c);
      return m ? [[c, m] as [Container, string]] : [];
    });

/** A check of one field that the pod and each container may set. */
const podOrContainer =
  (bad: (securityContext: Obj) => boolean, message: string) =>
  (_m: Obj, p: Obj, ctrs: Container[]): Found => {
    const out: Found = [];
    if (bad(sc(p))) out.push([undefined, message]);
    for (const c of ctrs) if (bad(sc(c.spec))) out.push([c, message]);
    return out;
  };

/** helpers.go relaxPolicyForUserNamespacePod (1.35+): `hostUsers: false` runs the pod in a user namespace. */
const inUserNamespace = (p: Obj) => p.hostUsers === false;
/** check_seccompProfile_restricted 1.25+ (and capabilities, allowPrivilegeEscalation): Windows pods are exempt. */
const isWindows = (p: Obj) => str(obj(p.os).name) === "windows";

// check_sysctls.go sysctlsAllowedV1Dot37.
const SAFE_SYSCTLS = new Set([
  "kernel.shm_rmid_forced",
  "net.ipv4.ip_local_port_range",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.ping_group_range",
  "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.ip_local_reserved_ports",
  "net.ipv4.tcp_keepalive_time",
  "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes",
  "net.ipv4.tcp_rmem",
  "net.ipv4.tcp_wmem",
  "net.ipv4.tcp_slow_start_after_idle",
  "net.ipv4.tcp_notsent_lowat",
]);
// check_capabilities_baseline.go.
const BASELINE_CAPABILITIES = new Set([
  "AUDIT_WRITE",
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "MKNOD",
  "NET_BIND_SERVICE",
  "SETFCAP",
  "SETGID",
  "SETPCAP",
  "SETUID",
  "SYS_CHROOT",
]);
// check_restrictedVolumes.go: the only inline volume sources restricted allows.
export const RESTRICTED_VOLUME_TYPES = [
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "image",
  "persistentVolumeClaim",
  "projected",
  "secret",
];
// check_seLinuxOptions.go selinuxAllowedTypes1_31.
const SELINUX_TYPES = new Set([
  "",
  "container_t",
  "container_init_t",
  "container_kvm_t",
  "container_engine_t",
]);
const PROFILE_TYPES = new Set(["RuntimeDefault", "Localhost"]);

function probeHosts(c: Obj): string[] {
  const lc = obj(c.lifecycle);
  return [c.livenessProbe, c.readinessProbe, c.startupProbe, lc.postStart, lc.preStop]
    .map(obj)
    .flatMap((p) => [str(obj(p.httpGet).host), str(obj(p.tcpSocket).host)])
    .filter((h): h is string => !!h);
}

const procMount = perContainer((c) => {
  const pm = str(sc(c.spec).procMount);
  return pm !== undefined && pm !== "Default" ? `must not set procMount to ${pm}` : undefined;
});

const CHECKS: Check[] = [
  {
    id: "hostNamespaces",
    level: "baseline",
    check: (_m, p) =>
      ["hostNetwork", "hostPID", "hostIPC"]
        .filter((f) => p[f] === true)
        .map((f) => [undefined, `host namespaces: ${f}=true`]),
  },
  {
    id: "privileged",
    level: "baseline",
    check: perContainer((c) =>
      sc(c.spec).privileged === true ? "must not set securityContext.privileged=true" : undefined,
    ),
  },
  {
    id: "capabilities_baseline",
    level: "baseline",
    check: perContainer((c) => {
      const bad = list(obj(sc(c.spec).capabilities).add).filter(
        (x) => !BASELINE_CAPABILITIES.has(String(x)),
      );
      return bad.length
        ? `non-default capabilities ${bad.join(", ")} in capabilities.add`
        : undefined;
    }),
  },
  {
    id: "hostPathVolumes",
    level: "baseline",
    check: (_m, p) =>
      list(p.volumes)
        .map(obj)
        .filter((v) => v.hostPath !== undefined)
        .map((v) => [undefined, `hostPath volume '${str(v.name)}'`]),
  },
  {
    id: "hostPorts",
    level: "baseline",
    check: perContainer((c) => {
      const ports = list(c.spec.ports).filter((p) => Number(obj(p).hostPort ?? 0) !== 0);
      return ports.length ? `hostPort ${ports.map((p) => obj(p).hostPort).join(", ")}` : undefined;
    }),
  },
  {
    id: "appArmorProfile",
    level: "baseline",
    check: (m, p, ctrs) => {
      const bad = (s: Obj) => {
        const t = str(obj(s.appArmorProfile).type);
        return s.appArmorProfile !== undefined && !PROFILE_TYPES.has(t ?? "");
      };
      const out = podOrContainer(bad, "forbidden AppArmor profile type")(m, p, ctrs);
      // The deprecated per-container annotations, still honoured by the kubelet.
      for (const [k, v] of Object.entries(strMap(m.annotations))) {
        if (
          k.startsWith("container.apparmor.security.beta.kubernetes.io/") &&
          !(v === "" || v === "runtime/default" || v.startsWith("localhost/"))
        )
          out.push([undefined, `forbidden AppArmor annotation ${k}=${v}`]);
      }
      return out;
    },
  },
  {
    id: "seLinuxOptions",
    level: "baseline",
    check: podOrContainer((s) => {
      if (s.seLinuxOptions === undefined) return false;
      const o = obj(s.seLinuxOptions);
      return !SELINUX_TYPES.has(str(o.type) ?? "") || !!str(o.user) || !!str(o.role);
    }, "forbidden seLinuxOptions (type, user or role)"),
  },
  {
    id: "procMount",
    level: "baseline",
    // Relaxed for user-namespace pods in 1.35+; restricted keeps the unconditional check below.
    check: (m, p, ctrs) => (inUserNamespace(p) ? [] : procMount(m, p, ctrs)),
  },
  {
    id: "sysctls",
    level: "baseline",
    check: (_m, p) =>
      list(sc(p).sysctls)
        .map((s) => str(obj(s).name) ?? "")
        .filter((n) => !SAFE_SYSCTLS.has(n))
        .map((n) => [undefined, `forbidden sysctl ${n}`]),
  },
  {
    id: "windowsHostProcess",
    level: "baseline",
    check: podOrContainer(
      (s) => obj(s.windowsOptions).hostProcess === true,
      "must not set windowsOptions.hostProcess=true",
    ),
  },
  {
    id: "hostProbesAndHostLifecycle",
    level: "baseline",
    check: perContainer((c) => {
      const hosts = probeHosts(c.spec);
      return hosts.length ? `probe or lifecycle host ${hosts.join(", ")}` : undefined;
    }),
  },
  {
    id: "seccompProfile_baseline",
    level: "baseline",
    check: podOrContainer(
      (s) => str(obj(s.seccompProfile).type) === "Unconfined",
      "must not set seccompProfile.type to Unconfined",
    ),
  },
  // Restricted: every baseline check above (less those overridden), plus these.
  {
    id: "restrictedVolumes",
    level: "restricted",
    overrides: ["hostPathVolumes"],
    check: (_m, p) =>
      list(p.volumes)
        .map(obj)
        .filter((v) => !Object.keys(v).some((k) => RESTRICTED_VOLUME_TYPES.includes(k)))
        .map((v) => [undefined, `volume '${str(v.name)}' uses a restricted volume type`]),
  },
  {
    id: "procMount_restricted",
    level: "restricted",
    overrides: ["procMount"],
    check: procMount,
  },
  {
    id: "allowPrivilegeEscalation",
    level: "restricted",
    check: (m, p, ctrs) =>
      isWindows(p)
        ? []
        : perContainer((c) =>
            sc(c.spec).allowPrivilegeEscalation === false
              ? undefined
              : "must set securityContext.allowPrivilegeEscalation=false",
          )(m, p, ctrs),
  },
  {
    id: "runAsNonRoot",
    level: "restricted",
    check: (_m, p, ctrs) => {
      if (inUserNamespace(p)) return [];
      const pod = sc(p).runAsNonRoot;
      const out: Found = [];
      if (pod === false)
        out.push([undefined, "pod must not set securityContext.runAsNonRoot=false"]);
      for (const c of ctrs) {
        const own = sc(c.spec).runAsNonRoot;
        if (own === false) out.push([c, "must not set securityContext.runAsNonRoot=false"]);
        else if (own === undefined && pod !== true)
          out.push([c, "pod or container must set securityContext.runAsNonRoot=true"]);
      }
      return out;
    },
  },
  {
    id: "runAsUser",
    level: "restricted",
    check: (_m, p, ctrs) => {
      if (inUserNamespace(p)) return [];
      const out: Found = [];
      if (sc(p).runAsUser === 0) out.push([undefined, "pod must not set runAsUser=0"]);
      for (const c of ctrs)
        if (sc(c.spec).runAsUser === 0) out.push([c, "must not set runAsUser=0"]);
      return out;
    },
  },
  {
    id: "seccompProfile_restricted",
    level: "restricted",
    overrides: ["seccompProfile_baseline"],
    check: (_m, p, ctrs) => {
      if (isWindows(p)) return [];
      const podType = str(obj(sc(p).seccompProfile).type);
      const out: Found = [];
      if (podType !== undefined && !PROFILE_TYPES.has(podType))
        out.push([undefined, `pod must not set seccompProfile.type to ${podType}`]);
      for (const c of ctrs) {
        const t = str(obj(sc(c.spec).seccompProfile).type);
        if (t !== undefined && !PROFILE_TYPES.has(t))
          out.push([c, `must not set seccompProfile.type to ${t}`]);
        else if (t === undefined && !(podType && PROFILE_TYPES.has(podType)))
          out.push([
            c,
            `pod or container must set seccompProfile.type to "RuntimeDefault" or "Localhost"`,
          ]);
      }
      return out;
    },
  },
  {
    id: "capabilities_restricted",
    level: "restricted",
    overrides: ["capabilities_baseline"],
    check: (m, p, ctrs) =>
      isWindows(p)
        ? []
        : perContainer((c) => {
            const caps = obj(sc(c.spec).capabilities);
            const problems: string[] = [];
            if (!list(caps.drop).includes("ALL"))
              problems.push(`must set securityContext.capabilities.drop=["ALL"]`);
            const added = list(caps.add).filter((x) => x !== "NET_BIND_SERVICE");
            if (added.length)
              problems.push(`must not add ${added.join(", ")} (only NET_BIND_SERVICE)`);
            return problems.length ? problems.join("; ") : undefined;
          })(m, p, ctrs),
  },
];

/**
 * Everything the Pod Security admission plugin refuses in a pod (its metadata and spec) at a
 * level. Ephemeral containers are not visited: they cannot be set when a pod is created.
 */
export function podSecurityFindings(
  level: PodSecurityLevel,
  podMeta: Obj,
  podSpec: Obj,
): PodSecurityFinding[] {
  const active = CHECKS.filter((c) => level === "restricted" || c.level === "baseline");
  const overridden = new Set(active.flatMap((c) => c.overrides ?? []));
  const ctrs = containersOf(podSpec);
  return active
    .filter((c) => !overridden.has(c.id))
    .flatMap((c) =>
      c.check(podMeta, podSpec, ctrs).map(([container, message]) => ({
        check: c.id,
        ...(container ? { container } : {}),
        message,
      })),
    );
}
