// The routing settings among the router's environment variables (read by config.ts).
import { isIP } from "node:net";
import { readStaticPods } from "./staticSource";
import { AFFINITY_LOAD_FACTOR, ROUTING_ENV, ROUTING_MODES, type RoutingMode } from "./naming";
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

/** Reads ROUTER_ROUTING_MODE and the discovery, pod-metrics and affinity variables; problems go to `problems`. */
export function readRoutingConfig(
  env: NodeJS.ProcessEnv,
  int: IntReader,
  problems: string[],
): RoutingConfig {
  const mode = (env[ROUTING_ENV.mode] || "service") as RoutingMode;
  if (!ROUTING_MODES.includes(mode))
    problems.push(`${ROUTING_ENV.mode} must be one of ${ROUTING_MODES.join(", ")} (got '${mode}')`);
  const staticFile = env[ROUTING_ENV.staticFile] || undefined;
  let staticPods;
  if (staticFile) {
    try {
      staticPods = readStaticPods(staticFile);
    } catch (e) {
      problems.push(`${ROUTING_ENV.staticFile} (${staticFile}): ${(e as Error).message}`);
    }
  }
  const dnsServers = (env.ROUTER_DISCOVERY_DNS_SERVERS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const badServers = dnsServers.filter((s) => !isDnsServer(s));
  if (badServers.length)
    problems.push(
      `ROUTER_DISCOVERY_DNS_SERVERS must list IP addresses, optionally with a port (10.96.0.10, 127.0.0.1:5353, [fd00::a]:53), comma-separated (got '${badServers.join(",")}')`,
    );
  const podMetricsIntervalMs = int("ROUTER_POD_METRICS_INTERVAL_MS", 1000, 50, 60000);
  const podMetricsTimeoutMs = int("ROUTER_POD_METRICS_TIMEOUT_MS", 500, 10, 60000);
  if (podMetricsTimeoutMs > podMetricsIntervalMs)
    problems.push(
      `ROUTER_POD_METRICS_TIMEOUT_MS (${podMetricsTimeoutMs}) must not exceed ROUTER_POD_METRICS_INTERVAL_MS (${podMetricsIntervalMs}): a reading ends before the next one starts`,
    );
  const rawFactor = env[ROUTING_ENV.affinityLoadFactor];
  const { min, max } = AFFINITY_LOAD_FACTOR;
  let affinityLoadFactor: number = AFFINITY_LOAD_FACTOR.default;
  if (rawFactor !== undefined && rawFactor !== "") {
    affinityLoadFactor = Number(rawFactor);
    if (!(affinityLoadFactor > min && affinityLoadFactor <= max))
      problems.push(
        `${ROUTING_ENV.affinityLoadFactor} must be a number above ${min} and at most ${max} (got '${rawFactor}'): a pod takes a prefix's requests while its load stays within this factor times the mean`,
      );
  }
  return {
    mode,
    staticFile,
    staticPods,
    dnsServers,
    discoveryIntervalMs: int("ROUTER_DISCOVERY_INTERVAL_MS", 1000, 50, 60000),
    podMetricsIntervalMs,
    podMetricsTimeoutMs,
    affinityLoadFactor,
  };
}
