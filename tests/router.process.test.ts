// spawnRouter (scripts/lib/routerProcess.ts), the one way `npm run local`, the tests and the
// benchmarks start a router: a router that cannot start says why and is never left running, and
// a router dies with the process that started it, however that process dies.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { buildRouter, spawnRouter } from "../scripts/lib/routerProcess";
import { eventually } from "./support/router";
import { freePort } from "./support/services";

const ROOT = path.resolve(__dirname, "..");

/** Pids of the processes whose environment holds `marker` (Linux /proc; our own processes). */
function processesWith(marker: string): number[] {
  return fs.readdirSync("/proc").flatMap((p) => {
    if (!/^\d+$/.test(p)) return [];
    try {
      return fs.readFileSync(`/proc/${p}/environ`, "utf8").includes(marker) ? [Number(p)] : [];
    } catch {
      return []; // gone, or not ours
    }
  });
}

describe("spawnRouter (scripts/lib/routerProcess.ts)", () => {
  before(async function () {
    this.timeout(120000);
    await buildRouter();
  });

  it("a router that exits before listening: the error has its exit code and what it printed", async () => {
    await assert.rejects(
      spawnRouter({
        env: { DATABASE_URL: "postgresql://127.0.0.1:1/x", ROUTER_ENVIRONMENT: "qa" },
      }),
      /^Error: router exited with 2 before listening:\n[\s\S]*ROUTER_ENVIRONMENT must be one of/,
    );
  });

  it("a router that is not ready in time is killed, and the error says so", async () => {
    const marker = `ROUTER_TEST_MARKER=${randomUUID()}`;
    const [key, value] = marker.split("=");
    const lines: string[] = [];
    await assert.rejects(
      spawnRouter({
        // Nothing listens there: the registry never loads, so /readyz never answers 200.
        env: {
          DATABASE_URL: `postgresql://127.0.0.1:${await freePort()}/x`,
          ROUTER_ENVIRONMENT: "development",
          [key]: value,
        },
        timeoutMs: 2000,
        onLine: (l) => lines.push(l),
      }),
      /^Error: router was not ready within 2 s:\n[\s\S]*"router listening"/,
    );
    assert.ok(
      lines.some((l) => l.includes('"router listening"')),
      "it did listen",
    );
    assert.deepEqual(processesWith(marker), [], "no router left running");
  });

  it("the router dies with the process that started it, even one killed with SIGKILL (PR_SET_PDEATHSIG)", async function () {
    if (process.platform !== "linux") this.skip();
    const marker = `ROUTER_TEST_MARKER=${randomUUID()}`;
    const [key, value] = marker.split("=");
    // A parent that starts a router without waiting for readiness, says so, and stays.
    const parent = spawn(
      process.execPath,
      [
        "-r",
        "ts-node/register/transpile-only",
        "-e",
        `require("./scripts/lib/routerProcess").spawnRouter({ waitReady: false, env: ${JSON.stringify(
          {
            DATABASE_URL: `postgresql://127.0.0.1:${await freePort()}/x`,
            ROUTER_ENVIRONMENT: "development",
            [key]: value,
          },
        )} }).then((r) => { console.log("started " + r.child.pid); setInterval(() => {}, 1000); });`,
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    parent.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await eventually("the router to start", async () => /started \d+/.test(out), 30000);
      const router = Number(/started (\d+)/.exec(out)![1]);
      assert.deepEqual(processesWith(marker), [router]);
      parent.kill("SIGKILL");
      await eventually("the router to exit", async () => processesWith(marker).length === 0, 10000);
    } finally {
      parent.kill("SIGKILL");
      for (const pid of processesWith(marker)) process.kill(pid, "SIGKILL");
    }
  });
});
