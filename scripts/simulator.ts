// `npm run sim -- --port 8001 --model my-model`: a vLLM-compatible server without a GPU. The
// server itself is the library scripts/simulator/server.ts (what `npm run local` and the tests
// start in-process); this file is the command around it.
import { InvalidArgumentError, Option } from "commander";
import {
  EXIT,
  main,
  runScript,
  scriptCommand,
  ScriptError,
  ScriptIo,
  stopSignals,
} from "./lib/cli";
import { ENGINE_DEFAULTS, EngineParameters, engineParameterError } from "./simulator/engine";
import { SIMULATOR_FAULTS, SimulatorFault, startSimulator } from "./simulator/server";

export { startSimulator } from "./simulator/server";
export type { Simulator, SimulatorFault, SimulatorOptions } from "./simulator/server";
export { ENGINE_DEFAULTS } from "./simulator/engine";
export type { EngineParameters, EngineStats } from "./simulator/engine";

function nonNegativeInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${flag} must be an integer >= 0`);
    return n;
  };
}

/** The engine model's flags, vLLM's names where vLLM has the setting; each implies --engine. */
const ENGINE_FLAGS: Record<keyof EngineParameters, [flag: string, help: string]> = {
  blockSize: ["--block-size <n>", "tokens per KV-cache block"],
  numGpuBlocks: ["--num-gpu-blocks <n>", "KV-cache blocks (vLLM --num-gpu-blocks-override)"],
  maxNumSeqs: ["--max-num-seqs <n>", "most running sequences; the rest wait"],
  maxNumBatchedTokens: ["--max-num-batched-tokens <n>", "most tokens computed in a step"],
  stepMs: ["--step-ms <ms>", "fixed time of a step"],
  prefillTokensPerSecond: ["--prefill-tokens-per-second <n>", "uncached prompt tokens a second"],
  decodeMsPerSeq: ["--decode-ms-per-seq <ms>", "step time each decoding sequence adds"],
};

type SimulatorFlags = {
  model: string;
  port: number;
  host: string;
  servedModelName?: string;
  ttftMs: number;
  tokensPerSecond: number;
  maxModelLen: number;
  fault?: SimulatorFault;
  engine?: boolean;
} & Partial<EngineParameters>;

export async function run(args: string[], io: ScriptIo): Promise<number> {
  const program = scriptCommand(io, {
    name: "npm run sim --",
    description:
      "Simulated vLLM OpenAI server: /health, /v1/models, completions, chat completions, /metrics",
    help: "Serves until Ctrl-C, SIGTERM, SIGHUP or its parent process exiting.",
  })
    .requiredOption(
      "--model <name>",
      "model name (also the served name unless --served-model-name)",
    )
    .option("--port <port>", "port to listen on", nonNegativeInt("--port"), 8000)
    .option("--host <address>", "address to bind", "127.0.0.1")
    .option("--served-model-name <name>", "name requests must use, as vLLM's --served-model-name")
    .option(
      "--ttft-ms <ms>",
      "time to first token in milliseconds",
      nonNegativeInt("--ttft-ms"),
      50,
    )
    .option(
      "--tokens-per-second <n>",
      "token rate after the first token (0: all at once)",
      nonNegativeInt("--tokens-per-second"),
      50,
    )
    .option(
      "--max-model-len <n>",
      "largest max_tokens honoured",
      nonNegativeInt("--max-model-len"),
      8192,
    )
    .addOption(
      new Option("--fault <fault>", "fault to inject").choices(SIMULATOR_FAULTS as string[]),
    )
    .option(
      "--engine",
      "model a vLLM engine (scheduler, queue, prefix-cached KV cache) instead of fixed pacing",
    );
  for (const k of Object.keys(ENGINE_FLAGS) as (keyof EngineParameters)[]) {
    const [flag, help] = ENGINE_FLAGS[k];
    const parse = (value: string) => {
      const error = engineParameterError(k, Number(value));
      if (error) throw new InvalidArgumentError(`${flag.split(" ")[0]} ${error}`);
      return Number(value);
    };
    program.option(flag, `${help} (engine; default ${ENGINE_DEFAULTS[k]})`, parse);
  }
  return runScript<SimulatorFlags>(io, program, args, async (o) => {
    const given = (Object.keys(ENGINE_FLAGS) as (keyof EngineParameters)[]).filter(
      (k) => o[k] !== undefined,
    );
    const engine = Object.fromEntries(given.map((k) => [k, o[k]]));
    const modelled = o.engine || given.length > 0;
    // Listening before the announcement: whoever waits for it may signal at once.
    const signals = stopSignals();
    try {
      const sim = await startSimulator({ ...o, engine: modelled ? engine : undefined }).catch(
        (e: Error) => {
          throw new ScriptError(`simulator failed: ${e.message}`, EXIT.startFailed);
        },
      );
      try {
        io.out(
          `vLLM simulator for '${o.servedModelName ?? o.model}' listening on ${sim.url}${modelled ? " (engine model)" : ""}`,
        );
        await signals.received;
        return EXIT.ok;
      } finally {
        await sim.close();
      }
    } finally {
      signals.dispose();
    }
  });
}

if (require.main === module) main(run);
