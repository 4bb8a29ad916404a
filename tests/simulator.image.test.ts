// scripts/simulator/Dockerfile, performed without Docker (as tests/router.dockerfile.test.ts does
// for the router), and its `vllm` shim fed the exact command line each stack's model Deployment
// runs (components/manifests/modelManifests.ts: command ["vllm", "serve"] + vllmArgs).
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildModelDeployment } from "../components/manifests";
import { VLLM_PORT, loadStackSpec } from "../components/spec";
import { parseServeArgs, UsageError } from "../scripts/simulator/vllm";
import { parseDockerfile, runDockerfile, StageResult } from "./support/dockerfile";
import { eventually } from "./support/router";
import { freePort } from "./support/services";
import { STACK_FILES } from "./support/stackFiles";

const ROOT = path.resolve(__dirname, "..");
const DOCKERFILE = path.join(ROOT, "scripts/simulator/Dockerfile");

/** The container's command line of every model of a stack, as the Deployment sets it. */
function modelCommands(stack: string) {
  const spec = loadStackSpec(stack);
  return spec.models.map((model) => {
    const c = buildModelDeployment(spec, model).spec!.template.spec!.containers[0];
    return { model, argv: [...c.command!, ...c.args!] };
  });
}

describe("vllm shim of the simulator image", () => {
  for (const stack of STACK_FILES) {
    it(`parses the vllm serve command line of every model of ${stack}`, () => {
      for (const { model, argv } of modelCommands(stack)) {
        assert.equal(argv[0], "vllm", "the Deployment runs `vllm` from PATH");
        const parsed = parseServeArgs(argv.slice(1));
        assert.equal(parsed.model, model.source);
        assert.equal(parsed.servedModelName, model.servedModelName);
        assert.equal(parsed.host, "0.0.0.0", "listens on the pod IP, not loopback");
        assert.equal(parsed.port, VLLM_PORT);
        assert.equal(parsed.maxModelLen, model.args.maxModelLen);
        // Every other flag is accepted as given (vLLM's GPU knobs mean nothing here).
        const consumed = argv.filter((a) =>
          /^--(host|port|served-model-name|max-model-len)=/.test(a),
        );
        assert.deepEqual(
          parsed.ignored,
          argv.slice(3).filter((a) => !consumed.includes(a)),
        );
      }
    });
  }

  it("accepts vLLM's other spellings: --flag value, underscores, --model; later flags win", () => {
    const p = parseServeArgs([
      "serve",
      "--model",
      "org/m",
      "--port",
      "9000",
      "--served_model_name",
      "m",
      "--max_model_len=512",
      "--enable-prefix-caching",
      "--port=9001",
    ]);
    assert.deepEqual(p, {
      model: "org/m",
      host: "0.0.0.0",
      port: 9001,
      servedModelName: "m",
      maxModelLen: 512,
      engine: {},
      ignored: ["--enable-prefix-caching"],
    });
  });

  it("sizes the engine model by vLLM's --max-num-seqs, --max-num-batched-tokens, --block-size, --num-gpu-blocks-override (EngineArgs)", () => {
    const p = parseServeArgs([
      "serve",
      "m",
      "--max-num-seqs=4",
      "--max_num_batched_tokens",
      "512",
      "--block-size=32",
      "--num-gpu-blocks-override",
      "100",
    ]);
    assert.deepEqual(p.engine, {
      maxNumSeqs: 4,
      maxNumBatchedTokens: 512,
      blockSize: 32,
      numGpuBlocks: 100,
    });
    assert.deepEqual(p.ignored, []);
    assert.throws(
      () => parseServeArgs(["serve", "m", "--max-num-seqs=0"]),
      /--max-num-seqs: expected an integer >= 1, got '0'/,
    );
  });

  it("rejects what vLLM would reject, naming the argument", () => {
    const bad: [string[], RegExp][] = [
      [["run", "m"], /unknown command 'run'/],
      [["serve"], /model tag is required/],
      [["serve", "a", "b"], /unexpected argument 'b'/],
      [["serve", "m", "--port=http"], /--port: expected an integer >= 0, got 'http'/],
      [["serve", "m", "--port"], /--port: expected a value/],
    ];
    for (const [argv, message] of bad) {
      assert.throws(
        () => parseServeArgs(argv),
        (e: Error) => e instanceof UsageError && message.test(e.message),
      );
    }
  });
});

