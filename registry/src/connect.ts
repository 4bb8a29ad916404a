// Clients for the registry's PostgreSQL and Redis with bounded timeouts everywhere: pg has no
// default timeouts and ioredis waits ~10 s (and queues commands) on a dead server.
import Redis, { RedisOptions } from "ioredis";
import { Client, ClientConfig, Pool, PoolConfig } from "pg";
import { explainConnectError, registryPgConfig } from "./tls";

/** Default pg bounds: connect, per statement (server side) and per query (client side). */
export const PG_TIMEOUTS = {
  connectionTimeoutMillis: 3000,
  statement_timeout: 5000,
  query_timeout: 6000,
  idle_in_transaction_session_timeout: 10000,
} as const;

/** Default ioredis bounds: fail fast instead of queueing and retrying. */
export const REDIS_TIMEOUTS = {
  connectTimeout: 500,
  commandTimeout: 500,
  maxRetriesPerRequest: 1,
  enableOfflineQueue: false,
} as const;

/** A connection URL with its password replaced, safe for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<unparseable url>";
  }
}

/** Thrown when a registry server cannot be reached; the message never contains a password. */
export class RegistryUnavailableError extends Error {
  constructor(what: string, url: string, cause: unknown) {
    super(
      `cannot reach the registry ${what} at ${redactUrl(url)}: ${(cause as Error).message ?? String(cause)}`,
    );
    this.name = "RegistryUnavailableError";
  }
}

/** The registry's CA certificate (PEM text) for sslmode require, verify-ca and verify-full. */
export interface RegistryCa {
  ca?: string;
}

/** pg options for every registry client: libpq's sslmode (see tls.ts), then bounded timeouts. */
function pgConfig<T extends ClientConfig>(
  url: string,
  { ca, ...overrides }: Partial<T> & RegistryCa,
) {
  const { connectionString, ssl } = registryPgConfig(url, ca);
  return { connectionString, ssl, ...PG_TIMEOUTS, ...overrides };
}

/** A pg Pool with bounded timeouts; idle-client errors go to `onError` instead of crashing. */
export function createPool(
  url: string,
  overrides: Partial<PoolConfig> & RegistryCa = {},
  onError: (err: Error) => void = () => undefined,
): Pool {
  const pool = new Pool({ max: 5, ...pgConfig<PoolConfig>(url, overrides) });
  pool.on("error", onError);
  return pool;
}

/** A connected pg Client with bounded timeouts; throws RegistryUnavailableError when unreachable. */
export async function connectClient(
  url: string,
  overrides: Partial<ClientConfig> & RegistryCa = {},
): Promise<Client> {
  const client = new Client(pgConfig(url, overrides));
  client.on("error", () => undefined); // a dropped connection surfaces on the next query
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    const reason = new Error(explainConnectError(err, registryPgConfig(url, overrides.ca)));
    throw new RegistryUnavailableError("database", url, reason);
  }
  return client;
}

/**
 * An ioredis client that fails fast: commands error at once while disconnected (no offline
 * queue), one retry per request, 500 ms connect and command timeouts. Long-lived users (the
 * router) keep the default reconnect; one-shot users pass `retryStrategy: () => null`.
 */
export function createRedis(url: string, overrides: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    ...REDIS_TIMEOUTS,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
    ...overrides,
  });
  redis.on("error", () => undefined); // state is visible through redis.status and failed commands
  return redis;
}

/** A ready ioredis client (see createRedis); throws RegistryUnavailableError when unreachable. */
export async function connectRedis(url: string, overrides: RedisOptions = {}): Promise<Redis> {
  const redis = createRedis(url, { ...overrides, lazyConnect: true });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new RegistryUnavailableError("cache", url, err);
  }
  return redis;
}

/** Runs `fn` with a fresh bounded client and always closes it (for one-shot callers). */
export async function withRegistryClient<T>(
  url: string,
  fn: (db: Client) => Promise<T>,
  tls: RegistryCa = {},
): Promise<T> {
  const db = await connectClient(url, tls);
  try {
    return await fn(db);
  } finally {
    await db.end().catch(() => undefined);
  }
}
