// npm run local: the development stack's data plane on this machine. Once as the command
// itself on a bare machine (embedded PostgreSQL, no Redis), checking that nothing keeps
// running or listening afterwards; then in-process against real PostgreSQL and Redis.
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type Redis from "ioredis";
import {
  decodeEntry,
  connectRedis,
  withRegistryClient,
  getEntry,
  registryKey,
} from "@vllm-fleet/registry";
import { loadStackSpec } from "../components/spec";
import {
  EXIT,
  LOCAL_MANAGER,
  LOCAL_REPLICAS,
  localRegistration,
  run,
  startLocal,
  Teardown,
} from "../scripts/local";
import { EXIT_HELP } from "../scripts/lib/cli";
import { runProgram } from "./support/program";
import { eventually } from "./support/router";
import { scriptRunner } from "./support/scriptIo";
import { createTestDatabase, freePort, redisUrl } from "./support/services";

const ROOT = path.resolve(__dirname, "..");
const MODEL = "qwen2-5-1-5b-instruct";

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function addresses(out: string) {
  const router = /^router\s+http:\/\/127\.0\.0\.1:(\d+)\s+pid (\d+)/m.exec(out);
  const pg = /^registry\s+postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:(\d+)\/model_registry/m.exec(
    out,
  );
  const sim = /^model \S+\s+http:\/\/127\.0\.0\.1:(\d+)/m.exec(out);
  const pods = [...out.matchAll(/^pod \S+\s+http:\/\/127\.0\.0\.1:(\d+)/gm)].map((m) =>
    Number(m[1]),
  );
  assert.ok(router && sim, `summary lists the router and the Service stand-in:\n${out}`);
  assert.equal(pods.length, LOCAL_REPLICAS, `summary lists the pods:\n${out}`);
  return {
    routerPort: Number(router[1]),
    routerPid: Number(router[2]),
    pgPort: pg ? Number(pg[1]) : undefined,
    simPort: Number(sim[1]),
    podPorts: pods,
  };
}

/**
 * A fresh checkout of the sources: the tracked files only (no router/dist, no rendered/) in a
 * new private temp directory, with the installed node_modules linked in where `npm ci` puts them.
 */
function freshCheckout(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vllm-fleet-checkout-"));
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" })
    .split("\0")
    .filter((f) => f && fs.existsSync(path.join(ROOT, f)));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  // npm ci installs the root's and each workspace's own dependencies (router/node_modules).
  const { workspaces } = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    workspaces: string[];
  };
  for (const d of [".", ...workspaces])
    if (fs.existsSync(path.join(ROOT, d, "node_modules")))
      fs.symlinkSync(path.join(ROOT, d, "node_modules"), path.join(dir, d, "node_modules"));
  return dir;
}