describe("simulator Dockerfile", function () {
  this.timeout(240000);
  const stages = parseDockerfile(fs.readFileSync(DOCKERFILE, "utf8"));
  let image: StageResult;
  let out: string;

  before(function () {
    out = fs.mkdtempSync(path.join(os.tmpdir(), "simulator-image-"));
    image = runDockerfile(stages, ROOT, out, () => undefined);
  });
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  /** The shim's target script, inside the image root. */
  function shimTarget(): string {
    const shim = path.join(image.root, "usr/local/bin/vllm");
    assert.ok(fs.statSync(shim).mode & 0o111, "the shim is executable");
    const target = /^exec node (\S+) "\$@"$/m.exec(fs.readFileSync(shim, "utf8"))?.[1];
    assert.ok(target, "the shim execs node on the compiled simulator");
    return path.join(image.root, target);
  }

  it("is multi-stage on a pinned Node 20 image, runs `vllm serve` as a numeric non-root user", () => {
    assert.ok(stages.length >= 2);
    for (const s of stages) assert.match(s.from, /^node:20\.\d+/);
    assert.match(image.user ?? "", /^[1-9]\d*:[1-9]\d*$/);
    assert.deepEqual(image.cmd?.slice(0, 2), ["vllm", "serve"]);
    assert.deepEqual(image.exposed, [VLLM_PORT]);
    // /usr/local/bin is on the PATH of the official node images, where the Deployment finds `vllm`.
    assert.ok(fs.existsSync(path.join(image.root, "usr/local/bin/vllm")));
  });

  it("sends the build exactly the context files it copies (BuildKit reads <Dockerfile>.dockerignore)", () => {
    const copied = stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    const ignore = fs.readFileSync(`${DOCKERFILE}.dockerignore`, "utf8").split("\n");
    assert.ok(ignore.includes("*"), "everything else stays out");
    const allowed = ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1));
    assert.deepEqual([...allowed].sort(), [...copied].sort());
  });

  it("ships compiled JavaScript that needs no packages and writes no files (read-only root)", () => {
    const dir = path.dirname(shimTarget());
    assert.ok(!fs.existsSync(path.join(image.root, "opt/vllm-simulator/node_modules")));
    const files = fs.readdirSync(dir);
    assert.deepEqual(files.sort(), [
      "engine.js",
      "kvcache.js",
      "metrics.js",
      "server.js",
      "tokens.js",
      "vllm.js",
    ]);
    for (const f of files) {
      const js = fs.readFileSync(path.join(dir, f), "utf8");
      for (const [, dep] of js.matchAll(/require\("([^"]+)"\)/g)) {
        assert.match(
          dep,
          /^(node:(crypto|http|net)|\.\/(server|engine|kvcache|tokens|metrics))$/,
          `${f} requires ${dep}`,
        );
      }
    }
  });

  it("serves the ci stack's model from the Deployment's command line: health, models, completions, metrics", async () => {
    const { model, argv } = modelCommands("ci")[0];
    const port = await freePort();
    // The Deployment's own words, then a free port for this test (argparse: the last one wins).
    const child = spawn(process.execPath, [shimTarget(), ...argv.slice(1), `--port=${port}`], {
      cwd: "/",
      env: { PATH: process.env.PATH, ...image.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const url = `http://127.0.0.1:${port}`;
    const post = (p: string, body: object) =>
      fetch(`${url}${p}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    try {
      await eventually(
        "the image's vllm shim to answer /health",
        async () => (await fetch(`${url}/health`).catch(() => undefined))?.status === 200,
        10000,
      );
      const models = (await (await fetch(`${url}/v1/models`)).json()) as {
        data: { id: string; root: string; max_model_len: number }[];
      };
      assert.deepEqual(
        models.data.map((m) => [m.id, m.root, m.max_model_len]),
        [[model.servedModelName, model.source, model.args.maxModelLen]],
      );
      const completion = await post("/v1/completions", {
        model: model.servedModelName,
        prompt: "Say hi",
        max_tokens: 4,
      });
      assert.equal(completion.status, 200);
      assert.equal(((await completion.json()) as { object: string }).object, "text_completion");
      const chat = await post("/v1/chat/completions", {
        model: model.servedModelName,
        messages: [{ role: "user", content: "Say hi" }],
        max_tokens: 4,
      });
      assert.equal(chat.status, 200);
      assert.equal(((await chat.json()) as { object: string }).object, "chat.completion");
      // The image serves through the engine model: its prefix cache counted both prompts.
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /^vllm:num_requests_running\{/m);
      const queries = /^vllm:prefix_cache_queries_total\{[^}]*\} (\d+)$/m.exec(metrics)?.[1];
      assert.ok(Number(queries) > 0, metrics);
      assert.match(output, /ignored: --tensor-parallel-size=1 --gpu-memory-utilization=0\.9/);
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
    }
  });
});
