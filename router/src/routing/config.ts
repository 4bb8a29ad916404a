// The routing settings among the router's environment variables (read by config.ts).
import { isIP } from "node:net";
import { readStaticPods } from "./staticSource";
import { ROUTING_MODES, type RoutingConfig, type RoutingMode } from "./routing";

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
  const mode = (env.ROUTER_ROUTING_MODE || "service") as RoutingMode;
  if (!ROUTING_MODES.includes(mode))
    problems.push(`ROUTER_ROUTING_MODE must be one of ${ROUTING_MODES.join(", ")} (got '${mode}')`);
  const staticFile = env.ROUTER_DISCOVERY_STATIC_FILE || undefined;
  let staticPods;
  if (staticFile) {
    try {
      staticPods = readStaticPods(staticFile);
    } catch (e) {
      problems.push(`ROUTER_DISCOVERY_STATIC_FILE (${staticFile}): ${(e as Error).message}`);
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
  const rawFactor = env.ROUTER_AFFINITY_LOAD_FACTOR;
  // 2, not the 1.25 of proxies whose misses are cheap: a prefix-cache miss here recomputes the
  // whole shared prompt. With eight 7k-token system prompts on four replicas (`npm run bench --
  // --routing`), 1.25 spilled over half the picks (p90 time to first token 1.5 s, 85% of prompt
  // tokens cached) and 2 about 5% (0.2 s, 95%); a hot prefix still gets at most twice the mean.
  let affinityLoadFactor = 2;
  if (rawFactor !== undefined && rawFactor !== "") {
    affinityLoadFactor = Number(rawFactor);
    if (!(affinityLoadFactor > 1 && affinityLoadFactor <= 10))
      problems.push(
        `ROUTER_AFFINITY_LOAD_FACTOR must be a number above 1 and at most 10 (got '${rawFactor}'): a pod takes a prefix's requests while its load stays within this factor times the mean`,
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
