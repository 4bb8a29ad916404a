// Runs an operator script's run(args, io) in-process and captures what it printed.
import type { ScriptIo } from "../../scripts/lib/cli";

export interface ScriptRun {
  code: number;
  out: string;
  err: string;
  /** Questions the script asked. */
  asked: string[];
}

/** A runner of `run` with `env`; `answer` replies to confirmation prompts (none: no terminal). */
export function scriptRunner(
  run: (args: string[], io: ScriptIo) => Promise<number>,
  env: Record<string, string | undefined>,
  answer?: boolean,
) {
  return async (...args: string[]): Promise<ScriptRun> => {
    const out: string[] = [];
    const err: string[] = [];
    const asked: string[] = [];
    const code = await run(args, {
      env,
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      confirm:
        answer === undefined
          ? undefined
          : async (q) => {
              asked.push(q);
              return answer;
            },
    });
    return { code, out: out.join("\n"), err: err.join("\n"), asked };
  };
}
