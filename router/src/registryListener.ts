// LISTEN on the registry's change channel, with proof that the connection still delivers. A
// connection dropped by a NAT or load balancer gets no FIN or RST: without a ping, changes
// silently stop arriving. Every `pingIntervalMs` the listener NOTIFYs a channel of its own on
// the LISTEN connection. PostgreSQL delivers notifications of different transactions in commit
// order (https://www.postgresql.org/docs/current/sql-notify.html), so a ping coming back proves
// every change committed before it was sent has arrived. No ping back within `timeoutMs`: the
// connection is destroyed, `onLost` stops the caches trusting what they hold, and it reconnects
// with backoff. Every (re)connect calls `onConnected` (a full resync: changes sent while away are
// lost).
import { randomBytes } from "node:crypto";
import type { Client } from "pg";
import { connectClient, REGISTRY_CHANNEL } from "@vllm-fleet/registry";
import type { Logger } from "./logger";
import type { ListenLossReason, RouterMetrics } from "./metrics";

/** Default ping period; five pings per second cost each router five tiny transactions. */
export const LISTEN_PING_INTERVAL_MS = 200;
/** Default silence after which the connection counts as dead; bounds how stale caches get. */
export const LISTEN_TIMEOUT_MS = 600;
/** Longest pause between reconnect attempts (backoff from 100 ms). */
export const LISTEN_RETRY_MAX_MS = 2000;
/**
 * TCP keep-alive idle time: a backstop below the pings (which keep the connection busy) for
 * the kernel to notice a dead peer and for middleboxes to keep the flow's state. pg passes it to
 * socket.setKeepAlive (node_modules/pg/lib/connection.js).
 */
export const LISTEN_KEEPALIVE_MS = 10_000;

export interface RegistryListenerOptions {
  databaseUrl: string;
  /** CA certificate (PEM) for the registry's TLS. */
  registryCa?: string;
  environment: string;
  logger: Logger;
  metrics: RouterMetrics;
  /** How often the connection proves it delivers (a NOTIFY to itself). */
  pingIntervalMs?: number;
  /** Silence after which the connection is declared dead (also bounds connecting and LISTEN). */
  timeoutMs?: number;
  /** A row of this environment changed. */
  onChange(model: string): void;
  /** LISTEN is (again) active. */
  onConnected(): Promise<void>;
  /** LISTEN lost its connection; changes are not delivered until onConnected. */
  onLost(): void;
}

export class RegistryListener {
  private client: Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private closed = false;
  private attempt = 0;
  private seq = 0;
  private pending: { seq: number; sentAt: number } | undefined;
  /** Send time of the last ping that came back: every change committed before it has arrived. */
  private confirmedAt = 0;
  /** A private channel, so pings wake no other router. */
  private readonly pingChannel = `${REGISTRY_CHANNEL}_ping_${randomBytes(6).toString("hex")}`;
  private readonly pingIntervalMs: number;
  private readonly timeoutMs: number;
  /** When PostgreSQL last proved this connection alive (a notification or a ping back). */
  proofOfLifeAt = Date.now();

  constructor(private readonly o: RegistryListenerOptions) {
    this.pingIntervalMs = o.pingIntervalMs ?? LISTEN_PING_INTERVAL_MS;
    this.timeoutMs = o.timeoutMs ?? LISTEN_TIMEOUT_MS;
  }

