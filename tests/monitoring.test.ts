// Alerts and dashboard generated from the three real stacks: schema-valid, per-environment
// thresholds, runbooks that exist, and only metrics the router, vLLM and kube-state-metrics export.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import {
  ALERT_THRESHOLDS,
  LISTEN_STALE_SECONDS,
  RUNBOOKS,
  buildPrometheusRule,
  Panel,
  buildDashboard,
  buildDashboardConfigMap,
  buildRouterObjects,
  PICKED_POD_LABEL,
  ALLOWED_SERIES,
  HISTOGRAMS,
  VLLM_METRICS,
  seriesIn,
} from "../components/manifests";
import { ROUTER_METRICS } from "@vllm-fleet/router/contract";
import { ENVIRONMENTS, loadStackSpec } from "../components/spec";
import { RouterMetrics } from "../router/src/metrics";
import { PG_TIMEOUTS } from "@vllm-fleet/registry";
import { LISTEN_RETRY_MAX_MS, LISTEN_TIMEOUT_MS } from "../router/src/registryListener";
import { pacedSnapshot, SimulatorMetrics } from "../scripts/simulator/metrics";

const README = fs.readFileSync(path.resolve(__dirname, "../README.md"), "utf8");

/** GitHub's anchor of a Markdown heading. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, "")
    .replace(/ /g, "-");
const README_ANCHORS = new Set([...README.matchAll(/^#{1,6} +(.+)$/gm)].map((m) => anchorOf(m[1])));

/** Only exported series, balanced brackets, nothing left unfilled by the builder. */
function assertKnownSeries(expr: string, where: string) {
  const unknown = seriesIn(expr).filter((s) => !ALLOWED_SERIES.has(s));
  assert.deepEqual(unknown, [], `${where} uses series nobody exports: ${expr}`);
  assert.doesNotMatch(expr, /undefined|NaN|=~""/, `${where}: ${expr}`);
  const stack: string[] = [];
  const pairs: Record<string, string> = { ")": "(", "]": "[", "}": "{" };
  for (const ch of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ("([{".includes(ch)) stack.push(ch);
    else if (ch in pairs) assert.equal(stack.pop(), pairs[ch], `${where} unbalanced: ${expr}`);
  }
  assert.deepEqual(stack, [], `${where} unbalanced: ${expr}`);
}

describe("metric names", () => {
  it("the router registers exactly its contract's metrics, the router_ series alerts and panels may query", async () => {
    const names = (await new RouterMetrics().registry.getMetricsAsJSON()).map((m) => m.name);
    const routerOwn = names.filter((n) => n.startsWith("router_"));
    assert.deepEqual(routerOwn.sort(), Object.values(ROUTER_METRICS).sort());
  });

  it("lists series the vLLM simulator exposes like vLLM does", () => {
    const text = new SimulatorMetrics("m").render(pacedSnapshot(1));
    for (const name of Object.values(VLLM_METRICS)) {
      const series = HISTOGRAMS.includes(name) ? `${name}_bucket` : name;
      assert.match(text, new RegExp(`^${series}\\{`, "m"), name);
    }
  });

  it("finds the series of a PromQL expression, not its functions or labels", () => {
    assert.deepEqual(
      seriesIn(
        'histogram_quantile(0.95, sum by (model, le) (rate(foo_bucket{a="b:c"}[5m]))) > 2 and on() max(vllm:x) > 0',
      ),
      ["foo_bucket", "vllm:x"],
    );
  });
});

