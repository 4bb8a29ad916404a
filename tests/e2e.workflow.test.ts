// .github/workflows/e2e.yml, parsed: this machine has neither Docker nor the Pulumi CLI, so what
// the workflow runs is checked against what it runs on: the order of its steps, the flags it
// passes to our scripts (their own parsers), the images it builds against the ci stack, the
// names the cluster and the runner reach the registry by, and every `with:` input against the
// real action.yml (tests/fixtures/actions/<owner>/<repo>/action.yml, copied from upstream).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { SECRET_KEYS, loadStackSpec } from "../components/spec";
import { ROUTER_NAME, ROUTER_SERVICE_PORT } from "../components/manifests";
import { run as registryCli } from "../scripts/registry";
import type { ScriptRun } from "../scripts/lib/cli";
import { run as verify } from "../scripts/verify";

const ROOT = path.resolve(__dirname, "..");

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  "timeout-minutes"?: number;
}
interface Workflow {
  on: Record<string, unknown>;
  env: Record<string, string>;
  jobs: Record<string, { "timeout-minutes"?: number; steps: Step[] }>;
}

const workflow = parse(
  fs.readFileSync(path.join(ROOT, ".github/workflows/e2e.yml"), "utf8"),
) as Workflow;
const steps = workflow.jobs.e2e.steps;
const ci = loadStackSpec("ci");

/** Shell commands of a step: continuation lines joined, one command per line. */
const commands = (s: Step) =>
  (s.run ?? "")
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
const allCommands = steps.flatMap(commands);

/** Index of the first step matching; fails when there is none. */
function stepIndex(what: string, match: (s: Step) => boolean): number {
  const i = steps.findIndex(match);
  assert.ok(i >= 0, `the workflow has a step that ${what}`);
  return i;
}
const runs = (re: RegExp) => (s: Step) => commands(s).some((c) => re.test(c));

/** Words after `npm run <script> --` in every command that runs the script. */
function scriptInvocations(script: string): string[][] {
  return allCommands
    .map((c) => new RegExp(`npm run ${script} -- (.*)$`).exec(c)?.[1])
    .filter((a): a is string => a !== undefined)
    .map((a) => a.split(/\s+/));
}

/** A help text line that defines `flag` (not merely a longer flag starting with it). */
const definesFlag = (flag: string) => new RegExp(`\\s${flag}(?=[\\s,=]|$)`, "m");

async function helpOf(cli: ScriptRun, args: string[]): Promise<string> {
  let text = "";
  const code = await cli([...args, "--help"], {
    env: {},
    out: (s) => (text += `${s}\n`),
    err: (s) => (text += `${s}\n`),
  });
  assert.equal(code, 0, `${args.join(" ")} --help: ${text}`);
  return text;
}

