// What every operator script shares: where it reads its environment and writes its output
// (a process, or a test calling run() in-process), confirmation prompts and result tables.
import * as readline from "node:readline/promises";
import { CommanderError } from "commander";

export { formatTable } from "../registry";

/** A script's environment and output; tests pass their own. */
export interface ScriptIo {
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Asks a yes/no question; undefined means no terminal to ask on (answer: no). */
  confirm?: (question: string) => Promise<boolean>;
}

/** Exit code of invalid usage, input or config, shared by every script. */
export const USAGE_EXIT = 2;

/** A failure the script reports as `error: <message>` and exits with `exitCode`. */
export class ScriptError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "ScriptError";
  }
}

/** Runs a script body: commander's --help/usage errors and ScriptErrors become exit codes. */
export async function runScript(
  io: ScriptIo,
  usageExit: number,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : usageExit;
    if (e instanceof ScriptError) {
      io.err(`error: ${e.message}`);
      return e.exitCode;
    }
    io.err(`error: ${(e as Error).message}`);
    return 1;
  }
}

/** Commander output goes through the script's io (so tests see --help and usage errors). */
export function commanderOutput(io: ScriptIo) {
  return {
    writeOut: (s: string) => io.out(s.trimEnd()),
    writeErr: (s: string) => io.err(s.trimEnd()),
  };
}

/** The io of a real process: stdout/stderr, and a y/N prompt when stdin is a terminal. */
export function processIo(): ScriptIo {
  return {
    env: process.env,
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
    confirm: process.stdin.isTTY
      ? async (question) => {
          const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
          try {
            return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
          } finally {
            rl.close();
          }
        }
      : undefined,
  };
}

/** Entry point of a script file: run with process io, then exit with its code. */
export function main(run: (args: string[], io: ScriptIo) => Promise<number>): void {
  void run(process.argv.slice(2), processIo()).then((code) => process.exit(code));
}
