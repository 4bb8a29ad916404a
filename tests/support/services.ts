// Real PostgreSQL and Redis for tests. DATABASE_URL / REDIS_URL point at existing servers;
// when unset, the tests start their own (embedded PostgreSQL, a redis-server child process).
import { ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import { Client } from "pg";
import { EmbeddedPostgresTls, startEmbeddedPostgres } from "../../scripts/lib/embeddedPostgres";
import { freePort } from "../../scripts/lib/freePort";

export { freePort };

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A PostgreSQL server the test owns; stop()/start() simulate an outage on the same port. */
export interface PostgresServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server for good and deletes its data directory. */
  destroy(): Promise<void>;
}

export async function startPostgres(tls?: EmbeddedPostgresTls): Promise<PostgresServer> {
  const pg = await startEmbeddedPostgres(await freePort(), { tls });
  return { url: pg.url, port: pg.port, stop: pg.stop, start: pg.start, destroy: pg.destroy };
}

/** A Redis server the test owns; stop()/start() simulate an outage on the same port. */
export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const up = () =>
    new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.write("PING\r\n");
      });
      s.once("data", (d) => {
        s.destroy();
        resolve(d.toString().startsWith("+PONG"));
      });
      s.once("error", () => resolve(false));
    });
  const start = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    );
    const failed = new Promise<never>((_, reject) =>
      child!.once("error", (e) =>
        reject(
          new Error(
            `cannot start redis-server (${e.message}); install it (apt-get install redis-server) or set REDIS_URL`,
          ),
        ),
      ),
    );
    await Promise.race([waitFor(`redis-server on port ${port}`, up), failed]);
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child!.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, stop, start };
}

let sharedPg: Promise<PostgresServer> | undefined;
let sharedRedis: Promise<RedisServer> | undefined;

/** URL of the shared PostgreSQL server (DATABASE_URL, or one started for this run). */
export async function postgresUrl(): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  sharedPg ??= startPostgres();
  return (await sharedPg).url;
}

/** URL of the shared Redis server (REDIS_URL, or one started for this run). */
export async function redisUrl(): Promise<string> {
  if (process.env.REDIS_URL) return process.env.REDIS_URL;
  sharedRedis ??= startRedis();
  return (await sharedRedis).url;
}

/** Databases made by `createTestDatabase` on a server this run did not start (DATABASE_URL). */
const createdDatabases: string[] = [];

/** A fresh, empty database on the shared server, so test files never see each other's rows. */
export async function createTestDatabase(prefix = "t"): Promise<string> {
  const server = new URL(await postgresUrl());
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = new Client({ connectionString: server.toString() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  if (process.env.DATABASE_URL) createdDatabases.push(name);
  server.pathname = `/${name}`;
  return server.toString();
}

/** Drops the run's databases from a server it did not start (one it started goes as a whole). */
async function dropCreatedDatabases(): Promise<void> {
  if (!createdDatabases.length) return;
  const admin = new Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
  try {
    // FORCE: a pool a test left open must not keep its database alive.
    for (const name of createdDatabases.splice(0))
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

export async function stopSharedServices(): Promise<void> {
  const pg = sharedPg;
  const redis = sharedRedis;
  sharedPg = sharedRedis = undefined;
  await dropCreatedDatabases();
  await Promise.all([pg && (await pg).destroy(), redis && (await redis).stop()]);
}

/** A TCP server that accepts connections and never answers: a peer gone silent, the worst case for timeouts. */
export async function silentServer(): Promise<{ port: number; close: () => void }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      sockets.forEach((s) => s.destroy());
      server.close();
    },
  };
}
