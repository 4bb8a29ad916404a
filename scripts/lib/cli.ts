// What every operator script shares: where it reads its environment and writes its output
// (a process, or a test calling run() in-process), confirmation prompts and result tables.
// Values in human-readable output are escaped (registry/src/text.ts), so a registry value
// cannot add lines, colours or cursor movements to what an operator reads.
import * as readline from "node:readline/promises";
import { CommanderError } from "commander";
import { printable } from "@vllm-fleet/registry";

/** A script's environment and output; tests pass their own. */
export interface ScriptIo {
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Asks a yes/no question; undefined means no terminal to ask on (answer: no). */
  confirm?: (question: string) => Promise<boolean>;
}

/**
 * The exit codes of every operator script: one meaning per code, whichever script exits with it,
 * so CI can branch on them. Each script uses the codes that apply to it. 3 is a precondition
 * (nothing was checked or changed), unlike 4, a verification that ran and failed.
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  unavailable: 3,
  unverified: 4,
  drift: 5,
  notFound: 6,
  startFailed: 7,
  sourceUnverified: 8,
  configFailed: 9,
  previewFailed: 10,
  policyViolation: 11,
  notConfirmed: 12,
  upFailed: 13,
  targetUnverified: 14,
  commitFailed: 15,
  interrupted: 130,
} as const;

/** What each exit code means, in --help and the README. */
export const EXIT_MEANINGS: Record<keyof typeof EXIT, string> = {
  ok: "success: every check passed, no drift, or the change was made",
  failed: "unexpected error (the message says what)",
  usage:
    "invalid usage, input or config; the message names the flag or config path (also: a dirty stack file, no git work tree)",
  unavailable:
    "could not read the stack or reach the registry: `pulumi` missing or not logged in, backend unreachable, no such stack, registry database unreachable; nothing was checked or changed",
  unverified:
    "verification failed: a check failed, nothing to verify, or the router serves another environment",
  drift: "drift between the stack config, the registry, the cache and the cluster",
  notFound: "model not found in the registry",
  startFailed: "a component did not start",
  sourceUnverified: "the source stack does not verifiably run its config",
  configFailed: "the release config could not be changed, or the new config is invalid",
  previewFailed: "pulumi preview failed",
  policyViolation: "the preview violated a mandatory policy",
  notConfirmed: "not confirmed",
  upFailed: "pulumi up failed",
  targetUnverified: "the stack failed verification after the update",
  commitFailed: "the commit, push or pull request failed",
  interrupted: "interrupted (SIGINT, SIGTERM or SIGHUP) while starting",
};

/** The exit-code table every script prints at the end of its --help. */
export const EXIT_HELP = `Exit codes (the same for every script):\n${(
  Object.keys(EXIT) as (keyof typeof EXIT)[]
)
  .map((k) => `  ${String(EXIT[k]).padStart(3)}  ${EXIT_MEANINGS[k]}`)
  .join("\n")}`;

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
    // Messages may list problems one per line; the values in them are escaped where they
    // are quoted, and nothing else in a message may steer the terminal.
    io.err(`error: ${printable((e as Error).message, true)}`);
    return e instanceof ScriptError ? e.exitCode : EXIT.failed;
  }
}

/**
 * Commander output goes through the script's io (so tests see --help and usage errors). Its
 * errors echo what was typed (`unknown option '...'`, `argument '...' is invalid`): escaped.
 */
export function commanderOutput(io: ScriptIo) {
  return {
    writeOut: (s: string) => io.out(s.trimEnd()),
    writeErr: (s: string) => io.err(s.trimEnd()),
    outputError: (s: string, write: (s: string) => void) => write(printable(s.trimEnd())),
  };
}

/**
 * Left-aligned columns separated by two spaces (plain text, easy to grep); every cell is
 * escaped, so a value cannot break out of its cell, its row or the table.
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const cells = [headers, ...rows].map((r) => r.map((c) => printable(c)));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/**
 * Cells a spreadsheet would evaluate as a formula (OWASP "CSV Injection",
 * https://owasp.org/www-community/attacks/CSV_Injection, and ASVS 5.0 V1.2.10): a leading
 * '=', '+', '-', '@', tab, carriage return or NUL.
 */
const FORMULA_START = /^[=+\-@\t\r\0]/;

/**
 * One CSV cell: a formula cell gets a leading `'` (shown as text), and a cell with a quote,
 * comma or line break, or a neutralised one, is quoted with inner quotes doubled (RFC 4180,
 * section 2, rules 6 and 7). The value is otherwise exact.
 */
export function csvCell(value: string): string {
  const cell = FORMULA_START.test(value) ? `'${value}` : value;
  return cell !== value || /[",\n\r]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}

export function formatCsv(headers: string[], rows: string[][]): string {
  return [headers, ...rows].map((r) => r.map(csvCell).join(",")).join("\n");
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
