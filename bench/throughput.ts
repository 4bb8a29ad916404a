// Throughput at a fixed concurrency for several ways to reach the same simulator (direct,
// through the router, through a bare proxy), in rounds whose order rotates so drift and
// warm-up hit every side alike, with the CPU each process spent per request.
import { closedLoop, Target } from "./load";
import { cpuUs } from "./processes";

export interface Side {
  name: string;
  target: Target;
  /** The proxy's process, if the side has one (its CPU is reported per request). */
  proxyPid?: number;
}

export interface SideResult {
  rps: number;
  /** CPU microseconds per request: the load generator (this process), simulator and proxy. */
  cpuUs: { generator: number; simulator: number; proxy: number };
}

export async function throughput(
  sides: Side[],
  simulatorPid: number,
  path: string,
  body: string,
  concurrency: number,
  perSide: number,
  rounds: number,
): Promise<Record<string, SideResult>> {
  const perRound = Math.ceil(perSide / rounds);
  const totals = new Map(
    sides.map((s) => [s.name, { seconds: 0, requests: 0, gen: 0, sim: 0, proxy: 0 }]),
  );
  let errors = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(i + round) % sides.length];
      const t = totals.get(side.name)!;
      const gen0 = process.cpuUsage();
      const sim0 = await cpuUs(simulatorPid);
      const proxy0 = side.proxyPid ? await cpuUs(side.proxyPid) : 0;
      const started = process.hrtime.bigint();
      const r = await closedLoop(side.target, path, body, concurrency, perRound);
      t.seconds += Number(process.hrtime.bigint() - started) / 1e9;
      const gen = process.cpuUsage(gen0);
      t.gen += gen.user + gen.system;
      t.sim += (await cpuUs(simulatorPid)) - sim0;
      t.proxy += side.proxyPid ? (await cpuUs(side.proxyPid)) - proxy0 : 0;
      t.requests += perRound;
      errors += r.errors;
    }
  }
  if (errors) throw new Error(`${errors} requests failed during the throughput runs on ${path}`);
  return Object.fromEntries(
    [...totals].map(([name, t]) => [
      name,
      {
        rps: t.requests / t.seconds,
        cpuUs: {
          generator: t.gen / t.requests,
          simulator: t.sim / t.requests,
          proxy: t.proxy / t.requests,
        },
      },
    ]),
  );
}
