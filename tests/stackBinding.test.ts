// The stack name decides the environment: a stack file cannot declare itself another environment
// (and so switch its guardrails off) in the program, the offline tools or the policy pack.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import {
  parseStackConfig,
  PROJECT_DIR,
  StackConfigError,
  stackEnvironment,
  loadStackSpec,
} from "../components/spec";
import { evaluatePolicies, EvaluatedResource } from "../policies/evaluate";
import { packConfig } from "../policies/packConfig";
import { rules } from "../policies/rules";
import { loadStackView } from "../scripts/lib/stack";
import { PulumiCli } from "../scripts/lib/pulumi";
import { fleet } from "./support/policyFixtures";
import { STACK_ENV_VARS } from "../policies/rules/stack";
import { withPulumiStack } from "./support/policyStacks";
import { ProgramError, runProgram } from "./support/program";
import { createPulumiStandIn } from "./support/pulumiStandIn";
import { STACK_FILES, rawStackFile } from "./support/stackFiles";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const production = (): Raw => rawStackFile("production");

function problems(raw: Raw, stack: string): string[] {
  try {
    parseStackConfig(raw, { stack });
  } catch (e) {
    assert.ok(e instanceof StackConfigError, String(e));
    return e.problems;
  }
  return [];
}

/** The fixture fleet (production) relabelled as another environment's objects. */
function relabelled(environment: string): EvaluatedResource[] {
  const text = JSON.stringify(fleet())
    .replaceAll('"vllm.ai/environment":"production"', `"vllm.ai/environment":"${environment}"`)
    .replaceAll('"environment":"production"', `"environment":"${environment}"`);
  return JSON.parse(text) as EvaluatedResource[];
}

