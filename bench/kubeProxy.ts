// A stand-in for kube-proxy in front of a ClusterIP Service: a TCP proxy that picks a backend at
// random for each new connection and keeps every byte of that connection on it. kube-proxy's
// iptables mode "chooses a backend at random" (kubernetes.io/docs/reference/networking/
// virtual-ips/, "iptables proxy mode"): its KUBE-SVC chain's `-m statistic --mode random` rules
// are NAT rules, which netfilter evaluates only for a connection's first packet (conntrack
// carries the rest), so the choice is per connection, never per HTTP request. A client with a
// keep-alive pool (the router's undici) thus stays on the pods its connections landed on.
// `ts-node bench/kubeProxy.ts --port <p> --backend 127.0.0.1:<a> --backend ... --seed <n>`
import * as net from "node:net";
import { Command, InvalidArgumentError } from "commander";
import { mulberry32 } from "./workload";

function main(argv: string[]): void {
  const o = new Command("kube-proxy")
    .description("TCP proxy choosing a random backend per connection (kube-proxy's iptables mode)")
    .requiredOption("--port <port>", "port to listen on", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535)
        throw new InvalidArgumentError("--port must be an integer between 0 and 65535");
      return n;
    })
    .requiredOption(
      "--backend <host:port>",
      "a backend (repeat for each)",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option("--seed <n>", "seed of the backend choices", (v) => Number(v), 1)
    .parse(argv)
    .opts<{ port: number; backend: string[]; seed: number }>();
  const backends = o.backend.map((b) => {
    const i = b.lastIndexOf(":");
    return { host: b.slice(0, i), port: Number(b.slice(i + 1)) };
  });
  const random = mulberry32(o.seed);
  const server = net.createServer((client) => {
    const backend = backends[Math.floor(random() * backends.length)];
    const upstream = net.connect(backend);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    // Either side failing ends both, as a reset through NAT would.
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.once("error", close).once("close", close);
    upstream.once("error", close).once("close", close);
  });
  server.listen(o.port, "127.0.0.1", () =>
    process.stdout.write(`kube-proxy stand-in listening on http://127.0.0.1:${o.port}\n`),
  );
}

main(process.argv);
