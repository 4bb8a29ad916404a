// Memory under attack, without a key: (a) unique model names sprayed at the router, 1 MiB
// ones that cannot be names and short ones the registry does not know; (b) uploads that stall
// mid-body. Reports the router's peak RSS, sampled throughout.
import * as net from "node:net";
import { Child, rssMb } from "./processes";

export interface MemoryAttackOptions {
  /** Requests whose model is a unique 1 MiB string. */
  longNames: number;
  /** Requests whose model is a unique, well-formed name the registry does not know. */
  unknownNames: number;
  /** Uploads that send part of a 4 MiB body and stall. */
  stalledUploads: number;
}

export interface MemoryAttackResult {
  idleMb: number;
  sprayPeakMb: number;
  uploadsPeakMb: number;
}

const MIB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Highest RSS of `pid` while `work` runs, sampled every 50 ms. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<number> {
  let peak = await rssMb(pid);
  const timer = setInterval(() => {
    rssMb(pid).then(
      (mb) => (peak = Math.max(peak, mb)),
      () => undefined,
    );
  }, 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, await rssMb(pid));
}

async function spray(url: string, models: (i: number) => string, n: number, concurrency: number) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const res = await fetch(`${url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: models(i), prompt: "x" }),
        });
        await res.arrayBuffer();
        if (res.status !== 400 && res.status !== 404)
          throw new Error(`a sprayed name was answered ${res.status}`);
      }
    }),
  );
}

/** Opens `n` uploads declaring 4 MiB, sends 1 MiB of each, and holds them open for `holdMs`. */
async function stalledUploads(url: string, n: number, holdMs: number): Promise<void> {
  const { port } = new URL(url);
  const sockets: net.Socket[] = [];
  const part = `{"model":"fast","prompt":"${"x".repeat(MIB)}`;
  try {
    await Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<void>((resolve) => {
            const s = net.connect(Number(port), "127.0.0.1", () => {
              s.write(
                `POST /v1/completions HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: ${4 * MIB}\r\n\r\n`,
              );
              // Written (or refused by a router that answered 503 and discards the rest).
              s.write(part, () => resolve());
            });
            s.on("error", () => resolve());
            s.on("close", () => resolve());
            s.resume();
            sockets.push(s);
          }),
      ),
    );
    await sleep(holdMs);
  } finally {
    for (const s of sockets) s.destroy();
  }
}

export async function memoryAttacks(
  router: Child,
  o: MemoryAttackOptions,
): Promise<MemoryAttackResult> {
  const pid = router.child.pid!;
  const idleMb = await rssMb(pid);
  const sprayPeakMb = await peakRss(pid, async () => {
    await spray(router.url, (i) => `${i}-${"n".repeat(MIB)}`, o.longNames, 4);
    await spray(router.url, (i) => `unknown-${i}-${Date.now()}`, o.unknownNames, 16);
  });
  const uploadsPeakMb = await peakRss(pid, () =>
    stalledUploads(router.url, o.stalledUploads, 2000),
  );
  return { idleMb, sprayPeakMb, uploadsPeakMb };
}
