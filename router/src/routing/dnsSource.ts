// Pods from DNS: the A records of the headless Service next to each model's Service (see
// naming.ts). Kubernetes lists only ready pods there and answers NXDOMAIN when none is ready
// (kubernetes/dns docs/specification.md, 2.4.1), so a pod that stops being ready leaves the
// answer once the DNS server's cache lets it (CoreDNS's kubernetes plugin: `ttl`, 5 s by
// default; kubeadm's Corefile sets 30 and adds `cache 30`).
import { Resolver } from "node:dns/promises";
import { podsTarget } from "./naming";
import type { PodSource } from "./discovery";

/** Answers that mean "no such name / no A records": no pod is ready. */
const NO_PODS = new Set(["ENOTFOUND", "ENODATA"]);

export class DnsSource implements PodSource {
  private readonly resolver: Resolver;

  /** `servers`: `ip` or `ip:port` entries to ask instead of the system's resolvers. */
  constructor(servers: readonly string[], timeoutMs: number) {
    this.resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
    if (servers.length > 0) this.resolver.setServers(servers);
  }

  covers(endpoint: string): boolean {
    return podsTarget(endpoint) !== undefined;
  }

  async resolve(endpoint: string): Promise<string[]> {
    const target = podsTarget(endpoint)!;
    try {
      const ips = await this.resolver.resolve4(target.host);
      return ips.map((ip) => `${ip}:${target.port}`);
    } catch (err) {
      if (NO_PODS.has((err as NodeJS.ErrnoException).code ?? "")) return [];
      throw err;
    }
  }

  close(): void {
    this.resolver.cancel();
  }
}
