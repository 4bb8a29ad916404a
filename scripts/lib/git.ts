// git and gh as promote and rollback drive them: the stack file a change edits becomes one
// commit on a new branch (and optionally a pull request), so the deploy workflow, which runs
// `pulumi up` from the repository's stack file, applies the change instead of undoing it.
import { execFile } from "node:child_process";

/** A `git`/`gh` command that exited non-zero (or could not start). */
export class ToolCommandError extends Error {
  constructor(tool: string, args: string[], detail: string) {
    super(`\`${tool} ${args.join(" ")}\` failed${detail ? `: ${detail}` : ""}`);
    this.name = "ToolCommandError";
  }
}

function exec(
  tool: string,
  args: string[],
  cwd: string,
  env: Record<string, string | undefined>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { cwd, env: env as NodeJS.ProcessEnv }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const e = err as NodeJS.ErrnoException;
      const detail =
        e.code === "ENOENT" ? `${tool} is not on PATH` : (stderr || stdout || e.message).trim();
      reject(new ToolCommandError(tool, args, detail));
    });
  });
}

export class Git {
  constructor(
    private readonly cwd: string,
    private readonly env: Record<string, string | undefined>,
  ) {}

  run(...args: string[]): Promise<string> {
    return exec("git", args, this.cwd, this.env);
  }

  /** Whether `file` differs from HEAD (staged, unstaged or untracked). */
  async dirty(file: string): Promise<boolean> {
    return (await this.run("status", "--porcelain", "--", file)).trim() !== "";
  }

  /** The checked-out branch, or undefined on a detached HEAD. */
  async currentBranch(): Promise<string | undefined> {
    const name = (await this.run("branch", "--show-current")).trim();
    return name || undefined;
  }

  /** Puts `file` back as HEAD has it. */
  async restore(file: string): Promise<void> {
    await this.run("restore", "--", file);
  }

  /**
   * Creates `branch` at HEAD, switches to it (local changes come along) and commits only
   * `file`: with paths, `git commit` takes their working-tree contents and ignores anything
   * else staged (git-commit(1), `--only`, the default when paths are given). Returns the commit.
   */
  async commitOnNewBranch(branch: string, file: string, message: string): Promise<string> {
    await this.run("switch", "--create", branch);
    await this.run("commit", "--message", message, "--only", "--", file);
    return (await this.run("rev-parse", "HEAD")).trim();
  }

  /** Pushes `branch` to `remote` and tracks it. */
  async push(remote: string, branch: string): Promise<void> {
    await this.run("push", "--set-upstream", remote, branch);
  }
}

/**
 * Opens a pull request of the pushed `head` into `base` and returns its URL. `--head` skips
 * gh's own push and fork prompts, so the branch must already be on the remote; `--title` and
 * `--body` skip the editor (cli/cli pkg/cmd/pr/create/create.go).
 */
export async function createPullRequest(
  cwd: string,
  env: Record<string, string | undefined>,
  pr: { base: string; head: string; title: string; body: string },
): Promise<string> {
  const out = await exec(
    "gh",
    ["pr", "create", "--base", pr.base, "--head", pr.head, "--title", pr.title, "--body", pr.body],
    cwd,
    env,
  );
  return out.trim().split("\n").pop() ?? "";
}
