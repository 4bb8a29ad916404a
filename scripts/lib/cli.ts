// The frame of every operator command: where it reads its environment and writes its output
// (a process, or a test calling run() in-process), its commander program (--help, usage errors),
// its exit codes, how errors are printed, confirmation prompts, and waiting for a stop signal.
// Results are printed through ./format. What is echoed back (typed values, error messages) is
// escaped (registry/src/text.ts), so it cannot steer the terminal.
import * as readline from "node:readline/promises";
import { Command, CommanderError, OptionValues } from "commander";
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

/** What a command says about itself in --help. */
export interface CommandSpec {
  /** How it is run, the `Usage:` line (e.g. `npm run status --`). */
  name: string;
  description: string;
  /** Text after the options and before the exit-code table (environment, notable codes). */
  help?: string;
}

/**
 * A commander program in the frame every command shares: --help and usage errors go through
 * `io` (values they echo escaped) and end with a pointer to --help, usage errors are thrown for
 * runScript to turn into exit 2, and --help ends with the exit-code table. Subcommands added
 * with `.command()` inherit all of it but the table (commander's copyInheritedSettings copies
 * output, exit and help-after-error settings, not help text).
 */
export function scriptCommand(io: ScriptIo, spec: CommandSpec): Command {
  return new Command(spec.name)
    .description(spec.description)
    .addHelpText("after", `\n${spec.help ? `${spec.help}\n\n` : ""}${EXIT_HELP}`)
    .showHelpAfterError("(add --help for usage)")
    .exitOverride()
    .configureOutput(commanderOutput(io));
}

/**
 * Parses `args` with `program` and runs `body` with its options (a program of subcommands runs
 * their actions instead; without a subcommand it prints its help and exits 2). Resolves to the
 * exit code: 0 for --help, 2 for a usage error, a ScriptError's own code, else 1; errors are
 * printed as `error: <message>`.
 */
export async function runScript<O extends OptionValues>(
  io: ScriptIo,
  program: Command,
  args: string[],
  body?: (opts: O) => Promise<number>,
): Promise<number> {
  if (args.length === 0 && program.commands.length > 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  try {
    await program.parseAsync(args, { from: "user" });
    return body ? await body(program.opts<O>()) : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    io.err(`error: ${errorText(e)}`);
    return e instanceof ScriptError ? e.exitCode : EXIT.failed;
  }
}

/**
 * A ScriptError's message is the script's own: it may list problems one per line, and the
 * values in it are escaped where they are quoted. Any other error's text is foreign (a driver,
 * a library) and may echo values: one line, escaped.
 */
function errorText(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return printable(message, e instanceof ScriptError);
}

/**
 * Commander output goes through the script's io (so tests see --help and usage errors). Its
 * errors echo what was typed (`unknown option '...'`, `argument '...' is invalid`): escaped.
 */
function commanderOutput(io: ScriptIo) {
  return {
    writeOut: (s: string) => io.out(s.trimEnd()),
    writeErr: (s: string) => io.err(s.trimEnd()),
    outputError: (s: string, write: (s: string) => void) => write(printable(s.trimEnd())),
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

/** A command as its file exports it: the arguments after the script name, an io, an exit code. */
export type ScriptRun = (args: string[], io: ScriptIo) => Promise<number>;

/**
 * Entry point of a script file: run with process io, then exit with its code once stdout and
 * stderr are flushed (process.exit drops pending writes, and writes to pipes are asynchronous
 * on macOS: https://nodejs.org/api/process.html#a-note-on-process-io), even if a handle lingers.
 */
export function main(run: ScriptRun): void {
  void run(process.argv.slice(2), processIo()).then((code) =>
    process.stdout.write("", () => process.stderr.write("", () => process.exit(code))),
  );
}

/** Signals that stop a serving command: Ctrl-C, a kill, and the terminal closing. */
const STOP_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
/** How often the parent is looked for: `npm run` exits on SIGTERM without passing it on. */
const PARENT_POLL_MS = 500;

/**
 * For a command that serves until stopped: `received` resolves with the first stop signal, or
 * with the parent process going away (we are re-parented). While it listens, these signals no
 * longer kill the process outright, so the command's teardown always runs; `dispose` gives
 * them back.
 */
export function stopSignals(): { received: Promise<string>; dispose(): void } {
  let on: (reason: string) => void = () => undefined;
  const received = new Promise<string>((resolve) => (on = resolve));
  for (const s of STOP_SIGNALS) process.on(s, on);
  const parent = process.ppid;
  const poll = setInterval(() => {
    if (process.ppid !== parent) on("the parent process exiting");
  }, PARENT_POLL_MS);
  poll.unref();
  return {
    received,
    dispose: () => {
      clearInterval(poll);
      for (const s of STOP_SIGNALS) process.off(s, on);
    },
  };
}