describe("e2e workflow (kind, the ci stack, the real engine)", () => {
  it("runs on pull requests and by hand, with a timeout on the job and every step that can hang", () => {
    assert.ok("pull_request" in workflow.on);
    assert.ok("workflow_dispatch" in workflow.on);
    assert.ok((workflow.jobs.e2e["timeout-minutes"] ?? 0) > 0);
    for (const s of steps) {
      if (s.uses?.startsWith("actions/")) continue; // checkout and setup-node time out on their own
      assert.ok((s["timeout-minutes"] ?? 0) > 0, `step '${s.name ?? s.uses}' has timeout-minutes`);
    }
  });

  it("orders cluster, services, images, up, port-forward, verify and the round trip; destroys always, last", () => {
    const order = [
      stepIndex("installs dependencies", runs(/^npm ci\b/)),
      stepIndex(
        "creates the kind cluster",
        (s) => s.uses?.startsWith("helm/kind-action@") ?? false,
      ),
      stepIndex("starts PostgreSQL", runs(/docker run .*--name vllm-registry-pg/)),
      stepIndex("pushes the images", runs(/^docker push /)),
      stepIndex("installs the Pulumi CLI", (s) => s.uses?.startsWith("pulumi/actions@") ?? false),
      stepIndex("logs in locally", runs(/^pulumi login --local$/)),
      stepIndex("brings the registry stack up", runs(/^pulumi -C registry-stack up /)),
      stepIndex("brings the ci stack up", runs(/^pulumi up --stack ci /)),
      stepIndex("port-forwards the router", runs(/kubectl .*port-forward/)),
      stepIndex("verifies", runs(/^npm run verify -- /)),
      stepIndex("disables and enables a model", runs(/^npm run registry -- enable /)),
      stepIndex("destroys", runs(/^pulumi destroy --stack ci /)),
    ];
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      `steps in order: ${order.map((i) => steps[i].name ?? steps[i].uses).join(" -> ")}`,
    );
    const destroy = steps[order.at(-1)!];
    assert.equal(destroy.if, "always()", "destroy runs even when an earlier step failed");
    assert.equal(order.at(-1), steps.length - 1, "destroy is the last step");
    const c = commands(destroy);
    const env = c.findIndex((x) => x.startsWith("pulumi destroy --stack ci"));
    const reg = c.findIndex((x) => x.startsWith("pulumi -C registry-stack destroy"));
    assert.ok(env >= 0 && reg > env, "the environment stack goes before the registry it uses");
    assert.ok(
      c.findIndex((x) => x.startsWith("pulumi -C registry-stack state unprotect --all")) < reg,
      "the registry's protected database is unprotected first (throwaway stack)",
    );
    // The registry stack always comes first, and the ci stack reads exactly that one: a DIY
    // (--local) backend has one organization, literally `organization`, so its stacks are
    // referenced as organization/<project>/<stack> (pulumi/pulumi pkg/backend/diy).
    const registryUp = steps.find(runs(/^pulumi -C registry-stack up /))!;
    assert.equal(registryUp.if, undefined, "the registry stack is not optional");
    assert.ok(commands(registryUp).includes("pulumi -C registry-stack stack init ci"));
    assert.match(registryUp.run!, /config set --stack ci --secret adminPassword$/m);
    assert.equal(loadStackSpec("ci").registry.stack, "organization/vllm-registry/ci");
  });

  it("brings the ci stack up with the policy pack and its config, secrets on stdin only", () => {
    const up = allCommands.find((c) => c.startsWith("pulumi up --stack ci "))!;
    assert.match(up, / --yes\b/);
    const pack = /--policy-pack (\S+)/.exec(up)?.[1];
    const packConfig = /--policy-pack-config (\S+)/.exec(up)?.[1];
    assert.ok(
      fs.existsSync(path.join(ROOT, pack!, "PulumiPolicy.yaml")),
      `${pack} is a policy pack`,
    );
    assert.equal(packConfig, "policies/config/ci.json");
    assert.ok(fs.existsSync(path.join(ROOT, packConfig!)));
    assert.ok(allCommands.includes("pulumi stack init ci"));
    assert.ok(fs.existsSync(path.join(ROOT, "Pulumi.ci.yaml")));
    // `pulumi config set` reads the value from stdin when none is given
    // (https://www.pulumi.com/docs/iac/cli/commands/pulumi_config_set/).
    const secretSets = allCommands.filter((c) => /config set .*--secret/.test(c));
    assert.ok(secretSets.length >= 1);
    for (const c of secretSets) {
      assert.match(c, /^printf '%s' "\$\w+" \| pulumi .*config set .*--secret (\S+)$/, c);
      const key = /--secret (\S+)$/.exec(c)![1];
      assert.ok(SECRET_KEYS.includes(key), `${key} is a secret key of the program`);
    }
    // The registry password is generated per run and masked in the logs.
    const services = steps.find(runs(/docker run .*--name vllm-registry-pg/))!;
    assert.match(
      services.run!,
      /password="\$\(openssl rand -hex \d+\)"\n\s*echo "::add-mask::\$password"/,
    );
    assert.doesNotMatch(services.run!, /POSTGRES_PASSWORD=[^"$]/, "no literal password");
  });

  it("passes our scripts only flags their parsers define", async () => {
    const verifyCalls = scriptInvocations("verify");
    assert.ok(verifyCalls.length >= 1);
    const verifyHelp = await helpOf(verify, []);
    for (const args of verifyCalls) {
      for (const flag of args.filter((a) => a.startsWith("--")))
        assert.match(verifyHelp, definesFlag(flag), `verify ${flag}`);
      assert.equal(args[args.indexOf("--stack") + 1], "ci");
    }
    // No superuser DATABASE_URL anywhere: verify and the registry CLI read the ci stack's
    // registryUrl output, its writer role under row-level security, as production does.
    assert.ok(!allCommands.some((c) => /DATABASE_URL/.test(c)), "no step sets DATABASE_URL");
    for (const env of [workflow.env, ...steps.map((st) => st.env ?? {})])
      assert.ok(!("DATABASE_URL" in env));
    const registryCalls = scriptInvocations("registry");
    assert.deepEqual(
      registryCalls.map((a) => a[0]),
      ["disable", "enable"],
    );
    for (const [command, ...args] of registryCalls) {
      const help = await helpOf(registryCli, [command]);
      for (const flag of args.filter((a) => a.startsWith("--")))
        assert.match(help, definesFlag(flag), `registry ${command} ${flag}`);
      assert.equal(args[args.indexOf("--environment") + 1], ci.environment);
      assert.equal(args[args.indexOf("--stack") + 1], "ci", `registry ${command} --stack ci`);
    }
    assert.match((await helpOf(registryCli, ["disable"])).replace(/\s+/g, " "), /--reason <text>/);
  });

  it("round-trips a model of the ci stack through the router with a bound", () => {
    const step = steps.find(runs(/^npm run registry -- disable /))!;
    assert.ok(
      ci.models.some((m) => m.name === step.env?.MODEL),
      `${step.env?.MODEL} is a ci model`,
    );
    assert.ok(Number(step.env?.BOUND_SECONDS) > 0);
    const c = commands(step);
    const at = (re: RegExp) => c.findIndex((x) => re.test(x));
    assert.ok(at(/registry -- disable/) < at(/^answers 403 model_disabled$/));
    assert.ok(at(/^answers 403 model_disabled$/) < at(/registry -- enable/));
    assert.ok(at(/registry -- enable/) < at(/^answers 200 chat.completion$/));
    assert.match(step.run!, /"\$ROUTER_URL\/v1\/chat\/completions"/);
  });

  it("builds and pushes exactly the images the ci stack deploys", () => {
    const builds = allCommands
      .map((c) => /^docker build -f (\S+) -t (\S+) \.$/.exec(c))
      .filter((m): m is RegExpExecArray => m !== null)
      .map(([, file, tag]) => ({ file, tag }));
    for (const b of builds) assert.ok(fs.existsSync(path.join(ROOT, b.file)), b.file);
    const tagOf = (file: string) => builds.find((b) => b.file === file)?.tag;
    // The tag the program itself builds the router under (components/resources/router.ts).
    const routerTag = `${ci.router.imageRegistry}/${ROUTER_NAME}:${ci.environment}`;
    assert.equal(tagOf("router/Dockerfile"), routerTag);
    for (const m of ci.models) assert.equal(tagOf("scripts/simulator/Dockerfile"), m.image, m.name);
    for (const b of builds)
      assert.ok(allCommands.includes(`docker push ${b.tag}`), `${b.tag} pushed`);
    // router.image is set to the pushed router's registry digest (config.ts requires a digest).
    assert.ok(
      allCommands.includes(
        `echo "ROUTER_IMAGE=$(docker inspect --format '{{index .RepoDigests 0}}' ${routerTag})" >> "$GITHUB_ENV"`,
      ),
    );
    assert.ok(
      allCommands.includes(`pulumi config set --stack ci --path router.image "$ROUTER_IMAGE"`),
    );
    // Pushed to kind-action's local registry, which the nodes pull from by the same name.
    const kind = steps.find((s) => s.uses?.startsWith("helm/kind-action@"))!;
    assert.equal(kind.with?.registry, true);
    const registry = `${kind.with?.registry_name}:${kind.with?.registry_port}`;
    for (const b of builds) assert.ok(b.tag.startsWith(`${registry}/`), b.tag);
    assert.ok(ci.router.imageRegistry === registry);
  });

  it("starts the registry and cache under the names and ports the ci stack uses, on the kind network", () => {
    const pg = allCommands.find((c) => /docker run .*--name vllm-registry-pg/.test(c))!;
    const redis = allCommands.find((c) => /docker run .*--name vllm-registry-redis/.test(c))!;
    const redisUrl = new URL(ci.redis.url!);
    assert.equal(/--name (\S+)/.exec(pg)![1], ci.registry.host);
    assert.equal(/--name (\S+)/.exec(redis)![1], redisUrl.hostname);
    for (const [c, port] of [
      [pg, ci.registry.port],
      [redis, Number(redisUrl.port)],
    ] as const) {
      // kind's nodes sit on the `kind` network; Docker's DNS there resolves container names,
      // and kind's node entrypoint forwards pods' DNS to it (kubernetes-sigs/kind
      // images/base/files/usr/local/bin/entrypoint, enable_network_magic).
      assert.match(c, /--network kind\b/);
      assert.match(c, new RegExp(`-p 127\\.0\\.0\\.1:${port}:${port}\\b`));
    }
    // The runner (where Pulumi writes the registry) resolves the same names to the published ports.
    assert.ok(
      allCommands.includes(
        `echo "127.0.0.1 ${ci.registry.host} ${redisUrl.hostname}" | sudo tee -a /etc/hosts`,
      ),
    );
    // The router is port-forwarded from the stack's namespace and Service.
    const forward = allCommands.find((c) => /port-forward/.test(c))!;
    assert.match(
      forward,
      new RegExp(
        `^kubectl -n ${ci.namespace} port-forward svc/${ROUTER_NAME} 8080:${ROUTER_SERVICE_PORT} `,
      ),
    );
    assert.equal(workflow.env.ROUTER_URL, "http://127.0.0.1:8080");
  });

  it("passes every action only inputs its action.yml declares, at the version checked", () => {
    const used = steps.filter((s) => s.uses);
    assert.deepEqual(used.map((s) => s.uses!.split("@")[0]).sort(), [
      "actions/checkout",
      "actions/setup-node",
      "helm/kind-action",
      "pulumi/actions",
    ]);
    for (const s of used) {
      const [repo, ref] = s.uses!.split("@");
      const file = path.join(__dirname, "fixtures/actions", repo, "action.yml");
      const text = fs.readFileSync(file, "utf8");
      const tag = /\(tag (v[\d.]+)\)/.exec(text)![1];
      // `@v1.14.0` must be the tag copied; `@v6` any release of that major.
      assert.ok(ref === tag || tag.startsWith(`${ref}.`), `${s.uses} matches the copied ${tag}`);
      const inputs = Object.keys((parse(text) as { inputs: object }).inputs);
      for (const key of Object.keys(s.with ?? {}))
        assert.ok(inputs.includes(key), `${repo} has no input '${key}' (has ${inputs.join(", ")})`);
    }
    // pulumi/actions without `command` only installs the CLI (its README, "Installation Only").
    assert.equal(
      steps.find((s) => s.uses?.startsWith("pulumi/actions@"))?.with?.command,
      undefined,
    );
  });
});
