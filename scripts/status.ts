// npm run status -- --stack <name>: every model as each source sees it, side by side (a
// multi-source status): stack config, registry row, Redis cache entry and, when a cluster is
// reachable, pod readiness, with every disagreement between them flagged as drift.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { modelSelector } from "../components/spec";
import { releaseRevision } from "../components/manifests";
import {
  decodeEntry,
  connectRedis,
  withRegistryClient,
  listEntries,
  printable,
  RegistryEntry,
  registryKey,
} from "@vllm-fleet/registry";
import { EXIT, main, runScript, scriptCommand, ScriptError, ScriptIo } from "./lib/cli";
import { Format, formatOption, formatTable, printResult } from "./lib/format";
import { onPath } from "./lib/pulumi";
import {
  expectedEndpoint,
  requireStackView,
  registryCa,
  stackRegistryUrl,
  StackView,
} from "./lib/stack";

/** Exit codes: the table every script shares (printed by --help). */
export { EXIT };

/** What Redis holds for a model: the decoded entry, nothing, or why it could not be read. */
export type CacheState =
  | { state: "entry"; entry: RegistryEntry; ttlSeconds: number }
  | { state: "absent" }
  | { state: "unknown"; reason: string };

/** Pod readiness of a model, or why the cluster could not tell. */
export type PodState = { ready: number; total: number } | { unreachable: string };

export interface ModelSources {
  model: string;
  config: { enabled: boolean; endpoint: string; revision: string; replicas: number };
  row?: RegistryEntry;
  cache: CacheState;
  pods: PodState;
}

export interface ModelStatus extends ModelSources {
  drift: string[];
}

/** Every disagreement between the sources of one model (empty: consistent). */
export function driftOf(s: Omit<ModelSources, "model"> & { model?: string }): string[] {
  const d: string[] = [];
  const { config, row, cache, pods } = s;
  if (!row) {
    if (config.enabled)
      d.push("not registered: the config enables the model but it has no registry row");
  } else {
    if (config.enabled && row.status !== "ready")
      d.push(
        `row ${row.status}${row.disabledReason ? ` (${row.disabledReason})` : ""} but the config enables the model`,
      );
    if (!config.enabled && row.status === "ready")
      d.push("row ready but the config disables the model: routers still send it traffic");
    if (row.endpoint !== config.endpoint)
      d.push(`endpoint: row ${row.endpoint}, config ${config.endpoint}`);
    if (row.revision !== config.revision)
      d.push(`revision: row ${row.revision ?? "(none)"}, config ${config.revision}`);
  }
  if (cache.state === "entry") {
    const c = cache.entry;
    if (!row) d.push("cache holds an entry for a model without a registry row");
    else if (
      c.status !== row.status ||
      c.endpoint !== row.endpoint ||
      c.updatedAt !== row.updatedAt
    )
      d.push(
        `cache stale: cached ${c.status} at ${c.endpoint} (updated ${c.updatedAt}), row ${row.status} at ${row.endpoint} (updated ${row.updatedAt})`,
      );
  }
  if ("ready" in pods) {
    if (config.enabled && pods.ready < config.replicas)
      d.push(`pods: ${pods.ready}/${config.replicas} ready`);
    if (row?.status === "ready" && pods.ready === 0) d.push("row ready but no pod is ready");
  }
  return d;
}

async function readCache(
  redisUrl: string | undefined,
  environment: string,
  models: string[],
): Promise<Map<string, CacheState>> {
  const out = new Map<string, CacheState>();
  if (!redisUrl) {
    models.forEach((m) => out.set(m, { state: "unknown", reason: "REDIS_URL not set" }));
    return out;
  }
  let redis;
  try {
    redis = await connectRedis(redisUrl, { retryStrategy: () => null });
  } catch (e) {
    models.forEach((m) => out.set(m, { state: "unknown", reason: (e as Error).message }));
    return out;
  }
  try {
    for (const m of models) {
      const key = registryKey(environment, m);
      const [text, ttl] = await Promise.all([redis.get(key), redis.ttl(key)]);
      const entry = decodeEntry(text);
      out.set(m, entry ? { state: "entry", entry, ttlSeconds: ttl } : { state: "absent" });
    }
  } finally {
    redis.disconnect();
  }
  return out;
}

const run$ = promisify(execFile);

/** Pods per model through kubectl, or why the cluster is unreachable. */
async function readPods(view: StackView, env: ScriptIo["env"]): Promise<Map<string, PodState>> {
  const out = new Map<string, PodState>();
  const set = (p: PodState) => view.spec.models.forEach((m) => out.set(m.name, p));
  if (!onPath("kubectl", env)) {
    set({ unreachable: "kubectl is not on PATH" });
    return out;
  }
  const context = view.spec.kubernetes.context ? ["--context", view.spec.kubernetes.context] : [];
  const kubectl = (args: string[]) =>
    run$("kubectl", [...context, ...args], { env: env as NodeJS.ProcessEnv, timeout: 15000 });
  try {
    await kubectl(["config", "current-context"]);
  } catch {
    set({ unreachable: "no kubectl context (kubectl config current-context failed)" });
    return out;
  }
  for (const m of view.spec.models) {
    const selector = Object.entries(modelSelector(m.name, view.spec.environment))
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    try {
      const { stdout } = await kubectl([
        "get",
        "pods",
        "--namespace",
        view.spec.namespace,
        "--selector",
        selector,
        "--output",
        "json",
        "--request-timeout",
        "5s",
      ]);
      const pods = (
        JSON.parse(stdout) as {
          items: { status?: { conditions?: { type: string; status: string }[] } }[];
        }
      ).items;
      const ready = pods.filter((p) =>
        p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      ).length;
      out.set(m.name, { ready, total: pods.length });
    } catch (e) {
      const msg = ((e as { stderr?: string }).stderr || (e as Error).message).trim().split("\n")[0];
      set({ unreachable: msg });
      return out;
    }
  }
  return out;
}

