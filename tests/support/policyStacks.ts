// Runs a real stack under mocks and hands its resources to the policy evaluator, with the
// resource options the engine would pass. The SDK's mocks drop options (customTimeouts) before
// calling newResource, so they are read from the registration request itself.
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { EvaluatedResource } from "../../policies/evaluate";
import { STACK_ENV_VARS } from "../../policies/rules/stack";
import { ProgramRun, RunOptions, runProgram } from "./program";

interface TimeoutsRequest {
  getType(): string;
  getName(): string;
  getCustomtimeouts():
    { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
}

/** Custom timeouts seen per `type::name` during the current run. */
const timeouts = new Map<string, { create: string; update: string; delete: string }>();
let installed = false;

function recordTimeouts() {
  if (installed) return;
  installed = true;
  const proto = MockMonitor.prototype as unknown as {
    registerResource(req: TimeoutsRequest, callback: unknown): Promise<void>;
  };
  const original = proto.registerResource;
  proto.registerResource = function (req, callback) {
    const ct = req.getCustomtimeouts();
    if (ct) {
      timeouts.set(`${req.getType()}::${req.getName()}`, {
        create: ct.getCreate(),
        update: ct.getUpdate(),
        delete: ct.getDelete(),
      });
    }
    return original.call(this, req, callback);
  };
}

/** Seconds of a Pulumi (Go) duration such as "25m", "1h30m" or "90s"; 0 when empty. */
export function durationSeconds(d: string): number {
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  for (const [, n, u] of d.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) total += Number(n) * unit[u];
  return total;
}

/** Runs `stack` under mocks; its resources as the policy engine would see them. */
export async function stackForPolicies(
  stack: string,
  options?: RunOptions,
): Promise<{ run: ProgramRun; resources: EvaluatedResource[] }> {
  recordTimeouts();
  timeouts.clear();
  const run = await runProgram(stack, options);
  const resources = run.resources.map((r) => {
    const t = timeouts.get(`${r.type}::${r.name}`);
    return {
      type: r.type,
      name: r.name,
      urn: r.urn,
      inputs: r.inputs,
      opts: t
        ? {
            customTimeouts: {
              createSeconds: durationSeconds(t.create),
              updateSeconds: durationSeconds(t.update),
              deleteSeconds: durationSeconds(t.delete),
            },
          }
        : undefined,
    };
  });
  return { run, resources };
}

/**
 * Runs `fn` with the stack set the way the engine starts a policy pack for `stack`: through the
 * Node.js language host (PULUMI_NODEJS_STACK, current CLIs) or, with `variable`, as older CLIs
 * did (PULUMI_STACK). See STACK_ENV_VARS in policies/rules/stack.ts.
 */
export async function withPulumiStack<T>(
  stack: string,
  fn: () => Promise<T>,
  variable: (typeof STACK_ENV_VARS)[number] = "PULUMI_NODEJS_STACK",
): Promise<T> {
  const before = Object.fromEntries(STACK_ENV_VARS.map((v) => [v, process.env[v]]));
  for (const v of STACK_ENV_VARS) delete process.env[v];
  process.env[variable] = stack;
  try {
    return await fn();
  } finally {
    for (const v of STACK_ENV_VARS) {
      if (before[v] === undefined) delete process.env[v];
      else process.env[v] = before[v];
    }
  }
}