describe("alerts (PrometheusRule)", () => {
  for (const stack of ENVIRONMENTS) {
    describe(stack, () => {
      const spec = loadStackSpec(stack);
      const rule = buildPrometheusRule(spec);
      const alerts = (rule.spec.groups ?? []).flatMap((g) => g.rules ?? []);

      it("validates against the prometheus-operator schema", () => {
        new PrometheusRule(rule).validate();
        assert.equal(rule.metadata.namespace, spec.namespace);
        assert.equal(rule.metadata.labels?.release, spec.monitoring.prometheusRelease);
      });

      it("has every alert, per model where availability is per model", () => {
        const names = new Set(alerts.map((a) => a.alert));
        assert.deepEqual([...names].sort(), Object.keys(RUNBOOKS).sort());
        const down = alerts.filter((a) => a.alert === "VllmModelDown");
        assert.deepEqual(
          down.map((a) => a.labels?.model),
          spec.models.map((m) => m.name),
        );
      });

      it("uses only exported metrics", () => {
        for (const a of alerts) assertKnownSeries(String(a.expr), `${stack} ${a.alert}`);
      });

      it("links each alert to a runbook section of the README", () => {
        for (const a of alerts) {
          const url = a.annotations?.runbook_url ?? "";
          const anchor = url.split("#")[1];
          assert.equal(url, `README.md#${RUNBOOKS[a.alert as keyof typeof RUNBOOKS]}`);
          assert.ok(README_ANCHORS.has(anchor), `README.md has no section for #${anchor}`);
        }
      });

      it("uses this environment's thresholds and severities", () => {
        const t = ALERT_THRESHOLDS[spec.environment];
        const byName = (n: string) => alerts.find((a) => a.alert === n)!;
        assert.equal(byName("RouterHighErrorRate").labels?.severity, t.page);
        assert.equal(byName("VllmQueueDepth").labels?.severity, t.ticket);
        assert.match(String(byName("VllmQueueDepth").expr), new RegExp(`> ${t.queueDepth}$`));
        assert.match(
          String(byName("RouterHighLatency").expr),
          new RegExp(`> ${t.ttfbP95Seconds}$`),
        );
        for (const a of alerts) {
          assert.equal(a.labels?.environment, spec.environment);
          assert.ok(a.annotations?.summary && a.annotations.description, a.alert);
        }
      });
    });
  }

  it("pages in production, warns in staging and informs in development", () => {
    const severities = (stack: string) =>
      new Set(
        (buildPrometheusRule(loadStackSpec(stack)).spec.groups ?? [])
          .flatMap((g) => g.rules ?? [])
          .map((r) => r.labels?.severity),
      );
    assert.deepEqual([...severities("production")].sort(), ["critical", "warning"]);
    assert.deepEqual([...severities("staging")], ["warning"]);
    assert.deepEqual([...severities("development")], ["info"]);
  });

  it("gives a single-replica model its startup budget before declaring it down", () => {
    const spec = loadStackSpec("staging");
    const qwen = spec.models.find((m) => m.name === "qwen2-5-32b-instruct-awq")!;
    const down = (buildPrometheusRule(spec).spec.groups ?? [])
      .flatMap((g) => g.rules ?? [])
      .find((r) => r.alert === "VllmModelDown" && r.labels?.model === qwen.name);
    assert.equal(down?.for, `${qwen.startupBudgetMinutes + 5}m`);
  });

  it("tickets a router whose LISTEN connection stays silent longer than replacing it takes", async () => {
    for (const stack of ENVIRONMENTS) {
      const spec = loadStackSpec(stack);
      const t = ALERT_THRESHOLDS[spec.environment];
      const stale = (buildPrometheusRule(spec).spec.groups ?? [])
        .flatMap((g) => g.rules ?? [])
        .find((r) => r.alert === "RouterRegistryListenStale");
      assert.equal(
        stale?.expr,
        `max by (pod) (${ROUTER_METRICS.listenAge}{namespace="${spec.namespace}"}) > ${LISTEN_STALE_SECONDS}`,
      );
      assert.equal(stale?.labels?.severity, t.ticket);
      assert.equal(stale?.for, t.for);
    }
    // A healthy router replaces a silent connection within: the timeout, the longest backoff, a
    // connect timeout and a LISTEN timeout. Only a router that cannot do so reaches the threshold.
    const replaceMs = LISTEN_TIMEOUT_MS + LISTEN_RETRY_MAX_MS + PG_TIMEOUTS.connectionTimeoutMillis;
    assert.ok(LISTEN_STALE_SECONDS * 1000 > replaceMs + LISTEN_TIMEOUT_MS);
    // The gauge the alert reads is the age of the listener's last proof of life, in seconds.
    const age = async (silentMs: number) => {
      const m = new RouterMetrics();
      m.listenProofAt = () => Date.now() - silentMs;
      const json = await m.registry.getMetricsAsJSON();
      return Number(json.find((x) => x.name === ROUTER_METRICS.listenAge)?.values[0]?.value);
    };
    assert.ok((await age(LISTEN_TIMEOUT_MS)) < LISTEN_STALE_SECONDS);
    assert.ok((await age((LISTEN_STALE_SECONDS + 1) * 1000)) > LISTEN_STALE_SECONDS);
  });

  it("escapes served model names used as regular expressions", () => {
    const rule = buildPrometheusRule(loadStackSpec("production"));
    const kv = (rule.spec.groups ?? [])
      .flatMap((g) => g.rules ?? [])
      .find((r) => r.alert === "VllmKvCachePressure");
    assert.match(
      String(kv?.expr),
      /model_name=~"llama-3\\\\.1-8b-instruct\|qwen2\\\\.5-32b-instruct-awq"/,
    );
  });
});