  start(): void {
    void this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.stopPinging();
    const c = this.client;
    this.client = undefined;
    if (c) await endClient(c);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let client: Client | undefined;
    try {
      client = await connectClient(this.o.databaseUrl, {
        keepAlive: true,
        keepAliveInitialDelayMillis: LISTEN_KEEPALIVE_MS,
        // A LISTEN session lives long, so no statement timeout; but LISTEN itself and every
        // ping are bounded, so a connection that goes silent while connecting is retried too.
        statement_timeout: 0,
        query_timeout: this.timeoutMs,
        ca: this.o.registryCa,
      });
      const c = client;
      c.on("notification", (msg) => {
        if (this.client === c) this.proofOfLifeAt = Date.now();
        if (msg.channel === this.pingChannel) this.ponged(c, msg.payload);
        else this.notified(msg.payload);
      });
      c.on("error", () => this.lost(c, "connection_lost"));
      c.on("end", () => this.lost(c, "connection_lost"));
      await c.query(`LISTEN ${REGISTRY_CHANNEL}; LISTEN ${this.pingChannel}`);
    } catch (err) {
      if (client) destroy(client);
      this.retry((err as Error).message);
      return;
    }
    if (this.closed) {
      await endClient(client);
      return;
    }
    this.client = client;
    this.attempt = 0;
    this.confirmed(client, Date.now());
    this.ping(client);
    this.o.logger.info("listening for registry changes");
    await this.o.onConnected();
  }

  private ping(c: Client): void {
    if (this.client !== c) return;
    this.pending = { seq: ++this.seq, sentAt: Date.now() };
    // A failed ping is a ping that never comes back: the deadline handles both.
    c.query("SELECT pg_notify($1, $2)", [this.pingChannel, String(this.seq)]).catch(
      () => undefined,
    );
  }

  private ponged(c: Client, payload: string | undefined): void {
    const p = this.pending;
    if (this.client !== c || !p || payload !== String(p.seq)) return;
    this.pending = undefined;
    this.confirmed(c, p.sentAt);
    this.pingTimer = setTimeout(
      () => this.ping(c),
      Math.max(0, p.sentAt + this.pingIntervalMs - Date.now()),
    );
  }

  /** Everything committed up to `at` has arrived: the connection has `timeoutMs` from there. */
  private confirmed(c: Client, at: number): void {
    this.confirmedAt = at;
    clearTimeout(this.deadline);
    this.deadline = setTimeout(
      // setImmediate runs after pending socket reads, so a pong that arrived while the event
      // loop was busy still counts.
      () => setImmediate(() => this.checkDeadline(c)),
      Math.max(0, at + this.timeoutMs - Date.now()),
    );
  }

  private checkDeadline(c: Client): void {
    if (this.client !== c) return;
    // Timers may fire a millisecond early: not overdue yet means wait the rest.
    if (Date.now() - this.confirmedAt < this.timeoutMs) this.confirmed(c, this.confirmedAt);
    else this.lost(c, "ping_timeout");
  }

  private notified(payload: string | undefined): void {
    try {
      const { environment, model } = JSON.parse(payload ?? "") as {
        environment?: string;
        model?: string;
      };
      if (environment !== this.o.environment) return;
      if (typeof model === "string") this.o.onChange(model);
    } catch {
      // A payload we do not understand still means "something changed".
      void this.o.onConnected();
    }
  }

  private lost(client: Client, reason: ListenLossReason): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.stopPinging();
    // A silently dead peer never answers end()'s Terminate, so the socket is destroyed.
    destroy(client);
    if (this.closed) return;
    this.o.metrics.listenReconnects.inc({ reason });
    this.o.onLost();
    this.retry(
      reason === "ping_timeout"
        ? `no answer to the listener's ping for ${Date.now() - this.confirmedAt} ms`
        : "connection lost",
    );
  }

  private stopPinging(): void {
    clearTimeout(this.pingTimer);
    clearTimeout(this.deadline);
    this.pending = undefined;
  }

  private retry(reason: string): void {
    if (this.closed) return;
    const delay = Math.min(100 * 2 ** this.attempt++, LISTEN_RETRY_MAX_MS);
    if (this.attempt === 1)
      this.o.logger.warn({ reason, retryInMs: delay }, "registry LISTEN unavailable; retrying");
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }
}

function destroy(client: Client): void {
  client.connection.stream.destroy();
}

/** A polite end (Terminate), but never waiting on a peer that does not answer. */
async function endClient(client: Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise((r) => (timer = setTimeout(r, 1000))),
  ]);
  clearTimeout(timer);
  destroy(client);
}
