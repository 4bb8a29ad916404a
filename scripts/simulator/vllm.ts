// `vllm serve <model> [flags]` for the simulator image: the command line the model Deployment
// runs (components/manifests/modelManifests.ts: command ["vllm", "serve"], args vllmArgs), served by the
// simulator. Flag names and forms follow vLLM's parser (vllm-project/vllm:
// vllm/entrypoints/cli/serve.py `vllm serve <model_tag> [options]`,
// vllm/entrypoints/openai/cli_args.py --host/--port, vllm/engine/arg_utils.py
// --served-model-name/--max-model-len, and the scheduler and cache flags --max-num-seqs,
// --max-num-batched-tokens, --block-size and --num-gpu-blocks-override of EngineArgs;
// FlexibleArgumentParser in vllm/utils accepts `--flag=value`, `--flag value` and underscores for
// dashes). It always runs the engine model (./engine): vLLM always schedules, queues and caches
// prefixes (prefix caching is on by default in V1). GPU flags mean nothing here and are accepted
// as they are. Imports node built-ins only, so the image needs no node_modules.
import type { EngineParameters } from "./engine";
import { startSimulator } from "./server";

/** What the simulator takes from a `vllm serve` command line. */
export interface ServeArgs {
  /** The model tag (a Hugging Face repo id or path); also the served name by default. */
  model: string;
  host: string;
  port: number;
  servedModelName?: string;
  maxModelLen?: number;
  /** vLLM's scheduler and KV-cache flags that were given, as engine parameters. */
  engine: Partial<EngineParameters>;
  /** Flags accepted without effect (GPU, dtype, revision, ...), as given. */
  ignored: string[];
}

/** vLLM's flags for what the engine model has, and the parameter each sets. */
const ENGINE_FLAGS = new Map<string, keyof EngineParameters>([
  ["max-num-seqs", "maxNumSeqs"],
  ["max-num-batched-tokens", "maxNumBatchedTokens"],
  ["block-size", "blockSize"],
  ["num-gpu-blocks-override", "numGpuBlocks"],
]);

/** `vllm serve` flags that take a value (so `--flag value` consumes the next word). */
const VALUE_FLAGS = new Set([
  ...ENGINE_FLAGS.keys(),
  "model",
  "host",
  "port",
  "served-model-name",
  "max-model-len",
  "tensor-parallel-size",
  "gpu-memory-utilization",
  "dtype",
  "revision",
  "quantization",
]);

export const USAGE =
  "usage: vllm serve <model_tag> [--host H] [--port P] [--served-model-name N] [--max-model-len L] [--max-num-seqs N] [--max-num-batched-tokens N] [--block-size N] [--num-gpu-blocks-override N] [other vLLM flags]";

/** Thrown for a command line vLLM would reject; the message names the argument. */
export class UsageError extends Error {}

function integer(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min)
    throw new UsageError(`--${flag}: expected an integer >= ${min}, got '${value}'`);
  return n;
}

/** Parses the words after `vllm` (`serve <model> ...`); later flags win, as in argparse. */
export function parseServeArgs(argv: string[]): ServeArgs {
  const [sub, ...rest] = argv;
  if (sub !== "serve") throw new UsageError(`unknown command '${sub ?? ""}'; ${USAGE}`);
  // vLLM's defaults: all interfaces (--host None), port 8000.
  const out: ServeArgs = { model: "", host: "0.0.0.0", port: 8000, engine: {}, ignored: [] };
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i];
    if (!word.startsWith("--")) {
      if (out.model) throw new UsageError(`unexpected argument '${word}'; ${USAGE}`);
      out.model = word;
      continue;
    }
    const eq = word.indexOf("=");
    const flag = (eq < 0 ? word.slice(2) : word.slice(2, eq)).replace(/_/g, "-");
    let value = eq < 0 ? undefined : word.slice(eq + 1);
    if (value === undefined && VALUE_FLAGS.has(flag)) {
      value = rest[++i];
      if (value === undefined) throw new UsageError(`--${flag}: expected a value`);
    }
    if (flag === "model") out.model = value!;
    else if (flag === "host") out.host = value!;
    else if (flag === "port") out.port = integer(flag, value!, 0);
    else if (flag === "served-model-name") out.servedModelName = value;
    else if (flag === "max-model-len") out.maxModelLen = integer(flag, value!, 1);
    else if (ENGINE_FLAGS.has(flag)) out.engine[ENGINE_FLAGS.get(flag)!] = integer(flag, value!, 1);
    else out.ignored.push(eq < 0 && value !== undefined ? `${word}=${value}` : word);
  }
  if (!out.model) throw new UsageError(`the model tag is required; ${USAGE}`);
  return out;
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let args: ServeArgs;
  try {
    args = parseServeArgs(argv);
  } catch (e) {
    process.stderr.write(`vllm: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const sim = await startSimulator({
    model: args.model,
    servedModelName: args.servedModelName,
    host: args.host,
    port: args.port,
    maxModelLen: args.maxModelLen,
    engine: args.engine,
  });
  const stop = () => void sim.close().then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  const ignored = args.ignored.length ? ` (ignored: ${args.ignored.join(" ")})` : "";
  process.stdout.write(
    `vLLM simulator serving '${args.servedModelName ?? args.model}' on ${sim.url}${ignored}\n`,
  );
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`vllm: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
