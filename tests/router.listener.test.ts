// The router's LISTEN connection dropped silently, as a NAT or load balancer that forgets a flow
// does (no FIN, no RST): a TCP proxy between the router and PostgreSQL stops forwarding the
// LISTEN connection's bytes both ways while keeping its sockets open. Disables must still reach
// the router within 1 s, and the listener must notice, say so in its metrics, and recover.
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as net from "node:net";
import { promisify } from "node:util";
import Redis from "ioredis";
import { Pool } from "pg";
import { ROUTER_METRICS as R } from "@vllm-fleet/router/contract";
import { readRouterConfig, RouterConfigError } from "../router/src/config";
import { registryKey, setStatus } from "@vllm-fleet/registry";
import {
  LISTEN_KEEPALIVE_MS,
  LISTEN_PING_INTERVAL_MS,
  LISTEN_TIMEOUT_MS,
} from "../router/src/registryListener";
import { startSimulator, Simulator } from "../scripts/simulator";
import { eventually, RouterProcess, seedRegistry, startRouter } from "./support/router";
import { createTestDatabase, startRedis, RedisServer } from "./support/services";

const ENV = "development";

interface Link {
  client: net.Socket;
  server: net.Socket;
  /** The connection sent LISTEN (the router's listener). */
  listen: boolean;
  /** Bytes are dropped both ways; the sockets stay open. */
  blackholed: boolean;
}

/** A TCP proxy to PostgreSQL that can blackhole LISTEN connections. */
class PgProxy {
  readonly links: Link[] = [];
  /** Blackhole a new connection as soon as it sends LISTEN (a path that fails while reconnecting). */
  blackholeNewListens = false;
  port = 0;
  private readonly server = net.createServer((client) => this.accept(client));

  constructor(private readonly targetPort: number) {}

