// Staging and production as promote/rollback tests need them: one registry database, a vLLM
// simulator and a router per environment, and stand-in pulumi state whose stack outputs
// point at them, so every verification gate runs against real parts. The stack files live in
// a real git repository (a temp dir with a bare `origin`), as in a clone of this project.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startSimulator, Simulator } from "../../scripts/simulator";
import { createPulumiStandIn, PulumiStandIn } from "./pulumiStandIn";
import { RouterProcess, seedRegistry, startRouter } from "./router";
import { createTestDatabase } from "./services";

export const MODEL = "chat";
const DIGEST = (c: string) => `vllm/vllm-openai:v0.11.0@sha256:${c.repeat(64)}`;
const REV = (c: string) => c.repeat(40);

/** A production-valid release of the model (digest and revision pinned). */
export function release(digest: string, revision: string, extra: Record<string, unknown> = {}) {
  return {
    name: MODEL,
    source: "org/chat",
    image: DIGEST(digest),
    revision: REV(revision),
    ...extra,
  };
}

export function stagingConfig(releases: unknown[]) {
  return {
    environment: "staging",
    namespace: "llm-staging",
    gpuQuota: 4,
    releases,
    capacity: { [MODEL]: { replicas: 1, gpu: { count: 1 } } },
    router: { replicas: 2, imageRegistry: "registry.example/platform" },
    registry: { stack: "acme/vllm-registry/shared", host: "registry.example" },
  };
}

/** The router image production runs before a promotion (production never builds its own). */
export const PRODUCTION_ROUTER_IMAGE = `registry.example/platform/vllm-router@sha256:${"b".repeat(64)}`;

export function productionConfig(releases: unknown[]) {
  return {
    environment: "production",
    namespace: "llm-production",
    gpuQuota: 8,
    releases,
    capacity: {
      [MODEL]: { replicas: 2, gpu: { count: 1 }, cache: { accessMode: "ReadWriteMany" } },
    },
    router: { replicas: 2, image: PRODUCTION_ROUTER_IMAGE },
    registry: { stack: "acme/vllm-registry/shared", host: "registry.example" },
  };
}

export interface ReleaseStacks {
  databaseUrl: string;
  routers: Record<"staging" | "production", RouterProcess>;
  sims: Record<"staging" | "production", Simulator>;
  /**
   * A fresh stand-in whose staging and production stacks point at the running parts; their
   * stack files are committed on `main` of a new git repository (`projectDir`).
   */
  standIn(staging: unknown[], production: unknown[]): PulumiStandIn;
  close(): Promise<void>;
}

/** A registry under row-level security: a URL that seeds rows, and each router's own role. */
export interface ReleaseRegistry {
  seedUrl: string;
  routerUrls: Record<"staging" | "production", string>;
}

/** Both stacks on a registry of their own: a fresh database, or `registry`. */
export async function startReleaseStacks(registry?: ReleaseRegistry): Promise<ReleaseStacks> {
  const databaseUrl = registry?.seedUrl ?? (await createTestDatabase("ops_release"));
  const sims = {
    staging: await startSimulator({ port: 0, model: MODEL, ttftMs: 5, tokensPerSecond: 0 }),
    production: await startSimulator({ port: 0, model: MODEL, ttftMs: 5, tokensPerSecond: 0 }),
  };
  await seedRegistry(
    databaseUrl,
    (["staging", "production"] as const).map((environment) => ({
      modelName: MODEL,
      environment,
      endpoint: sims[environment].endpoint,
      namespace: `llm-${environment}`,
    })),
  );
  const router = (environment: "staging" | "production") =>
    startRouter({
      DATABASE_URL: registry?.routerUrls[environment] ?? databaseUrl,
      ROUTER_ENVIRONMENT: environment,
      ROUTER_SHUTDOWN_DELAY_MS: "0",
    });
  const routers = { staging: await router("staging"), production: await router("production") };
  const made: PulumiStandIn[] = [];
  return {
    databaseUrl,
    routers,
    sims,
    standIn(staging, production) {
      const s = createPulumiStandIn(createProjectRepo());
      made.push(s);
      s.setConfig("staging", stagingConfig(staging));
      s.setConfig("production", productionConfig(production));
      git(s.projectDir!, "add", "-A");
      git(s.projectDir!, "commit", "-q", "-m", "stacks");
      for (const env of ["staging", "production"] as const)
        s.setOutputs(env, {
          routerUrl: routers[env].url,
          models: { [MODEL]: { endpoint: sims[env].endpoint } },
        });
      return s;
    },
    async close() {
      await Promise.all([routers.staging.stop(), routers.production.stop()]);
      await Promise.all([sims.staging.close(), sims.production.close()]);
      for (const s of made) {
        s.remove();
        fs.rmSync(path.dirname(s.projectDir!), { recursive: true, force: true });
      }
    },
  };
}

/** `git <args>` in `dir`; its output. */
export function git(dir: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd: dir, encoding: "utf8" });
}

/** `<tmp>/project`: a git repo on `main` with the policy pack configs and a bare `origin`. */
function createProjectRepo(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vllm-fleet-project-"));
  const dir = path.join(root, "project");
  fs.cpSync(path.resolve(__dirname, "../../policies/config"), path.join(dir, "policies/config"), {
    recursive: true,
  });
  git(root, "init", "-q", "--bare", "-b", "main", "origin.git");
  git(dir, "init", "-q", "-b", "main");
  git(dir, "config", "user.name", "Release Engineer");
  git(dir, "config", "user.email", "release@example.com");
  git(dir, "remote", "add", "origin", path.join(root, "origin.git"));
  return dir;
}
