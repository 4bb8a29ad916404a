// Models without GPUs (capacity.<model>.gpu omitted): allowed outside production, for the vLLM
// simulator or CPU builds; no GPU requests, GPU node selector or GPU tolerations; the GPU
// policies accept them only where declared and never in production.
import { strict as assert } from "node:assert";
import { parseStackConfig, StackConfigError } from "../components/spec";
import { rawStackFile } from "./support/stackFiles";
import {
  buildResourceQuota,
  ACCELERATOR_ANNOTATION,
  buildModelDeployment,
} from "../components/manifests";
import { ACCELERATOR_ANNOTATION as PACK_ACCELERATOR_ANNOTATION } from "../policies/fleet";
import { TYPES } from "../policies/kube";
import { gpuNodeSelector, gpuQuota, gpuRequestsEqualLimits } from "../policies/rules/gpu";
import { checkResource, checkStack, Mutable } from "./support/policyFixtures";

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const MODEL = "qwen2-5-1-5b-instruct";

/** The development stack with its model's `gpu` removed (and whatever else `change` does). */
function gpuless(change: (c: Raw) => void = () => undefined): Raw {
  const cfg = rawStackFile("development") as Raw;
  delete cfg.capacity[MODEL].gpu;
  change(cfg);
  return cfg;
}

function problems(cfg: Raw): string[] {
  try {
    parseStackConfig(cfg);
  } catch (e) {
    assert.ok(e instanceof StackConfigError);
    return e.problems;
  }
  assert.fail("config was accepted");
}

function deployment(cfg: Raw = gpuless()): Mutable {
  const spec = parseStackConfig(cfg);
  return buildModelDeployment(spec, spec.models[0]);
}

/** The same Deployment with its environment labels set to another environment (names unchanged). */
function relabel(d: Mutable, environment: string): Mutable {
  return JSON.parse(JSON.stringify(d).replaceAll('"development"', `"${environment}"`));
}

describe("models without GPUs", () => {
  it("config: gpu may be omitted outside production; no GPU taint is tolerated by default", () => {
    const spec = parseStackConfig(gpuless());
    assert.equal(spec.models[0].gpu, undefined);
    assert.deepEqual(spec.models[0].tolerations, []);
    const staging = parseStackConfig(gpuless((c) => (c.environment = "staging")));
    assert.equal(staging.models[0].gpu, undefined);
  });

  it("config: a production model without GPUs is an error naming the path and the fix", () => {
    const cfg = rawStackFile("production") as Raw;
    delete cfg.capacity["llama-3-1-8b-instruct"].gpu;
    assert.deepEqual(problems(cfg), [
      "capacity.llama-3-1-8b-instruct.gpu: is required in production: production models run on GPUs; set gpu.count (and gpu.product)",
    ]);
  });

  it("Deployment: vLLM runs one tensor-parallel rank with the smallest /dev/shm", () => {
    const pod = deployment().spec.template.spec;
    const tp = pod.containers[0].args.filter((a: string) => a.startsWith("--tensor-parallel-size"));
    assert.deepEqual(tp, ["--tensor-parallel-size=1"]);
    const shm = pod.volumes.find((v: { name: string }) => v.name === "dshm");
    assert.equal(shm.emptyDir.sizeLimit, "2Gi");
  });

  it("Deployment: no GPU requests or limits, no GPU node selector or toleration, declared GPU-less", () => {
    const d = deployment();
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    assert.deepEqual(Object.keys(c.resources.requests).sort(), [
      "cpu",
      "ephemeral-storage",
      "memory",
    ]);
    assert.deepEqual(Object.keys(c.resources.limits), ["memory"]);
    assert.deepEqual(pod.nodeSelector, {});
    assert.deepEqual(pod.tolerations, []);
    assert.equal(d.metadata.annotations[ACCELERATOR_ANNOTATION], "none");
    assert.equal(ACCELERATOR_ANNOTATION, PACK_ACCELERATOR_ANNOTATION, "pack and program agree");
    // A GPU model carries no such annotation.
    const gpu = deployment(rawStackFile("development") as Raw);
    assert.equal(gpu.metadata.annotations[ACCELERATOR_ANNOTATION], undefined);
    assert.equal(gpu.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"], "1");
  });

  it("ResourceQuota: a stack without GPU models still caps nvidia.com/gpu (at gpuQuota)", () => {
    const spec = parseStackConfig(gpuless((c) => (c.gpuQuota = 0)));
    assert.deepEqual(buildResourceQuota(spec).spec!.hard, { "requests.nvidia.com/gpu": "0" });
  });

  describe("gpu-requests-equal-limits", () => {
    const check = (d: Mutable, config?: object) =>
      checkResource(gpuRequestsEqualLimits, TYPES.deployment, d, { config });

    it("passes a declared GPU-less model in development and staging", async () => {
      for (const env of ["development", "staging"]) {
        const outcome = await check(relabel(deployment(), env));
        assert.deepEqual(outcome, { violations: [] }, env);
      }
    });

    it("fails a declared GPU-less model in production, and an unlabelled one", async () => {
      const prod = await check(relabel(deployment(), "production"));
      assert.equal(prod.violations.length, 1);
      assert.match(
        prod.violations[0],
        /^Deployment llm-development\/qwen2-5-1-5b-instruct-development: is declared GPU-less \(vllm.ai\/accelerator: none\) but production models must run on GPUs; set capacity.<model>.gpu.count$/,
      );
      const d = deployment();
      delete d.metadata.labels["vllm.ai/environment"];
      delete d.spec.template.metadata.labels["vllm.ai/environment"];
      assert.match((await check(d)).violations[0], /but production models must run on GPUs/);
    });

    it("fails a GPU-less model that is not declared, and one outside gpuOptionalEnvironments", async () => {
      const undeclared = deployment();
      delete undeclared.metadata.annotations[ACCELERATOR_ANNOTATION];
      assert.match((await check(undeclared)).violations[0], /the vLLM pod requests no GPU/);
      const strict = await check(deployment(), { gpuOptionalEnvironments: ["staging"] });
      assert.match(strict.violations[0], /but development models must run on GPUs/);
    });
  });

  it("gpu-node-selector does not apply; gpu-quota passes with a quota of 0", async () => {
    const d = deployment();
    const selector = await checkResource(gpuNodeSelector, TYPES.deployment, d);
    assert.match(selector.notApplicable ?? "", /does not apply/);
    const spec = parseStackConfig(gpuless((c) => (c.gpuQuota = 0)));
    const quota = await checkStack(gpuQuota, [
      { type: TYPES.deployment, name: "model", inputs: d },
      {
        type: TYPES.resourceQuota,
        name: "gpu-budget",
        inputs: buildResourceQuota(spec) as Mutable,
      },
    ]);
    assert.deepEqual(quota, { violations: [] });
  });
});