describe("dashboard (Grafana ConfigMap)", () => {
  for (const stack of ENVIRONMENTS) {
    it(`${stack}: a valid ConfigMap for the sidecar with a complete dashboard`, () => {
      const spec = loadStackSpec(stack);
      const cm = buildDashboardConfigMap(spec);
      new ConfigMap(cm).validate();
      assert.equal(cm.metadata.labels?.grafana_dashboard, "1");
      const files = Object.values(cm.data ?? {});
      assert.equal(files.length, 1);
      const dashboard = JSON.parse(files[0]) as ReturnType<typeof buildDashboard>;
      assert.deepEqual(dashboard, buildDashboard(spec));
      const variables = dashboard.templating.list.map((v) => v.name);
      assert.ok(variables.includes("model") && variables.includes("environment"), `${variables}`);
      const model = dashboard.templating.list.find((v) => v.name === "model");
      assert.deepEqual(
        model?.options?.map((o) => o.value),
        spec.models.map((m) => m.name),
      );
      const panels = dashboard.panels as Panel[];
      const titles = panels.map((p) => p.title);
      for (const t of [
        "Availability",
        "Request rate",
        "Request latency",
        "Time to first token",
        "Errors",
        "GPU KV-cache use",
        "Queue",
        "Registry listener",
        "Endpoint picks",
        "Requests in flight per pod",
      ]) {
        assert.ok(titles.includes(t), `panel ${t}`);
      }
      assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, "unique panel ids");
      for (const p of panels) {
        assert.ok(p.targets.length > 0, p.title);
        for (const target of p.targets) assertKnownSeries(target.expr, `panel ${p.title}`);
      }
    });
  }
});

describe("dashboard: endpoint-aware routing panels", () => {
  const spec = loadStackSpec("staging");
  const panel = (title: string) =>
    (buildDashboard(spec).panels as Panel[]).find((p) => p.title === title)!;

  it("shows router_endpoint_picks_total by model and reason", () => {
    const [t] = panel("Endpoint picks").targets;
    assert.deepEqual(seriesIn(t.expr), [ROUTER_METRICS.endpointPicks]);
    assert.match(t.expr, /sum by \(model, reason\)/);
    assert.match(t.legendFormat, /\{\{reason\}\}/);
  });

  // Prometheus scrape_config honor_labels (default false): a scraped label that clashes with a
  // target label is renamed exported_<label>. The prometheus-operator gives every target of a
  // ServiceMonitor the label `pod` (the router pod), so the router's own `pod` label (the model
  // pod) is stored as exported_pod; grouping by `pod` would show router pods instead.
  it("shows per-pod in-flight requests by the model pod, stored as exported_pod (honor_labels off)", () => {
    const sm = buildRouterObjects(spec, {
      image: "r@sha256:" + "0".repeat(64),
      registrySecretName: "s",
    }).serviceMonitor!;
    assert.ok(sm.spec.endpoints.every((e) => !e.honorLabels));
    const [t] = panel("Requests in flight per pod").targets;
    assert.deepEqual(seriesIn(t.expr), [ROUTER_METRICS.podInflight]);
    assert.equal(PICKED_POD_LABEL, "exported_pod");
    assert.match(t.expr, /sum by \(model, exported_pod\)/);
    assert.match(t.legendFormat, /\{\{exported_pod\}\}/);
  });
});