describe("environment bound to the stack", () => {
  it("maps every stack file to an environment, and ci to development", () => {
    for (const stack of STACK_FILES) assert.ok(stackEnvironment(stack), stack);
    assert.equal(stackEnvironment("ci"), "development");
    assert.equal(stackEnvironment("acme-ml/production"), "production", "org-qualified name");
    assert.equal(stackEnvironment("dev-alice"), undefined);
    assert.equal(stackEnvironment("constructor"), undefined, "no prototype keys");
  });

  it("config: production's stack file saying staging is refused, and production's rules still apply", () => {
    const raw = production();
    raw.environment = "staging";
    raw.capacity["llama-3-1-8b-instruct"].replicas = 1;
    const found = problems(raw, "production");
    assert.ok(
      found.includes(
        "environment: is 'staging' but stack 'production' is the production environment (the stack name decides it, with its guardrails); set environment: production",
      ),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) =>
        /^capacity\.llama-3-1-8b-instruct\.replicas: production needs at least 2/.test(p),
      ),
      found.join("\n"),
    );
    assert.deepEqual(problems(production(), "acme-ml/production"), []);
  });

  it("config: a stack with no environment is refused, naming the fix", () => {
    const [p] = problems(production(), "dev-alice");
    assert.match(
      p,
      /^environment: stack 'dev-alice' has no environment; name the stack after one \(development, staging, production, ci\) or add it to STACK_ENVIRONMENTS/,
    );
  });

  it("program: pulumi up of production with environment staging fails before creating anything", async () => {
    await assert.rejects(
      runProgram("production", { overrides: { environment: "staging" } }),
      (e: unknown) => {
        assert.ok(e instanceof ProgramError, String(e));
        assert.match(
          e.message,
          /environment: is 'staging' but stack 'production' is the production environment/,
        );
        assert.deepEqual(e.resources, [], "nothing registered");
        return true;
      },
    );
  });

  it("offline tools (render, local, verify, promote, rollback) read stack files bound to their name", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-binding-"));
    try {
      fs.copyFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
      const raw = production();
      fs.writeFileSync(
        path.join(dir, "Pulumi.production.yaml"),
        stringify({
          config: Object.fromEntries(
            Object.entries({ ...raw, environment: "staging" }).map(([k, v]) => [
              `vllm-fleet:${k}`,
              v,
            ]),
          ),
        }),
      );
      assert.throws(
        () => loadStackSpec("production", { dir }),
        /environment: is 'staging' but stack 'production'/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("operator scripts reading a stack through the pulumi CLI apply the same rule", async () => {
    const standIn = createPulumiStandIn();
    try {
      standIn.setConfig("production", { ...production(), environment: "staging" });
      await assert.rejects(
        loadStackView("production", new PulumiCli({ env: standIn.env })),
        /environment: is 'staging' but stack 'production'/,
      );
    } finally {
      standIn.remove();
    }
  });
});

describe("policy pack: stack-environment", () => {
  it("every stack has its pack config, for the environment its name maps to", () => {
    for (const stack of STACK_FILES) {
      const file = path.join(PROJECT_DIR, "policies", "config", `${stack}.json`);
      assert.deepEqual(
        JSON.parse(fs.readFileSync(file, "utf8")),
        packConfig(stackEnvironment(stack)!),
        file,
      );
    }
  });

  it("passes the production fleet run as stack production with production's config", async () => {
    const found = await withPulumiStack("production", () =>
      evaluatePolicies(rules, fleet(), packConfig("production")),
    );
    assert.deepEqual(found, []);
  });

  it("fails objects labelled staging in stack production, whatever config the pack is given", async () => {
    const found = await withPulumiStack("production", () =>
      evaluatePolicies(rules, relabelled("staging"), packConfig("staging")),
    );
    const mine = found.filter((d) => d.policy === "stack-environment");
    assert.ok(mine.every((d) => d.enforcementLevel === "mandatory"));
    assert.ok(
      mine.some(
        (d) =>
          d.message ===
          "the policy config is staging's but stack 'production' is production; run with --policy-pack-config policies/config/production.json",
      ),
      mine.map((d) => d.message).join("\n"),
    );
    assert.ok(
      mine.some((d) =>
        /^Deployment llama-3-1-8b-instruct-production: is labelled vllm\.ai\/environment=staging but this stack is production/.test(
          d.message,
        ),
      ),
      mine.map((d) => d.message).join("\n"),
    );
    assert.ok(
      mine.some((d) => /is registered for staging but this stack is production/.test(d.message)),
      mine.map((d) => d.message).join("\n"),
    );
  });

  // Current CLIs start Node.js packs through the language host (PULUMI_NODEJS_STACK); older ones
  // set PULUMI_STACK. The pack must learn its stack either way.
  for (const variable of STACK_ENV_VARS)
    it(`learns the stack from ${variable}`, async () => {
      const found = await withPulumiStack(
        "production",
        () => evaluatePolicies(rules, fleet(), packConfig("development")),
        variable,
      );
      assert.ok(
        found.some(
          (d) =>
            d.policy === "stack-environment" && /stack 'production' is production/.test(d.message),
        ),
        `${variable}: ${found.map((d) => d.message).join("\n")}`,
      );
    });

  it("fails development's config (advisory rules) on stack production", async () => {
    const found = await withPulumiStack("production", () =>
      evaluatePolicies(rules, fleet(), packConfig("development")),
    );
    assert.deepEqual(
      found.map((d) => [d.policy, d.enforcementLevel]),
      [["stack-environment", "mandatory"]],
    );
  });

  it("fails a stack the pack has no environment for", async () => {
    const found = await withPulumiStack("dev-alice", () =>
      evaluatePolicies(rules, fleet(), packConfig("development")),
    );
    assert.ok(
      found.some(
        (d) =>
          d.policy === "stack-environment" &&
          /stack 'dev-alice' has no environment/.test(d.message),
      ),
    );
  });

  it("offline, without PULUMI_STACK, checks labels against the pack config's environment", async () => {
    const found = await evaluatePolicies(rules, relabelled("staging"), packConfig("production"));
    assert.ok(
      found.some(
        (d) =>
          d.policy === "stack-environment" &&
          /labelled vllm\.ai\/environment=staging but this stack is production/.test(d.message),
      ),
    );
  });
});
