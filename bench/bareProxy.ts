// A bare reverse proxy for the benchmark's floor: Node's HTTP server and the router's own
// undici, forwarding every POST to one upstream, with none of the router's work (no registry
// lookup, request ids, metrics, logs, fallbacks or error handling). Whatever the router costs
// above this is the router's own; below it is what any Node.js proxy pays on this machine.
// `ts-node bench/bareProxy.ts --port <p> --upstream http://127.0.0.1:<q>`
import * as http from "node:http";
import { createRequire } from "node:module";
import * as path from "node:path";
import { Command, InvalidArgumentError } from "commander";

/** The part of undici 7's Agent this proxy uses (typed here: the root may hoist another major). */
interface DispatchAgent {
  dispatch(
    options: { origin: string; path: string; method: string; headers: object; body: Buffer },
    handler: {
      onRequestStart(): void;
      onResponseStart(c: unknown, status: number, headers: http.OutgoingHttpHeaders): void;
      onResponseData(c: unknown, chunk: Buffer): void;
      onResponseEnd(): void;
      onResponseError(): void;
    },
  ): boolean;
}

// The undici the router runs, not whichever version the root package happens to hoist.
const routerRequire = createRequire(path.resolve(__dirname, "../router/package.json"));
const { Agent } = routerRequire("undici") as { Agent: new (options: object) => DispatchAgent };

function main(argv: string[]): void {
  const o = new Command("bare-proxy")
    .description("Bare Node.js reverse proxy (the benchmark's floor); forwards every POST")
    .requiredOption("--port <port>", "port to listen on", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535)
        throw new InvalidArgumentError("--port must be an integer between 0 and 65535");
      return n;
    })
    .requiredOption("--upstream <url>", "origin to forward to, e.g. http://127.0.0.1:8001")
    .parse(argv)
    .opts<{ port: number; upstream: string }>();
  const agent = new Agent({ keepAliveTimeout: 4000, keepAliveMaxTimeout: 4000 });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      agent.dispatch(
        {
          origin: o.upstream,
          path: req.url ?? "/",
          method: "POST",
          headers: { "content-type": "application/json" },
          body: Buffer.concat(chunks),
        },
        {
          onRequestStart: () => undefined, // marks undici's handler API, as the router's does
          onResponseStart: (_c, status, headers) => void res.writeHead(status, headers),
          onResponseData: (_c, chunk) => void res.write(chunk),
          onResponseEnd: () => void res.end(),
          onResponseError: () => void res.destroy(),
        },
      );
    });
  });
  server.listen(o.port, "127.0.0.1", () =>
    process.stdout.write(`bare proxy listening on http://127.0.0.1:${o.port}\n`),
  );
}

main(process.argv);
