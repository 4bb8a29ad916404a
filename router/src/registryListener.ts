// LISTEN on the registry's change channel with automatic reconnect. Every (re)connect calls
// `onConnected` (the resolver resyncs, since notifications sent while away are lost).
import type { Client } from "pg";
import { connectClient } from "./registry/connect";
import { REGISTRY_CHANNEL } from "./registry/migrations";
import type { Logger } from "./logger";

export interface RegistryListenerOptions {
  databaseUrl: string;
  /** CA certificate (PEM) for the registry's TLS. */
  registryCa?: string;
  environment: string;
  logger: Logger;
  /** A row of this environment changed. */
  onChange(model: string): void;
  /** LISTEN is (again) active. */
  onConnected(): Promise<void>;
  /** LISTEN lost its connection; changes are not delivered until onConnected. */
  onLost(): void;
}

export class RegistryListener {
  private client: Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private attempt = 0;

  constructor(private readonly o: RegistryListenerOptions) {}

  start(): void {
    void this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let client: Client | undefined;
    try {
      // LISTEN sessions are long-lived: no statement timeout, but TCP keep-alive to notice dead peers.
      client = await connectClient(this.o.databaseUrl, {
        keepAlive: true,
        statement_timeout: 0,
        ca: this.o.registryCa,
      });
      const c = client;
      c.on("notification", (msg) => this.notified(msg.payload));
      c.on("error", () => this.lost(c));
      c.on("end", () => this.lost(c));
      await c.query(`LISTEN ${REGISTRY_CHANNEL}`);
    } catch (err) {
      await client?.end().catch(() => undefined);
      this.retry((err as Error).message);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.attempt = 0;
    this.o.logger.info("listening for registry changes");
    await this.o.onConnected();
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

  private lost(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.o.onLost();
    this.retry("connection lost");
  }

  private retry(reason: string): void {
    if (this.closed) return;
    const delay = Math.min(100 * 2 ** this.attempt++, 2000);
    if (this.attempt === 1)
      this.o.logger.warn({ reason, retryInMs: delay }, "registry LISTEN unavailable; retrying");
    this.timer = setTimeout(() => void this.connect(), delay);
  }
}
