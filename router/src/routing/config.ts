// The routing settings among the router's environment variables (read by config.ts).
import { isIP } from "node:net";
import {
  AFFINITY_LOAD_FACTOR,
  ROUTER_ENV as ENV,
  ROUTING_MODES,
  type RoutingMode,
} from "../contract";
import { readStaticPods } from "./staticSource";
import type { RoutingConfig } from "./routing";

type IntReader = (name: string, fallback: number, min: number, max: number) => number;

/** `ip`, `ip:port` or `[ipv6]:port`: what node:dns's Resolver#setServers accepts. */
function isDnsServer(s: string): boolean {
  const port = (p: string | undefined) =>
    p === undefined || (/^\d{1,5}$/.test(p) && +p > 0 && +p < 65536);
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracketed) return isIP(bracketed[1]) === 6 && port(bracketed[2]);
  if (isIP(s)) return true;
  const colon = s.lastIndexOf(":");
  return colon > 0 && isIP(s.slice(0, colon)) === 4 && port(s.slice(colon + 1));
}

/** Reads the routing mode and the discovery, pod-metrics and affinity variables; problems go to `problems`. */
export function readRoutingConfig(
  env: NodeJS.ProcessEnv,
  int: IntReader,
  problems: string[],
): RoutingConfig {
  const mode = (env[ENV.routingMode] || "service") as RoutingMode;
  if (!ROUTING_MODES.includes(mode))
    problems.push(`${ENV.routingMode} must be one of ${ROUTING_MODES.join(", ")} (got '${mode}')`);
  const staticFile = env[ENV.discoveryStaticFile] || undefined;
  let staticPods;
  if (staticFile) {
    try {
      staticPods = readStaticPods(staticFile);
    } catch (e) {
      problems.push(`${ENV.discoveryStaticFile} (${staticFile}): ${(e as Error).message}`);
    }
  }
  const dnsServers = (env[ENV.discoveryDnsServers] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const badServers = dnsServers.filter((s) => !isDnsServer(s));
  if (badServers.length)
    problems.push(
      `${ENV.discoveryDnsServers} must list IP addresses, optionally with a port (10.96.0.10, 127.0.0.1:5353, [fd00::a]:53), comma-separated (got '${badServers.join(",")}')`,
    );
  const podMetricsIntervalMs = int(ENV.podMetricsIntervalMs, 1000, 50, 60000);
  const podMetricsTimeoutMs = int(ENV.podMetricsTimeoutMs, 500, 10, 60000);
  if (podMetricsTimeoutMs > podMetricsIntervalMs)
    problems.push(
      `${ENV.podMetricsTimeoutMs} (${podMetricsTimeoutMs}) must not exceed ${ENV.podMetricsIntervalMs} (${podMetricsIntervalMs}): a reading ends before the next one starts`,
    );
  const rawFactor = env[ENV.affinityLoadFactor];
  const { min, max } = AFFINITY_LOAD_FACTOR;
  let affinityLoadFactor: number = AFFINITY_LOAD_FACTOR.default;
  if (rawFactor !== undefined && rawFactor !== "") {
    affinityLoadFactor = Number(rawFactor);
    if (!(affinityLoadFactor > min && affinityLoadFactor <= max))
      problems.push(
        `${ENV.affinityLoadFactor} must be a number above ${min} and at most ${max} (got '${rawFactor}'): a pod takes a prefix's requests while its load stays within this factor times the mean`,
      );
  }
  return {
    mode,
    staticFile,
    staticPods,
    dnsServers,
    discoveryIntervalMs: int(ENV.discoveryIntervalMs, 1000, 50, 60000),
    podMetricsIntervalMs,
    podMetricsTimeoutMs,
    affinityLoadFactor,
  };
}
