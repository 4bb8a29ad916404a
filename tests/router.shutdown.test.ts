// SIGTERM with open streams: readiness fails at once, the streams run to their end, then the
// process exits 0 and refuses new connections.
import * as assert from "node:assert/strict";
import OpenAI from "openai";
import { startSimulator, Simulator } from "../scripts/simulator";
import { createTestDatabase } from "./support/services";
import { eventually, RouterProcess, seedRegistry, startRouter } from "./support/router";

describe("router graceful shutdown", function () {
  this.timeout(60000);
  let sim: Simulator;
  let router: RouterProcess;

  before(async function () {
    this.timeout(120000);
    // 40 tokens at 20 tokens/s: each stream stays open about two seconds, past the shutdown
    // delay, so the drain phase is what lets them finish.
    sim = await startSimulator({ port: 0, model: "chat", ttftMs: 10, tokensPerSecond: 20 });
    const db = await createTestDatabase("shutdown");
    await seedRegistry(db, [
      { modelName: "chat", environment: "production", namespace: "llm", endpoint: sim.endpoint },
    ]);
    router = await startRouter({
      DATABASE_URL: db,
      ROUTER_ENVIRONMENT: "production",
      ROUTER_SHUTDOWN_DELAY_MS: "800",
      ROUTER_DRAIN_TIMEOUT_MS: "10000",
    });
  });
  after(async () => {
    await router?.stop("SIGKILL");
    await sim?.close();
  });

  it("finishes open streams after SIGTERM, failing readiness first, then exits 0", async () => {
    const client = new OpenAI({ baseURL: `${router.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const streams = await Promise.all(
      Array.from({ length: 3 }, () =>
        client.chat.completions.create({
          model: "chat",
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 40,
          stream: true,
        }),
      ),
    );
    let finished = 0;
    const read = streams.map(async (stream) => {
      let tokens = 0;
      let finish: string | null = null;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) tokens++;
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      finished++;
      return { tokens, finish };
    });
    await new Promise((r) => setTimeout(r, 200)); // streams are under way
    router.child.kill("SIGTERM");
    await eventually(
      "readiness to fail",
      async () => (await fetch(`${router.url}/readyz`)).status === 503,
      600,
    );
    assert.equal(
      (await fetch(`${router.url}/healthz`)).status,
      200,
      "still serving in the preStop window",
    );
    // After the delay the listener closes (fresh connections fail) while the streams drain.
    await eventually(
      "new connections to be refused",
      () =>
        fetch(`${router.url}/healthz`).then(
          () => false,
          () => true,
        ),
      1500,
    );
    assert.equal(finished, 0, "the open streams are still being served");
    const results = await Promise.all(read);
    assert.deepEqual(
      results,
      Array.from({ length: 3 }, () => ({ tokens: 40, finish: "length" })),
    );
    assert.equal(await router.exited, 0);
    assert.ok(router.logs().some((l) => l.msg === "router stopped"));
  });
});
