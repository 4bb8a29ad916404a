// One simulated vLLM replica for the routing benchmark: the simulator's engine model in a process
// of its own (one event loop per replica, as one engine per pod), whose request log is a stdout
// line per request naming the `x-request-id` it arrived with, so the benchmark sees which pod
// served each request whether the router or the kube-proxy stand-in chose it. SIGUSR2 replaces
// the simulator with a fresh one on the same port (cold cache, counters at zero) and prints
// RESET_LINE: each routing mode starts cold without paying a process start again.
// `ts-node bench/replica.ts --port <p> --model <name>`
import { subscribe } from "node:diagnostics_channel";
import type { IncomingMessage } from "node:http";
import { Command, InvalidArgumentError } from "commander";
import { startSimulator } from "../scripts/simulator";

/** A request-log line: `REQUEST_LOG_PREFIX <x-request-id>`. */
export const REQUEST_LOG_PREFIX = "served";
/** Printed once a reset (SIGUSR2) has a fresh simulator listening. */
export const RESET_LINE = "replica reset";

async function main(argv: string[]): Promise<void> {
  const o = new Command("replica")
    .description("Engine-model vLLM simulator that logs each request's x-request-id on stdout")
    .requiredOption("--port <port>", "port to listen on", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535)
        throw new InvalidArgumentError("--port must be an integer between 0 and 65535");
      return n;
    })
    .requiredOption("--model <name>", "model name")
    .parse(argv)
    .opts<{ port: number; model: string }>();
  // Node's built-in channel, published as each request starts (node:diagnostics_channel,
  // "HTTP: http.server.request.start"): the simulator itself stays untouched.
  subscribe("http.server.request.start", (message) => {
    const req = (message as { request: IncomingMessage }).request;
    const id = req.headers["x-request-id"];
    if (req.method === "POST" && typeof id === "string")
      process.stdout.write(`${REQUEST_LOG_PREFIX} ${id}\n`);
  });
  const start = () => startSimulator({ port: o.port, model: o.model, engine: {} });
  let sim = await start();
  process.on("SIGUSR2", () => {
    void sim
      .close()
      .then(start)
      .then((fresh) => {
        sim = fresh;
        process.stdout.write(`${RESET_LINE}\n`);
      });
  });
  process.stdout.write(`replica listening on ${sim.url}\n`);
}

if (require.main === module)
  main(process.argv).catch((err) => {
    process.stderr.write(`replica failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
