// A stand-in for a model's ClusterIP Service on this machine, for `npm run local`: like
// kube-proxy, it sends each TCP connection to one of the Service's pods chosen at random
// ("kube-proxy in iptables mode chooses a backend at random",
// https://kubernetes.io/docs/reference/networking/virtual-ips/). The registry row then points
// at "the Service" as in a cluster: the router's mode `service`, and its fallback when no pod
// is known, spread over the pods as they would there.
import * as net from "node:net";

export interface ServiceProxy {
  url: string;
  port: number;
  /** Registry endpoint form: `127.0.0.1:<port>`. */
  endpoint: string;
  close(): Promise<void>;
}

/** Listens on a free port of 127.0.0.1 and forwards each connection to a random pod. */
export async function startServiceProxy(pods: readonly { port: number }[]): Promise<ServiceProxy> {
  if (pods.length === 0) throw new Error("a Service stand-in needs at least one pod");
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };
  const server = net.createServer((client) => {
    const pod = pods[Math.floor(Math.random() * pods.length)];
    const upstream = net.connect(pod.port, "127.0.0.1");
    track(client);
    track(upstream);
    // A refused or reset pod resets the client's connection, as a dead endpoint does.
    client.once("error", () => upstream.destroy());
    upstream.once("error", () => client.resetAndDestroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    endpoint: `127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
