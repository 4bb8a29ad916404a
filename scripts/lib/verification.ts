// The post-deploy checks shared by verify, local, promote and rollback: registry rows ready
// at the Service endpoint, a completion per model through the router within the budget,
// disabled models denied, /metrics answering. Each check is one row of the result table; a run
// that verified nothing (no ready row of an enabled model, a router of another environment, no
// checks at all) fails.
import {
  withRegistryClient,
  listEntries,
  type Environment,
  type RegistryEntry,
} from "@vllm-fleet/registry";
import { ROUTER_NAME } from "../../components/manifests";
import { EXIT, ScriptError, ScriptIo } from "./cli";
import { formatTable } from "./format";
import {
  expectedEndpoint,
  outputRouterUrl,
  registryCa,
  stackRegistryUrl,
  StackView,
} from "./stack";

/** A model as the stack says it should be. */
export interface ExpectedModel {
  /** Client-facing name (the `model` of requests and the registry row). */
  name: string;
  enabled: boolean;
  /** `host:port` the registry row must point at. */
  endpoint: string;
}

export interface VerifyTarget {
  environment: Environment;
  routerUrl: string;
  /** Base URL of the router's metrics port (ROUTER_METRICS_URL); unset: only checks they are not on the API port. */
  metricsUrl?: string;
  /** Registry database (read access is enough). */
  databaseUrl: string;
  /** CA certificate (PEM) of the registry's TLS. */
  registryCa?: string;
  /** Bearer key when the router authenticates. */
  apiKey?: string;
  /** The models to expect; omitted: every row of the environment as it stands. */
  models?: ExpectedModel[];
  /** Budget of one test completion (default 3000 ms). */
  completionTimeoutMs?: number;
}

export interface CheckResult {
  check: "router" | "environment" | "registry" | "coverage" | "completion" | "denied" | "metrics";
  target: string;
  ok: boolean;
  detail: string;
}

export const COMPLETION_BUDGET_MS = 3000;

interface HttpAnswer {
  status: number;
  body: string;
  ms: number;
}

async function http(
  url: string,
  init: RequestInit & { timeoutMs: number },
): Promise<HttpAnswer | { error: string; ms: number }> {
  const started = Date.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs) });
    const body = await res.text();
    return { status: res.status, body, ms: Date.now() - started };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const ms = Date.now() - started;
    if (err.name === "TimeoutError") return { error: `no answer within ${init.timeoutMs} ms`, ms };
    return { error: err.cause?.code ?? err.cause?.message ?? err.message, ms };
  }
}

/** `code: message` of an OpenAI-shaped error body, or the start of the body. */
function errorOf(body: string): { code?: string; text: string } {
  try {
    const e = (JSON.parse(body) as { error?: { code?: string; message?: string } }).error;
    if (e) return { code: e.code, text: `${e.code ?? "error"}: ${e.message ?? ""}` };
  } catch {
    // not JSON
  }
  return { text: body.slice(0, 120) };
}

function completionRequest(t: VerifyTarget, model: string): RequestInit & { timeoutMs: number } {
  return {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(t.apiKey ? { authorization: `Bearer ${t.apiKey}` } : {}),
    },
    body: JSON.stringify({
      model,
      messages: [{ role: "user", content: "Reply with one word: ok" }],
      max_tokens: 4,
    }),
    timeoutMs: t.completionTimeoutMs ?? COMPLETION_BUDGET_MS,
  };
}

