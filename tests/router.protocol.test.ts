// The router against model servers that misbehave at the protocol level (raw node:net servers
// that write exactly the bytes under test), and the exposure of its metrics and logs.
import * as assert from "node:assert/strict";
import * as http from "node:http";
import * as net from "node:net";
import { REGISTRY_TABLE } from "@vllm-fleet/registry";
import { readRouterConfig, RouterConfigError } from "../router/src/config";
import { startSimulator, Simulator } from "../scripts/simulator";
import { createTestDatabase } from "./support/services";
import { eventually, RouterProcess, seedRegistry, startRouter } from "./support/router";

const ENV = "development";
const SECRET = "sk-query-string-secret-0042";

/** A model server that answers every request with `reply` and records the request heads. */
interface RawUpstream {
  endpoint: string;
  heads: string[];
  close(): void;
}

async function rawUpstream(reply: (socket: net.Socket) => void): Promise<RawUpstream> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let buf = Buffer.alloc(0);
    socket.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      const head = buf.subarray(0, end).toString("latin1");
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      buf = buf.subarray(end + 4 + length);
      heads.push(head);
      reply(socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    endpoint: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    heads,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function json200(body: string, extraHeaders = ""): string {
  return `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`;
}

const COMPLETION = JSON.stringify({ object: "text_completion", choices: [{ text: "ok" }] });

/**
 * A TCP proxy in front of PostgreSQL that counts the registry reads passing through: simple-query
 * ('Q') and extended-protocol Parse ('P') messages of the frontend protocol
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html) that name the registry
 * table. The LISTEN connection's keep-alive NOTIFY every 200 ms reads no rows and is not counted.
 */
async function countingPgProxy(databaseUrl: string) {
  const target = new URL(databaseUrl);
  let queries = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.pipe(client);
    let buf = Buffer.alloc(0);
    let startup = true; // the startup message (and an SSL request) carry no type byte
    client.on("data", (d) => {
      upstream.write(d);
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const header = startup ? 4 : 5;
        if (buf.length < header) return;
        const length = buf.readInt32BE(header - 4);
        if (buf.length < header - 4 + length) return;
        if (startup) startup = [80877103, 80877104].includes(buf.readInt32BE(4));
        else if (
          (buf[0] === 0x51 || buf[0] === 0x50) &&
          buf.subarray(5, 1 + length).includes(REGISTRY_TABLE)
        )
          queries++;
        buf = buf.subarray(header - 4 + length);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    queries: () => queries,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A request through node:http, which (unlike fetch) sends hop-by-hop headers as given. */
function request(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        agent: false,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: text,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("router protocol edges and metrics exposure", function () {
  this.timeout(60000);
  const upstreams: RawUpstream[] = [];
  let beta: Simulator;
  let router: RouterProcess;
  let pg: Awaited<ReturnType<typeof countingPgProxy>>;

  const raw = async (reply: (socket: net.Socket) => void) => {
    const u = await rawUpstream(reply);
    upstreams.push(u);
    return u;
  };
  const post = (model: string, extra: Record<string, unknown> = {}, query = "") =>
    request(
      `${router.url}/v1/completions${query}`,
      JSON.stringify({ model, prompt: "x", ...extra }),
    );
  const errorCode = (body: string) => (JSON.parse(body) as { error: { code: string } }).error.code;

  let hop: RawUpstream;
  let sseCut: RawUpstream;

  before(async function () {
    this.timeout(120000);
    beta = await startSimulator({ port: 0, model: "beta", ttftMs: 5, tokensPerSecond: 0 });
    const early = await raw((s) =>
      s.write(
        "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n" + json200(COMPLETION),
      ),
    );
    const garbled = await raw((s) => s.end("HTTP/1.1 2OO OK\r\ncontent-length: 0\r\n\r\n"));
    const outOfRange = await raw((s) => s.write("HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n"));
    const underRange = await raw((s) => s.write("HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n"));
    // A 500 whose chunked body trickles forever: never idle, never done.
    const endless500 = await raw((s) => {
      s.write("HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n");
      const t = setInterval(() => s.writable && s.write("1\r\nx\r\n"), 100);
      s.on("close", () => clearInterval(t));
    });
    hop = await raw((s) =>
      s.write(
        json200(
          COMPLETION,
          [
            "connection: keep-alive, x-upstream-hop",
            "x-upstream-hop: secret-of-the-connection",
            "keep-alive: timeout=99, max=7",
            'proxy-authenticate: Basic realm="upstream"',
            "proxy-authorization: Basic dXBzdHJlYW0=",
            "trailer: x-checksum",
            "upgrade: h2c",
            "x-request-id: forged-by-upstream",
            "x-vllm-router-model: forged-model",
            "x-vllm-router-degraded: 1",
            "x-upstream-kept: yes",
            "",
          ].join("\r\n"),
        ),
      ),
    );
    sseCut = await raw((s) =>
      s.write(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n" +
          chunk('data: {"choices":[{"text":"Hel"}]}\n\n') +
          chunk('data: {"choices":[{"te') +
          "0\r\n\r\n",
      ),
    );
    const db = await createTestDatabase("protocol");
    const base = { environment: ENV, namespace: "llm-development" } as const;
    await seedRegistry(db, [
      { ...base, modelName: "beta", endpoint: beta.endpoint },
      { ...base, modelName: "early", endpoint: early.endpoint },
      { ...base, modelName: "garbled", endpoint: garbled.endpoint, fallbacks: ["beta"] },
      { ...base, modelName: "garbled-alone", endpoint: garbled.endpoint },
      { ...base, modelName: "out-of-range", endpoint: outOfRange.endpoint, fallbacks: ["beta"] },
      { ...base, modelName: "under-range", endpoint: underRange.endpoint, fallbacks: ["beta"] },
      { ...base, modelName: "endless-500", endpoint: endless500.endpoint },
      { ...base, modelName: "endless-500-fb", endpoint: endless500.endpoint, fallbacks: ["beta"] },
      { ...base, modelName: "hop", endpoint: hop.endpoint, servedModelName: "org/hop-served" },
      { ...base, modelName: "sse-cut", endpoint: sseCut.endpoint },
      {
        ...base,
        modelName: "retired",
        endpoint: beta.endpoint,
        status: "disabled",
        disabledReason: "gone",
      },
    ]);
    pg = await countingPgProxy(db);
    router = await startRouter({
      DATABASE_URL: pg.url,
      ROUTER_ENVIRONMENT: ENV,
      ROUTER_METRICS_REGISTRY_INTERVAL_MS: "5000",
    });
  });

  after(async () => {
    await router?.stop();
    await beta?.close();
    for (const u of upstreams) u.close();
    pg?.close();
  });

  it("skips an upstream 103 Early Hints and answers with the final response (RFC 9110 15.2; undici Dispatcher docs: onHeaders runs once per 1xx)", async () => {
    const res = await post("early");
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), JSON.parse(COMPLETION));
    assert.equal(res.headers.link, undefined, "the 1xx's fields are not merged into the answer");
  });

  it("treats an invalid status line or a status outside 100..599 as a failed attempt and falls back before the first byte (RFC 9110 15)", async () => {
    for (const model of ["garbled", "out-of-range", "under-range"]) {
      const res = await post(model, { max_tokens: 1 });
      assert.equal(res.status, 200, `${model}: ${res.body}`);
      assert.equal(res.headers["x-vllm-router-model"], "beta", model);
    }
    const alone = await post("garbled-alone");
    assert.equal(alone.status, 502);
    assert.equal(errorCode(alone.body), "upstream_unavailable");
    assert.match(alone.body, /garbled-alone: /);
  });

  it("does not wait for the end of a 5xx body that never ends: falls back, or answers 502, within seconds", async () => {
    let started = Date.now();
    const fb = await post("endless-500-fb", { max_tokens: 1 });
    assert.equal(fb.status, 200);
    assert.equal(fb.headers["x-vllm-router-model"], "beta");
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    started = Date.now();
    const alone = await post("endless-500");
    assert.equal(alone.status, 502);
    assert.equal(errorCode(alone.body), "upstream_unavailable");
    assert.match(alone.body, /endless-500: http_500/);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });

  it("forwards no hop-by-hop field in either direction, and the model server cannot set the router's own headers (RFC 9110 7.6.1, 11.7.1-2)", async () => {
    const res = await request(
      `${router.url}/v1/completions`,
      JSON.stringify({ model: "hop", prompt: "x" }),
      {
        connection: "keep-alive, x-client-hop",
        "x-client-hop": "secret-of-the-client",
        te: "trailers",
        "keep-alive": "timeout=42",
        "proxy-authorization": "Basic Y2xpZW50",
        upgrade: "websocket",
        trailer: "x-client-trailer",
        "x-request-id": "client-chosen-id",
      },
    );
    assert.equal(res.status, 200, res.body);
    const sent = hop.heads.at(-1)!.toLowerCase();
    const names = sent
      .split("\r\n")
      .slice(1)
      .map((l) => l.split(":")[0]);
    for (const name of [
      "x-client-hop",
      "te",
      "keep-alive",
      "proxy-authorization",
      "upgrade",
      "trailer",
      "authorization",
    ])
      assert.ok(!names.includes(name), `the model server received ${name}:\n${sent}`);
    // undici's own connection management, not the client's options.
    assert.match(sent, /\r\nconnection: keep-alive\r\n/);
    assert.match(sent, /\r\nx-request-id: client-chosen-id/);

    for (const name of [
      "x-upstream-hop",
      "proxy-authenticate",
      "proxy-authorization",
      "trailer",
      "upgrade",
    ])
      assert.equal(res.headers[name], undefined, `the client received ${name}`);
    assert.doesNotMatch(String(res.headers["keep-alive"] ?? ""), /99/, "the upstream's Keep-Alive");
    assert.doesNotMatch(String(res.headers.connection), /x-upstream-hop/);
    assert.equal(res.headers["x-upstream-kept"], "yes", "end-to-end fields pass");
    assert.equal(res.headers["x-request-id"], "client-chosen-id");
    assert.equal(res.headers["x-vllm-router-model"], "hop");
    assert.equal(res.headers["x-vllm-router-degraded"], undefined);
    const ids = res.rawHeaders.filter(
      (_, i) => i % 2 === 0 && /^x-request-id$/i.test(res.rawHeaders[i]),
    );
    assert.equal(ids.length, 1, "one x-request-id");
  });

  it("answers 400 for a body nested deeper than 128 levels whose model must be rewritten, never a 500 against the model", async () => {
    const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
    const ok = await request(
      `${router.url}/v1/completions`,
      `{"model":"hop","prompt":"x","extra":${nested(127)}}`,
    );
    assert.equal(ok.status, 200, ok.body);
    assert.match(hop.heads.at(-1)!, /content-length/i);
    for (const depth of [128, 100_000]) {
      const res = await request(
        `${router.url}/v1/completions`,
        `{"model":"hop","prompt":"x","extra":${nested(depth)}}`,
      );
      assert.equal(res.status, 400, `${depth}: ${res.body}`);
      assert.equal(errorCode(res.body), "json_too_deep");
    }
    // Brackets inside strings are text, not nesting.
    const text = await post("hop", { prompt: "[".repeat(1000) });
    assert.equal(text.status, 200);
    const metrics = await (await fetch(`${router.metricsUrl}/metrics`)).text();
    assert.doesNotMatch(metrics, /router_requests_total\{model="hop",status="500"/);
  });

  it("ends a stream that stops without data: [DONE] with an SSE error event", async () => {
    const res = await post("sse-cut", { stream: true });
    assert.equal(res.status, 200);
    assert.ok(!res.body.includes("[DONE]"));
    const events = res.body.split(/\n\n/).filter((e) => e.trim());
    const last = events.at(-1)!;
    assert.match(last, /^data: \{"error":/, res.body);
    assert.equal(JSON.parse(last.slice("data: ".length)).error.code, "upstream_stream_broken");
    assert.ok(res.body.startsWith('data: {"choices":[{"text":"Hel"}]}\n\n'));
    // A complete stream stays untouched.
    const full = await post("beta", { stream: true, max_tokens: 2 });
    assert.ok(full.body.endsWith("data: [DONE]\n\n"));
    assert.doesNotMatch(full.body, /upstream_stream_broken/);
  });

  it("serves /metrics only on the metrics port, not on the API port clients use", async () => {
    const api = await fetch(`${router.url}/metrics`);
    assert.equal(api.status, 404);
    assert.equal(((await api.json()) as { error: { code: string } }).error.code, "unknown_path");
    const metrics = await fetch(`${router.metricsUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /router_registry_entry_ready\{model="retired"/);
    for (const p of ["/v1/models", "/healthz", "/"])
      assert.equal((await fetch(`${router.metricsUrl}${p}`)).status, 404, p);
  });

  it("refuses a metrics port equal to the API port, naming the variables", () => {
    const env = {
      DATABASE_URL: "postgresql://router@db.example:5432/model_registry",
      ROUTER_ENVIRONMENT: ENV,
    };
    assert.equal(readRouterConfig(env).metricsPort, 9090);
    assert.throws(
      () => readRouterConfig({ ...env, PORT: "9090" }),
      (e: unknown) =>
        e instanceof RouterConfigError && /METRICS_PORT must differ from PORT/.test(e.message),
    );
  });

  it("reads the registry at most once per interval however hard /metrics is scraped", async () => {
    await fetch(`${router.metricsUrl}/metrics`).then((r) => r.text());
    const before = pg.queries();
    const scrape = () => fetch(`${router.metricsUrl}/metrics`).then((r) => r.text());
    await Promise.all(Array.from({ length: 40 }, scrape));
    for (let i = 0; i < 20; i++) await scrape();
    assert.ok(pg.queries() - before <= 1, `${pg.queries() - before} registry queries`);
    // The next interval reads again, so the gauge follows the registry.
    await eventually(
      "a registry read in the next interval",
      async () => {
        await scrape();
        return pg.queries() > before;
      },
      8000,
    );
  });

  it("never logs a query string", async () => {
    const query = `?api_key=${SECRET}`;
    await post("hop", {}, query);
    await post("hop", { extra: JSON.parse(`${"[".repeat(200)}${"]".repeat(200)}`) }, query);
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    await request(`${router.url}/v1/completions${query}`, `{"model":"hop","x":${deep}}`);
    await fetch(`${router.url}/nowhere${query}`);
    await fetch(`${router.url}/v1/models${query}`);
    await eventually(
      "the request log lines",
      async () =>
        router.logs().filter((l) => l.msg === "request" && l.path === "/v1/completions").length >=
        3,
    );
    assert.ok(!router.output.join("\n").includes(SECRET), "a query string reached the logs");
  });
});

function chunk(text: string): string {
  return `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
}