/** Gathers every source for every model of the stack (plus ready rows the stack does not know). */
export async function stackStatus(
  view: StackView,
  io: ScriptIo,
): Promise<{ models: ModelStatus[]; orphans: RegistryEntry[] }> {
  const databaseUrl = await stackRegistryUrl(view.name, io.env, view.pulumi);
  const env = view.spec.environment;
  let rows: RegistryEntry[];
  try {
    rows = await withRegistryClient(databaseUrl, (db) => listEntries(db, { environment: env }), {
      ca: registryCa(io.env, view.spec),
    });
  } catch (e) {
    throw new ScriptError(`cannot read the registry: ${(e as Error).message}`, EXIT.unavailable);
  }
  const names = view.spec.models.map((m) => m.name);
  const [cache, pods] = await Promise.all([
    readCache(io.env.REDIS_URL, env, names),
    readPods(view, io.env),
  ]);
  const models = view.spec.models.map((m): ModelStatus => {
    const sources: ModelSources = {
      model: m.name,
      config: {
        enabled: m.enabled,
        endpoint: expectedEndpoint(view, m.name),
        revision: releaseRevision(m),
        replicas: m.enabled ? m.replicas : 0,
      },
      row: rows.find((r) => r.modelName === m.name),
      cache: cache.get(m.name)!,
      pods: pods.get(m.name)!,
    };
    return { ...sources, drift: driftOf(sources) };
  });
  const orphans = rows.filter((r) => !names.includes(r.modelName) && r.status === "ready");
  return { models, orphans };
}

function cacheCell(c: CacheState): string {
  if (c.state === "entry") return `${c.entry.status} (ttl ${c.ttlSeconds}s)`;
  return c.state === "absent" ? "absent" : `unknown: ${c.reason}`;
}

function podsCell(p: PodState): string {
  return "ready" in p ? `${p.ready}/${p.total} ready` : "cluster: unreachable";
}

export function formatStatus(
  view: StackView,
  s: { models: ModelStatus[]; orphans: RegistryEntry[] },
): string {
  const table = formatTable(
    ["MODEL", "CONFIG", "REGISTRY", "CACHE", "PODS", "DRIFT"],
    s.models.map((m) => [
      m.model,
      m.config.enabled ? `enabled x${m.config.replicas}` : "disabled",
      m.row ? `${m.row.status} ${m.row.endpoint}` : "(no row)",
      cacheCell(m.cache),
      podsCell(m.pods),
      m.drift.length ? `DRIFT (${m.drift.length})` : "ok",
    ]),
  );
  // Drift lines quote registry and cache values: each line is escaped as a whole.
  const lines = s.models.flatMap((m) => m.drift.map((d) => `  ${m.model}: ${printable(d)}`));
  lines.push(
    ...s.orphans.map((o) =>
      printable(
        `  ${o.modelName}: ready registry row (managed by ${o.managedBy ?? "?"}) for a model the stack does not have`,
      ),
    ),
  );
  const unreachable = s.models
    .map((m) => m.pods)
    .find((p): p is { unreachable: string } => "unreachable" in p);
  return [
    `Stack ${view.name} (${view.spec.environment}, namespace ${view.spec.namespace})`,
    "",
    table,
    ...(unreachable
      ? ["", printable(`cluster: unreachable (${unreachable.unreachable}); pods not checked`)]
      : []),
    "",
    lines.length ? `✗ drift:\n${lines.join("\n")}` : "✓ no drift: config, registry and cache agree",
  ].join("\n");
}

export async function run(args: string[], io: ScriptIo): Promise<number> {
  const program = scriptCommand(io, {
    name: "npm run status --",
    description:
      "Show each model of a stack as its config, the registry, the Redis cache and the cluster see it, and flag drift between them.",
    help: `Registry: DATABASE_URL when set, else the stack's registryUrl output, its environment's writer
role (\`pulumi stack output --show-secrets\`). PGSSLROOTCERT (the registry's CA, default the
stack's registry.sslrootcert), REDIS_URL (cache, optional). Pods are read with kubectl when it is on PATH with a context; otherwise the cluster is reported unreachable.
With \`pulumi\` on PATH the config comes from \`pulumi config\`, else from Pulumi.<stack>.yaml.

It exits 5 when there is drift, so it can gate a pipeline.`,
  })
    .requiredOption("--stack <name>", "stack to inspect")
    .addOption(formatOption(["table", "json"]));
  return runScript<{ stack: string; format: Format }>(io, program, args, async (o) => {
    const view = await requireStackView(o.stack, io);
    const status = await stackStatus(view, io);
    const drift = status.orphans.length > 0 || status.models.some((m) => m.drift.length > 0);
    printResult(io, o.format, {
      json: { stack: o.stack, drift, ...status },
      text: () => formatStatus(view, status),
    });
    return drift ? EXIT.drift : EXIT.ok;
  });
}

if (require.main === module) main(run);