describe("npm run local", () => {
  let checkout: string | undefined;
  after(() => checkout && fs.rmSync(checkout, { recursive: true, force: true }));

  it("--once from a fresh checkout on a bare machine: embedded PostgreSQL, no Redis, verified, nothing left running", async function () {
    this.timeout(120000);
    checkout = freshCheckout();
    assert.equal(fs.existsSync(path.join(checkout, "router/dist")), false);
    const started = Date.now();
    const { code, stdout, stderr } = await new Promise<{
      code: number;
      stdout: string;
      stderr: string;
    }>((resolve) =>
      execFile(
        "npm",
        ["run", "--silent", "local", "--", "--once", "--port", "0"],
        // DATABASE_URL and REDIS_URL unset: the machine has nothing running.
        {
          cwd: checkout,
          env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
          timeout: 110000,
        },
        (e, stdout, stderr) =>
          resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(code, EXIT.ok, `${stdout}\n${stderr}`);
    // Progress while starting, then the verification, the summary and a request to paste.
    assert.match(stderr, /✓ starting embedded PostgreSQL: postgresql:\/\/postgres:\*\*\*@/);
    assert.match(stderr, /Redis: not used/);
    assert.match(
      stderr,
      /✓ registering the models \(as the Pulumi program's registry provider does\): qwen2-5-1-5b-instruct ready/,
    );
    assert.match(stdout, /completion\s+qwen2-5-1-5b-instruct\s+PASS\s+HTTP 200/);
    // Metrics on a port of their own, not on the API port.
    assert.match(
      stdout,
      /metrics\s+http:\/\/127\.0\.0\.1:\d+\/metrics\s+PASS\s+not served to API clients/,
    );
    const metricsPort = Number(
      /metrics\s+http:\/\/127\.0\.0\.1:(\d+)\/metrics\s+PASS\s+HTTP 200/.exec(stdout)?.[1],
    );
    assert.ok(metricsPort, "the metrics port answered");
    assert.match(stdout, /✓ all 7 checks passed/);
    assert.match(stdout, /curl -s http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/);
    assert.doesNotMatch(stdout + stderr, /postgres:[0-9a-f]{16,}@/, "no password in the output");
    const a = addresses(stdout);
    assert.ok(a.pgPort, "the embedded PostgreSQL is listed");
    // The router in development's routing mode, with the pods from its discovery file.
    assert.match(stdout, /^router\s+\S+\s+pid \d+, mode scored \(pods from \S+pods\.json\)/m);
    for (const port of [a.routerPort, a.pgPort!, a.simPort, metricsPort, ...a.podPorts])
      assert.ok(await refused(port), `port ${port} is closed after exit`);
    assert.equal(alive(a.routerPid), false, "the router process is gone");
    const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    assert.doesNotMatch(ps, new RegExp(`postgres -D \\S+ -p ${a.pgPort}\\b`));
    process.stdout.write(
      `      (local --once took ${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
    );
  });

  /** `npm run local` serving (no --once) from the fresh checkout, in a process group of its own. */
  async function serving() {
    checkout ??= freshCheckout();
    const npm = spawn("npm", ["run", "--silent", "local", "--", "--port", "0"], {
      cwd: checkout,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    npm.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    npm.stderr.resume();
    await eventually("npm run local to serve", async () => /Running\./.test(stdout), 60000);
    const ps = execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" });
    const procs = ps
      .split("\n")
      .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] }));
    const descendants = (pid: number): typeof procs =>
      procs.filter((p) => p.ppid === pid).flatMap((p) => [p, ...descendants(p.pid)]);
    const local = descendants(npm.pid!).find((p) => /scripts\/local\.ts/.test(p.args));
    assert.ok(local, `local.ts runs under npm:\n${ps}`);
    return { npm, local: local.pid, ...addresses(stdout) };
  }

  async function assertAllStopped(a: Awaited<ReturnType<typeof serving>>, how: string) {
    await eventually(
      `everything local started to stop after ${how}`,
      async () => {
        const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
        const ports = await Promise.all(
          [a.routerPort, a.pgPort!, a.simPort, ...a.podPorts].map(refused),
        );
        return (
          ports.every(Boolean) &&
          !alive(a.routerPid) &&
          !alive(a.local) &&
          !new RegExp(`postgres -D \\S+ -p ${a.pgPort}\\b`).test(ps)
        );
      },
      20000,
    );
  }

  // `npm run` exits on SIGTERM without passing it on (local.ts is re-parented, so it watches
  // its parent); a closing terminal sends SIGHUP; SIGKILL leaves no handler to run at all, so
  // the kernel's parent-death signal (setpriv --pdeathsig, prctl(2) PR_SET_PDEATHSIG) stops
  // the children.
  const deaths: [string, (a: Awaited<ReturnType<typeof serving>>) => void][] = [
    ["only npm gets SIGTERM", (a) => process.kill(a.npm.pid!, "SIGTERM")],
    ["the terminal closes (SIGHUP)", (a) => process.kill(a.local, "SIGHUP")],
    ["local itself is SIGKILLed", (a) => process.kill(a.local, "SIGKILL")],
  ];
  for (const [how, kill] of deaths) {
    it(`stops the router, PostgreSQL and the simulators when ${how}`, async function () {
      this.timeout(120000);
      const a = await serving();
      try {
        assert.ok(a.pgPort && alive(a.routerPid), "serving before the kill");
        kill(a);
        await assertAllStopped(a, how);
      } finally {
        // Whatever the outcome, nothing of this test outlives it.
        try {
          process.kill(-a.npm.pid!, "SIGKILL");
        } catch {
          // the group is already gone
        }
      }
    });
  }

  it("registers what the Pulumi program gives the registry provider", async () => {
    // Only where the row points and who writes it differ from `pulumi up`.
    const own = ["endpoint", "managedBy"];
    const spec = loadStackSpec("staging");
    const run = await runProgram("staging");
    const entries = run.ofType("pulumi-nodejs:dynamic/vllm-registry:RegistryEntry");
    assert.equal(entries.length, spec.models.length);
    for (const e of entries) {
      const model = spec.models.find((m) => m.name === e.inputs.modelName)!;
      const local = localRegistration(spec, model, "127.0.0.1:8001");
      const shared = Object.keys(local).filter((k) => !own.includes(k));
      assert.deepEqual(
        Object.fromEntries(shared.map((k) => [k, e.inputs[k]])),
        Object.fromEntries(shared.map((k) => [k, local[k as keyof typeof local]])),
        model.name,
      );
    }
  });

  describe("with PostgreSQL and Redis running", () => {
    let db: string;
    let redis: Redis;
    let local: ReturnType<typeof scriptRunner>;

    before(async () => {
      db = await createTestDatabase("ops_local");
      const redisAt = await redisUrl();
      redis = await connectRedis(redisAt);
      local = scriptRunner(run, {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: db,
        REDIS_URL: redisAt,
      });
    });
    after(() => redis?.disconnect());

    it("--once uses DATABASE_URL and REDIS_URL, registers as the provider does and verifies", async () => {
      // A stale cached copy from an earlier run: registration must invalidate it.
      await redis.set(registryKey("development", MODEL), "stale");
      const res = await local("--once", "--port", "0");
      assert.equal(res.code, EXIT.ok, `${res.out}\n${res.err}`);
      assert.match(res.err, /✓ connecting to PostgreSQL \(DATABASE_URL\)/);
      assert.match(res.err, /✓ Redis: redis:\/\/127\.0\.0\.1:\d+\/? \(REDIS_URL\)/);
      const row = await withRegistryClient(db, (c) => getEntry(c, "development", MODEL));
      assert.equal(row?.status, "ready");
      assert.equal(row?.managedBy, LOCAL_MANAGER);
      assert.equal(row?.servedModelName, "qwen2.5-1.5b-instruct");
      assert.match(row?.endpoint ?? "", /^127\.0\.0\.1:\d+$/);
      // Registration deleted the stale copy; the router may have cached the fresh row since.
      const cached = await redis.get(registryKey("development", MODEL));
      assert.notEqual(cached, "stale", "registration invalidated the cached copy");
      if (cached) assert.equal(decodeEntry(cached)?.endpoint, row?.endpoint);
      // The router ran with the cache in front of PostgreSQL.
      const log = /log (\S+\.log)/.exec(res.out)![1];
      const listening = fs
        .readFileSync(log, "utf8")
        .split("\n")
        .find((l) => l.includes('"router listening"'));
      assert.match(listening ?? "", /"redis":"redis:\/\/127\.0\.0\.1:\d+/);
      const a = addresses(res.out);
      assert.equal(a.pgPort, undefined);
      assert.ok(await refused(a.routerPort));
      assert.ok(await refused(a.simPort));
      assert.equal(alive(a.routerPid), false);
    });

    it("serves until Ctrl-C: the pasted request works while it runs, and SIGINT stops everything", async function () {
      this.timeout(60000);
      const child = spawn(
        process.execPath,
        ["-r", "ts-node/register/transpile-only", "scripts/local.ts", "--port", "0"],
        {
          cwd: ROOT,
          env: { PATH: process.env.PATH, DATABASE_URL: db },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
      child.stderr.resume();
      await eventually(
        "the platform to run",
        async () => out.includes("Press Ctrl-C to stop"),
        45000,
      );
      const a = addresses(out);
      const res = await fetch(`http://127.0.0.1:${a.routerPort}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: MODEL,
          messages: [{ role: "user", content: "Hello" }],
          max_tokens: 16,
        }),
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { model: string }).model, "qwen2.5-1.5b-instruct");
      child.kill("SIGINT");
      assert.equal(await exited, EXIT.ok);
      assert.equal(alive(a.routerPid), false, "the router process is gone");
      assert.ok(await refused(a.routerPort));
      assert.ok(await refused(a.simPort));
    });

    it("runs each model's pods: conversations spread over them, and each conversation stays on its pod (mode scored)", async function () {
      this.timeout(60000);
      const io = {
        env: { PATH: process.env.PATH, DATABASE_URL: db },
        out: () => undefined,
        err: () => undefined,
      };
      const teardown = new Teardown();
      try {
        const p = await startLocal(
          io,
          { stack: "development", port: 0, once: true, replicas: 2 },
          teardown,
        );
        assert.equal(p.routingMode, "scored");
        const [m] = p.models;
        assert.equal(m.pods.length, 2);
        // Each pod's own count of answered requests (vLLM's vllm:request_success_total).
        const served = async () =>
          Promise.all(
            m.pods.map(async (pod) => {
              const text = await (await fetch(`${pod.url}/metrics`)).text();
              return [...text.matchAll(/^vllm:request_success_total\{[^}]*\} (\d+)/gm)].reduce(
                (n, x) => n + Number(x[1]),
                0,
              );
            }),
          );
        /** Sends one chat turn through the router; the pod that answered it. */
        const turn = async (messages: { role: string; content: string }[]) => {
          const before = await served();
          const res = await fetch(`${p.routerUrl}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: MODEL, messages, max_tokens: 4 }),
          });
          assert.equal(res.status, 200);
          await res.arrayBuffer();
          const after = await served();
          const pod = after.findIndex((n, i) => n > before[i]);
          assert.ok(pod >= 0, "a pod answered");
          return pod;
        };
        const system = { role: "system", content: "You are terse." };
        const firstPods: number[] = [];
        // 16 conversations: all on one of two pods by chance is 2 in 2^16.
        for (let c = 0; c < 16; c++) {
          const user = { role: "user", content: `conversation ${c}: hello` };
          const first = await turn([system, user]);
          const second = await turn([
            system,
            user,
            { role: "assistant", content: "Hi." },
            { role: "user", content: "And then?" },
          ]);
          assert.equal(second, first, `conversation ${c}: its second turn went to another pod`);
          firstPods.push(first);
        }
        assert.deepEqual([...new Set(firstPods)].sort(), [0, 1], "conversations use both pods");
      } finally {
        await teardown.run(() => undefined);
      }
    });

    it("fails with exit code 3 naming the step when PostgreSQL is unreachable", async () => {
      const port = await freePort();
      const res = await scriptRunner(run, {
        PATH: process.env.PATH,
        DATABASE_URL: `postgresql://u:secretpw@127.0.0.1:${port}/x`,
      })("--once", "--port", "0");
      assert.equal(res.code, EXIT.startFailed);
      assert.match(
        res.err,
        /error: connecting to PostgreSQL \(DATABASE_URL\) failed: cannot reach the registry database at postgresql:\/\/u:\*\*\*@/,
      );
      assert.doesNotMatch(res.err, /secretpw/);
    });

    it("rejects a busy port and bad flags with exit code 2, and documents its exit codes", async () => {
      const busy = net.createServer();
      await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
      const port = (busy.address() as net.AddressInfo).port;
      try {
        const res = await local("--once", "--port", String(port));
        assert.equal(res.code, EXIT.usage);
        assert.match(res.err, new RegExp(`port ${port} is in use: .*--port 0 picks a free one`));
      } finally {
        busy.close();
      }
      assert.equal((await local("--port", "http")).code, EXIT.usage);
      const help = await local("--help");
      assert.equal(help.code, EXIT.ok);
      assert.ok(help.out.includes(EXIT_HELP), help.out);
    });
  });
});
