// The router's error catalogue (router/src/errors.ts) is the only place its error codes are
// spelled, and the JSON body and the SSE error event are built from the same entry.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ERRORS, errorBody, errors, sseErrorEvent } from "../router/src/errors";

const SRC = path.resolve(__dirname, "../router/src");

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((d) =>
      d.isDirectory()
        ? sources(path.join(dir, d.name))
        : d.name.endsWith(".ts")
          ? [path.join(dir, d.name)]
          : [],
    );
}

describe("router error catalogue", () => {
  it("is the only file of router/src that spells an error code as a string", () => {
    const spelled = sources(SRC)
      .filter((f) => f !== path.join(SRC, "errors.ts"))
      .flatMap((f) => {
        const text = fs.readFileSync(f, "utf8");
        return Object.keys(ERRORS)
          .filter((c) => new RegExp(`["'\`]${c}["'\`]`).test(text))
          .map((c) => `${path.relative(SRC, f)}: ${c}`);
      });
    assert.deepEqual(spelled, []);
  });

  it("builds OpenAI's error body, and the SSE event as that body in one data line", () => {
    const err = errors.model_disabled("alpha", null);
    assert.equal(err.status, 403);
    assert.deepEqual(JSON.parse(errorBody(err)), {
      error: {
        message: "The model 'alpha' is disabled: no reason given",
        type: "permission_error",
        param: null,
        code: "model_disabled",
      },
    });
    const event = sseErrorEvent(errors.upstream_stream_broken("alpha"));
    // WHATWG HTML 9.2.6: a "data:" line, and a blank line dispatches the event.
    assert.match(event, /^data: [^\n]+\n\n$/);
    assert.equal(
      event.slice("data: ".length, -2),
      errorBody(errors.upstream_stream_broken("alpha")),
    );
  });

  it("answers upstream_unavailable with 502 unless the caller picks 503", () => {
    const failures = [{ model: "alpha", reason: "timeout" }];
    assert.equal(errors.upstream_unavailable("alpha", failures).status, 502);
    const busy = errors
      .upstream_unavailable("alpha", failures)
      .with({ status: 503, headers: { "retry-after": "1" } });
    assert.equal(busy.status, 503);
    assert.deepEqual(busy.headers, { "retry-after": "1" });
    assert.match(busy.message, /tried alpha: timeout/);
  });
});
