// Where a model's ready pods are listed: a headless Service next to the model's `{model}-{env}`
// Service. Kubernetes' DNS answers a headless Service's name with one A record per ready
// endpoint, and NXDOMAIN when none is ready (kubernetes/dns docs/specification.md, 2.4.1
// "A Records"; not-ready pods are listed only with publishNotReadyAddresses). Pure: the
// Pulumi program names the Service with the same function the router resolves it with, and
// sets the routing variables below by these names, to values these constants accept.
import { createHash } from "node:crypto";
import { ROUTER_ENV } from "../contract";

/** Suffix of the headless Service's name. */
export const PODS_SUFFIX = "-pods";
/** Longest Service name: a DNS-1035 label (Kubernetes' IsDNS1035Label, 63 characters). */
export const SERVICE_NAME_MAX = 63;
/** Hex digits of the hash that keeps a shortened name unique. */
const HASH_CHARS = 8;

/**
 * Name of the headless Service listing the ready pods of the Service `service`:
 * `${service}-pods`, or, when that exceeds 63 characters, the head of `service`, a hash of the
 * whole name and `-pods` (still a DNS-1035 label, and distinct for distinct services).
 */
export function podsServiceName(service: string): string {
  const name = `${service}${PODS_SUFFIX}`;
  if (name.length <= SERVICE_NAME_MAX) return name;
  const hash = createHash("sha256").update(service).digest("hex").slice(0, HASH_CHARS);
  const head = service.slice(0, SERVICE_NAME_MAX - PODS_SUFFIX.length - HASH_CHARS - 1);
  // The head cannot end in '-' before another '-': DNS-1035 allows it, but keep it readable.
  return `${head.replace(/-+$/, "")}-${hash}${PODS_SUFFIX}`;
}

/** A Service DNS name `<service>.<ns>.svc[.<zone>]` (the Kubernetes DNS specification, 2.3.1). */
const SERVICE_HOST =
  /^([a-z]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.svc(\..+)?)$/;

/** Host and port whose A records are the pods behind a registry endpoint. */
export interface PodsTarget {
  host: string;
  /** The endpoint's port: the headless Service's pods serve on it (vLLM's port 8000). */
  port: number;
}

/**
 * The headless Service behind a registry endpoint `{svc}.{ns}.svc.cluster.local:8000`, or
 * undefined when the endpoint is not a cluster Service name (an IP, an outside host): those
 * keep being sent to the endpoint itself.
 */
export function podsTarget(endpoint: string): PodsTarget | undefined {
  const colon = endpoint.lastIndexOf(":");
  if (colon < 1) return undefined;
  const port = Number(endpoint.slice(colon + 1));
  const m = SERVICE_HOST.exec(endpoint.slice(0, colon));
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: `${podsServiceName(m[1])}.${m[3]}${m[5]}`, port };
}

// The routing settings the program sets, by the router's contract (one copy of each name).
export { AFFINITY_LOAD_FACTOR, ROUTING_MODES, type RoutingMode } from "../contract";
/** Names of the routing variables others set: the Pulumi program, `npm run local`, the bench. */
export const ROUTING_ENV = {
  mode: ROUTER_ENV.routingMode,
  affinityLoadFactor: ROUTER_ENV.affinityLoadFactor,
  staticFile: ROUTER_ENV.discoveryStaticFile,
} as const;