/** The environment's registry rows, or why they could not be read. */
async function readRows(t: VerifyTarget): Promise<RegistryEntry[] | { error: string }> {
  try {
    return await withRegistryClient(
      t.databaseUrl,
      (db) => listEntries(db, { environment: t.environment }),
      { ca: t.registryCa },
    );
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Every row of the environment as the model it stands for. */
function modelsOfRows(rows: RegistryEntry[]): ExpectedModel[] {
  return rows.map((r) => ({
    name: r.modelName,
    enabled: r.status === "ready",
    endpoint: r.endpoint,
  }));
}

function checkRegistry(
  t: VerifyTarget,
  models: ExpectedModel[],
  rows: RegistryEntry[],
): CheckResult[] {
  return models.map((m): CheckResult => {
    const row = rows.find((r) => r.modelName === m.name);
    const at = { check: "registry" as const, target: m.name };
    if (!row)
      return {
        ...at,
        ok: false,
        detail: `no row in ${t.environment}: the model was never registered (pulumi up registers it once its pods are ready)`,
      };
    if (!m.enabled)
      return row.status === "disabled"
        ? { ...at, ok: true, detail: `disabled as configured (${row.disabledReason ?? ""})` }
        : { ...at, ok: false, detail: `row is ${row.status} but the stack disables the model` };
    if (row.status !== "ready")
      return {
        ...at,
        ok: false,
        detail: `row is ${row.status}${row.disabledReason ? ` (${row.disabledReason})` : ""}; expected ready`,
      };
    if (row.endpoint !== m.endpoint)
      return {
        ...at,
        ok: false,
        detail: `endpoint ${row.endpoint} does not match the stack's Service ${m.endpoint}`,
      };
    return { ...at, ok: true, detail: `ready at ${row.endpoint}` };
  });
}

/**
 * Something to verify: at least one enabled model with a ready row. Without one, the
 * completion checks would prove nothing (a stack without enabled models, an empty registry).
 */
function checkCoverage(
  t: VerifyTarget,
  models: ExpectedModel[],
  rows: RegistryEntry[],
): CheckResult {
  const at = { check: "coverage" as const, target: t.environment };
  const enabled = models.filter((m) => m.enabled);
  const ready = enabled.filter((m) =>
    rows.some((r) => r.modelName === m.name && r.status === "ready"),
  );
  if (!enabled.length)
    return { ...at, ok: false, detail: `nothing to verify: no enabled model in ${t.environment}` };
  if (!ready.length)
    return {
      ...at,
      ok: false,
      detail: `nothing to verify: none of the ${enabled.length} enabled models has a ready registry row in ${t.environment}`,
    };
  return {
    ...at,
    ok: true,
    detail: `${ready.length} of ${enabled.length} enabled models have ready rows`,
  };
}

async function checkCompletion(t: VerifyTarget, model: string): Promise<CheckResult> {
  const at = { check: "completion" as const, target: model };
  const budget = t.completionTimeoutMs ?? COMPLETION_BUDGET_MS;
  const a = await http(`${t.routerUrl}/v1/chat/completions`, completionRequest(t, model));
  if ("error" in a) return { ...at, ok: false, detail: `request failed: ${a.error}` };
  if (a.status !== 200)
    return { ...at, ok: false, detail: `HTTP ${a.status} ${errorOf(a.body).text}` };
  let choices = 0;
  try {
    choices = ((JSON.parse(a.body) as { choices?: unknown[] }).choices ?? []).length;
  } catch {
    // counted as no choices below
  }
  if (choices === 0) return { ...at, ok: false, detail: "HTTP 200 without choices" };
  if (a.ms > budget)
    return { ...at, ok: false, detail: `answered in ${a.ms} ms, over the ${budget} ms budget` };
  return { ...at, ok: true, detail: `HTTP 200 in ${a.ms} ms` };
}

async function checkDenied(t: VerifyTarget, model: string): Promise<CheckResult> {
  const at = { check: "denied" as const, target: model };
  const a = await http(`${t.routerUrl}/v1/chat/completions`, completionRequest(t, model));
  if ("error" in a) return { ...at, ok: false, detail: `request failed: ${a.error}` };
  const e = errorOf(a.body);
  return a.status === 403 && e.code === "model_disabled"
    ? { ...at, ok: true, detail: `HTTP 403 model_disabled` }
    : { ...at, ok: false, detail: `expected HTTP 403 model_disabled, got ${a.status} ${e.text}` };
}

/** The router is ready, and serves the environment being verified (its /readyz says which). */
async function checkRouter(t: VerifyTarget): Promise<CheckResult[]> {
  const a = await http(`${t.routerUrl}/readyz`, { timeoutMs: 3000 });
  const at = { check: "router" as const, target: t.routerUrl };
  if ("error" in a) return [{ ...at, ok: false, detail: `unreachable: ${a.error}` }];
  const ready: CheckResult =
    a.status === 200
      ? { ...at, ok: true, detail: "ready (/readyz 200)" }
      : { ...at, ok: false, detail: `/readyz answered ${a.status}: ${a.body.slice(0, 120)}` };
  let environment: unknown;
  try {
    environment = (JSON.parse(a.body) as { environment?: unknown }).environment;
  } catch {
    // not JSON: reported as no environment below
  }
  const env = { check: "environment" as const, target: t.routerUrl };
  const served: CheckResult =
    environment === t.environment
      ? { ...env, ok: true, detail: `serves ${t.environment}` }
      : {
          ...env,
          ok: false,
          detail:
            typeof environment === "string"
              ? `the router serves ${environment}, not ${t.environment}: wrong --router-url or port-forward`
              : `the router does not say which environment it serves (/readyz has no environment); expected ${t.environment}`,
        };
  return [ready, served];
}

/**
 * Metrics name every model, so the API port must not serve them (404); the metrics port, when
 * known, must answer with the router's metrics.
 */
async function checkMetrics(t: VerifyTarget): Promise<CheckResult[]> {
  const api = await http(`${t.routerUrl}/metrics`, { timeoutMs: 3000 });
  const atApi = { check: "metrics" as const, target: `${t.routerUrl}/metrics` };
  const results: CheckResult[] = [
    "error" in api
      ? { ...atApi, ok: false, detail: `unreachable: ${api.error}` }
      : api.status === 404
        ? { ...atApi, ok: true, detail: "not served to API clients (404)" }
        : {
            ...atApi,
            ok: false,
            detail: `HTTP ${api.status}: metrics must not be on the API port`,
          },
  ];
  if (!t.metricsUrl) return results;
  const a = await http(`${t.metricsUrl}/metrics`, { timeoutMs: 3000 });
  const at = { check: "metrics" as const, target: `${t.metricsUrl}/metrics` };
  if ("error" in a) results.push({ ...at, ok: false, detail: `unreachable: ${a.error}` });
  else if (a.status !== 200) results.push({ ...at, ok: false, detail: `HTTP ${a.status}` });
  else
    results.push(
      a.body.includes("router_requests_total")
        ? { ...at, ok: true, detail: `HTTP 200 in ${a.ms} ms` }
        : { ...at, ok: false, detail: "HTTP 200 but router_requests_total is missing" },
    );
  return results;
}

/** Runs every check; never throws (an unreachable part is a failed check). */
export async function verifyPlatform(t: VerifyTarget): Promise<CheckResult[]> {
  const results = await checkRouter(t);
  const rows = await readRows(t);
  const models = t.models ?? ("error" in rows ? [] : modelsOfRows(rows));
  if ("error" in rows)
    results.push({ check: "registry", target: "(database)", ok: false, detail: rows.error });
  else results.push(...checkRegistry(t, models, rows), checkCoverage(t, models, rows));
  for (const m of models)
    results.push(m.enabled ? await checkCompletion(t, m.name) : await checkDenied(t, m.name));
  results.push(...(await checkMetrics(t)));
  return results;
}

/** Every check passed, and there was at least one: zero checks verify nothing. */
export function passed(results: CheckResult[]): boolean {
  return results.length > 0 && results.every((r) => r.ok);
}

/** The result table with a one-line verdict. */
export function formatResults(results: CheckResult[]): string {
  const failed = results.filter((r) => !r.ok).length;
  const table = formatTable(
    ["CHECK", "TARGET", "RESULT", "DETAIL"],
    results.map((r) => [r.check, r.target, r.ok ? "PASS" : "FAIL", r.detail]),
  );
  const verdict = !results.length
    ? "✗ no checks ran: nothing was verified"
    : failed
      ? `✗ ${failed} of ${results.length} checks failed`
      : `✓ all ${results.length} checks passed`;
  return `${table}\n\n${verdict}`;
}

/**
 * A router base URL without trailing slashes; anything but an http(s) URL is a usage error
 * naming where it came from (`127.0.0.1:8080` is not a URL, and `localhost:8080` parses as
 * scheme `localhost:`, WHATWG URL standard: https://url.spec.whatwg.org/#scheme-state).
 */
export function routerBaseUrl(url: string, from: string): string {
  let scheme: string | undefined;
  try {
    scheme = new URL(url).protocol;
  } catch {
    // not a URL at all: reported below
  }
  if (scheme !== "http:" && scheme !== "https:")
    throw new ScriptError(
      `${from} must be an http:// or https:// URL such as http://127.0.0.1:8080 (got '${url}')`,
      EXIT.usage,
    );
  return url.replace(/\/+$/, "");
}

/** The router's metrics port from ROUTER_METRICS_URL, when set (validated like a router URL). */
export function metricsBaseUrl(env: ScriptIo["env"]): string | undefined {
  const url = env.ROUTER_METRICS_URL;
  return url === undefined ? undefined : routerBaseUrl(url, "ROUTER_METRICS_URL");
}

/** The models a stack expects, with the endpoints its Services have. */
export function expectedModels(view: StackView): ExpectedModel[] {
  return view.spec.models.map((m) => ({
    name: m.name,
    enabled: m.enabled,
    endpoint: expectedEndpoint(view, m.name),
  }));
}

/** Verifies a stack through `routerUrl` (or the stack's routerUrl output). */
export async function verifyStack(
  view: StackView,
  io: ScriptIo,
  routerUrl?: string,
  completionTimeoutMs?: number,
  routerFlag = "--router-url",
): Promise<CheckResult[]> {
  const url = routerUrl ?? outputRouterUrl(view);
  if (!url)
    throw new ScriptError(
      `no router URL for stack ${view.name}: pass ${routerFlag} <url> (e.g. http://127.0.0.1:8080 after \`kubectl -n ${view.spec.namespace} port-forward svc/${ROUTER_NAME} 8080:80\`)`,
      EXIT.usage,
    );
  return verifyPlatform({
    environment: view.spec.environment,
    routerUrl: routerBaseUrl(
      url,
      routerUrl === undefined ? `the routerUrl output of stack ${view.name}` : routerFlag,
    ),
    metricsUrl: metricsBaseUrl(io.env),
    databaseUrl: await stackRegistryUrl(view.name, io.env, view.pulumi),
    registryCa: registryCa(io.env, view.spec),
    apiKey: io.env.ROUTER_API_KEY,
    models: expectedModels(view),
    completionTimeoutMs,
  });
}