  async listen(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  private accept(client: net.Socket): void {
    const server = net.connect(this.targetPort, "127.0.0.1");
    const link: Link = { client, server, listen: false, blackholed: false };
    this.links.push(link);
    client.on("data", (chunk: Buffer) => {
      if (!link.listen && chunk.includes("LISTEN ")) {
        link.listen = true;
        if (this.blackholeNewListens) link.blackholed = true;
      }
      if (!link.blackholed) server.write(chunk);
    });
    server.on("data", (chunk: Buffer) => {
      if (!link.blackholed) client.write(chunk);
    });
    const close = () => {
      client.destroy();
      server.destroy();
    };
    for (const s of [client, server]) {
      s.on("error", close);
      s.on("close", close);
    }
  }

  /** Open LISTEN connections. */
  listening(): Link[] {
    return this.links.filter((l) => l.listen && !l.client.destroyed);
  }

  /** Stops forwarding the open LISTEN connections, keeping their sockets open; returns how many. */
  blackholeListens(): number {
    const open = this.listening().filter((l) => !l.blackholed);
    for (const l of open) l.blackholed = true;
    return open.length;
  }

  async close(): Promise<void> {
    for (const l of this.links) {
      l.client.destroy();
      l.server.destroy();
    }
    await new Promise((r) => this.server.close(r));
  }
}

async function complete(router: RouterProcess, model: string) {
  const res = await fetch(`${router.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: "hello", max_tokens: 2 }),
  });
  const body = await res.text();
  return { status: res.status, body };
}

/** The value of one series (`name{labels}`), 0 when absent. */
async function metric(router: RouterProcess, series: string): Promise<number> {
  const text = await (await fetch(`${router.metricsUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("router with a silently dropped LISTEN connection", function () {
  this.timeout(60000);
  let sim: Simulator;
  let redis: RedisServer;
  let proxy: PgProxy;
  let admin: Pool;
  let cache: Redis;
  let router: RouterProcess;

  before(async function () {
    this.timeout(120000);
    sim = await startSimulator({ port: 0, model: "live", ttftMs: 1, tokensPerSecond: 0 });
    redis = await startRedis();
    cache = new Redis(redis.url);
    const db = await createTestDatabase("listen");
    const entry = { environment: ENV, namespace: "llm", endpoint: sim.endpoint } as const;
    await seedRegistry(db, [
      { modelName: "live", ...entry },
      { modelName: "other", servedModelName: "live", ...entry },
    ]);
    admin = new Pool({ connectionString: db, max: 2 });
    admin.on("error", () => undefined); // idle clients see the server stop at the end of the run
    const direct = new URL(db);
    proxy = await new PgProxy(Number(direct.port)).listen();
    const proxied = new URL(db);
    proxied.port = String(proxy.port);
    router = await startRouter({
      DATABASE_URL: proxied.toString(),
      REDIS_URL: redis.url,
      ROUTER_ENVIRONMENT: ENV,
    });
  });
  after(async () => {
    await router?.stop();
    await proxy?.close();
    await admin?.end();
    cache?.disconnect();
    await redis?.stop();
    await sim?.close();
  });

  it("turns TCP keep-alive on for the LISTEN connection only (pg keepAlive, keepAliveInitialDelayMillis)", async () => {
    // `ss -o` shows `timer:(keepalive,...)` for sockets with SO_KEEPALIVE (ss(8)); pg calls
    // socket.setKeepAlive(true, keepAliveInitialDelayMillis) (node_modules/pg/lib/connection.js).
    assert.equal((await complete(router, "never-registered")).status, 404); // a pool connection
    const { stdout } = await promisify(execFile)("ss", [
      "-tnopH",
      "state",
      "established",
      "dst",
      `127.0.0.1:${proxy.port}`,
    ]);
    const mine = stdout.split("\n").filter((l) => l.includes(`pid=${router.child.pid},`));
    assert.ok(mine.length >= 2, `the router's connections through the proxy:\n${stdout}`);
    const keepalive = mine
      .map((l) => /timer:\(keepalive,([\d.]+)(ms|sec|min)/.exec(l))
      .filter((m) => m !== null);
    assert.equal(keepalive.length, 1, `exactly the LISTEN connection keeps alive:\n${stdout}`);
    const [, n, unit] = keepalive[0]!;
    const ms = Number(n) * (unit === "ms" ? 1 : unit === "sec" ? 1000 : 60000);
    assert.ok(ms <= LISTEN_KEEPALIVE_MS, `first probe within ${LISTEN_KEEPALIVE_MS} ms (${ms})`);
  });

  /** Re-enables `live` and shows the router serves it again within 1 s (a NOTIFY arrived). */
  async function reEnableWithinOneSecond() {
    const enabled = Date.now();
    await setStatus(admin, ENV, "live", "ready");
    await eventually(
      "live served again",
      async () => (await complete(router, "live")).status === 200,
      2000,
    );
    assert.ok(Date.now() - enabled < 1000, "re-enable reached the router within 1 s");
  }

  it("answers 403 model_disabled within 1 s of a disable, notices the silence, reconnects and resyncs", async () => {
    assert.equal((await complete(router, "live")).status, 200);
    assert.equal((await complete(router, "other")).status, 200);
    assert.ok(await cache.get(registryKey(ENV, "other")), "read-through filled Redis");
    assert.ok((await metric(router, R.listenAge)) < LISTEN_TIMEOUT_MS / 1000, "alive to start");
    const lossSeries = `${R.listenReconnects}{reason="ping_timeout"}`;
    assert.equal(await metric(router, lossSeries), 0);

    assert.equal(proxy.blackholeListens(), 1, "one LISTEN connection to blackhole");
    // Disabled behind the router's back: plain SQL, no Redis DEL, only the NOTIFY it cannot hear.
    const started = Date.now();
    await setStatus(admin, ENV, "live", "disabled", "silent drop test");
    await setStatus(admin, ENV, "other", "disabled", "disabled while the router was deaf");

    let maxAge = 0;
    let denied = false;
    const watchAge = (async () => {
      while (!denied) {
        maxAge = Math.max(maxAge, await metric(router, R.listenAge));
        await sleep(25);
      }
    })();
    let answer = await complete(router, "live");
    while (answer.status === 200 && Date.now() - started < 5000) {
      await sleep(10);
      answer = await complete(router, "live");
    }
    const propagationMs = Date.now() - started;
    denied = true;
    await watchAge;
    console.log(`      disable propagation with a silently dropped LISTEN: ${propagationMs} ms`);
    assert.equal(answer.status, 403, answer.body);
    assert.equal(JSON.parse(answer.body).error.code, "model_disabled");
    assert.ok(propagationMs < 1000, `disable reached the router in ${propagationMs} ms`);

    await eventually(
      "a new LISTEN connection",
      async () => proxy.listening().filter((l) => !l.blackholed).length === 1,
      5000,
    );
    await eventually(
      "the age of the last proof of life to reset",
      async () => (await metric(router, R.listenAge)) < LISTEN_TIMEOUT_MS / 1000,
      5000,
    );
    assert.ok(
      maxAge >= (LISTEN_TIMEOUT_MS - LISTEN_PING_INTERVAL_MS) / 1000,
      `the age rose while the connection was silent (max ${maxAge} s)`,
    );
    assert.equal(await metric(router, lossSeries), 1, "one connection replaced for its silence");
    await eventually(
      "the loss logged as a warning (logs are flushed every 250 ms)",
      async () =>
        router
          .logs()
          .some(
            (l) =>
              l.msg === "registry LISTEN unavailable; retrying" &&
              l.level === 40 &&
              /no answer to the listener's ping/.test(String(l.reason)),
          ),
      2000,
    );

    // Resynced: what changed while deaf is known, in memory and in Redis (no stale 'ready').
    const other = await complete(router, "other");
    assert.equal(other.status, 403, other.body);
    assert.match(other.body, /disabled while the router was deaf/);
    const cached = await cache.get(registryKey(ENV, "other"));
    assert.ok(!cached || JSON.parse(cached).status === "disabled", `Redis holds ${cached}`);

    // The new connection delivers: a re-enable arrives by NOTIFY.
    await reEnableWithinOneSecond();
  });

  it("bounds every reconnect step: a LISTEN that never answers is retried until the path heals", async () => {
    const before = await metric(router, `${R.listenReconnects}{reason="ping_timeout"}`);
    proxy.blackholeNewListens = true;
    assert.equal(proxy.blackholeListens(), 1);
    const deaf = () => proxy.links.filter((l) => l.blackholed).length;
    const deafBefore = deaf();
    await eventually(
      "reconnect attempts whose LISTEN goes unanswered",
      async () => deaf() >= deafBefore + 3,
      10000,
    );
    // Deaf all along, yet disables still arrive within 1 s (lookups bypass the caches).
    const started = Date.now();
    await setStatus(admin, ENV, "live", "disabled", "while reconnecting");
    await eventually(
      "live disabled",
      async () => (await complete(router, "live")).status === 403,
      2000,
    );
    assert.ok(Date.now() - started < 1000, `propagation ${Date.now() - started} ms`);

    proxy.blackholeNewListens = false;
    await eventually(
      "a working LISTEN connection",
      async () => (await metric(router, R.listenAge)) < LISTEN_TIMEOUT_MS / 1000,
      10000,
    );
    assert.equal(await metric(router, `${R.listenReconnects}{reason="ping_timeout"}`), before + 1);
    await reEnableWithinOneSecond();
  });
});

describe("router config: the listener's ping and timeout", () => {
  const base = { DATABASE_URL: "postgresql://u:p@db:5432/r", ROUTER_ENVIRONMENT: ENV };

  it("defaults to a ping every 200 ms and a 600 ms timeout, under the 1 s propagation bound", () => {
    const c = readRouterConfig(base);
    assert.equal(c.registryPingIntervalMs, LISTEN_PING_INTERVAL_MS);
    assert.equal(c.registryListenTimeoutMs, LISTEN_TIMEOUT_MS);
    assert.ok(LISTEN_PING_INTERVAL_MS < LISTEN_TIMEOUT_MS && LISTEN_TIMEOUT_MS < 1000);
  });

  it("rejects a ping interval that is not below the timeout, naming both variables", () => {
    assert.throws(
      () =>
        readRouterConfig({
          ...base,
          ROUTER_REGISTRY_PING_INTERVAL_MS: "1000",
          ROUTER_REGISTRY_LISTEN_TIMEOUT_MS: "1000",
        }),
      (e: unknown) =>
        e instanceof RouterConfigError &&
        /ROUTER_REGISTRY_PING_INTERVAL_MS \(1000\) must be below ROUTER_REGISTRY_LISTEN_TIMEOUT_MS \(1000\)/.test(
          e.message,
        ),
    );
  });
});
