// Runs a Dockerfile's steps without Docker: each stage gets a directory standing in for its
// filesystem root; WORKDIR, ENV, COPY (from the context or an earlier stage) and RUN are
// carried out on the host. Enough to prove a build and a production-only install work.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface Instruction {
  op: string;
  args: string;
}

export interface Stage {
  name?: string;
  from: string;
  instructions: Instruction[];
}

/** Parses instructions (with `\` continuations and comments) into stages; ARG defaults are substituted. */
export function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\r?\n/g, " ").split(/\r?\n/);
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(line)!;
    const value = rest.replace(/\$\{(\w+)\}/g, (_, k: string) => args[k] ?? "");
    const upper = op.toUpperCase();
    if (upper === "ARG") {
      const [k, v = ""] = value.split("=");
      args[k] = v;
    } else if (upper === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(value)!;
      stages.push({ from: m[1], name: m[2], instructions: [] });
    } else {
      stages.at(-1)!.instructions.push({ op: upper, args: value });
    }
  }
  return stages;
}

export interface StageResult {
  root: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  cmd?: string[];
  exposed: number[];
}

/** Glob of a .dockerignore line as a RegExp: `**` any depth, `*` and `?` within one path segment. */
function ignoreRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/^\/+|\/+$/g, "")
    .split(/(\*\*\/?|\*|\?)/)
    .map((part) =>
      part.startsWith("**")
        ? ".*"
        : part === "*"
          ? "[^/]*"
          : part === "?"
            ? "[^/]"
            : part.replace(/[.+^${}()|[\]\\]/g, "\\$&"),
    )
    .join("");
  return new RegExp(`^${body}$`);
}

/**
 * Whether a context path survives a .dockerignore (moby's patternmatcher): the last matching line
 * wins, `!` re-includes, and a line matching any parent directory matches the path too.
 */
export function dockerignoreFilter(text: string): (relPath: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => ({ include: l.startsWith("!"), re: ignoreRegExp(l.replace(/^!/, "")) }));
  return (relPath) => {
    const parts = relPath.split("/");
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let kept = true;
    for (const rule of rules) if (prefixes.some((p) => rule.re.test(p))) kept = rule.include;
    return kept;
  };
}

/**
 * Executes every stage in `outDir`; COPY sources are relative to `context` and filtered by
 * `<Dockerfile>.dockerignore` when given (BuildKit reads that file before `.dockerignore`).
 * Returns the last stage.
 */
export function runDockerfile(
  stages: Stage[],
  context: string,
  outDir: string,
  log: (line: string) => void,
  ignore: (relPath: string) => boolean = () => true,
): StageResult {
  const done = new Map<string, StageResult>();
  let last: StageResult | undefined;
  stages.forEach((stage, i) => {
    const root = path.join(outDir, `stage-${i}`);
    fs.mkdirSync(root, { recursive: true });
    const s: StageResult = { root, workdir: "/", env: {}, exposed: [] };
    const inRoot = (p: string) => path.join(root, path.isAbsolute(p) ? p : path.join(s.workdir, p));
    for (const ins of stage.instructions) {
      log(`[${stage.name ?? i}] ${ins.op} ${ins.args}`);
      if (ins.op === "WORKDIR") {
        s.workdir = path.isAbsolute(ins.args) ? ins.args : path.join(s.workdir, ins.args);
        fs.mkdirSync(inRoot("."), { recursive: true });
      } else if (ins.op === "ENV") {
        for (const m of ins.args.matchAll(/(\w+)=(\S+)/g)) s.env[m[1]] = m[2];
      } else if (ins.op === "COPY") {
        const parts = ins.args.split(/\s+/);
        const from = parts[0].startsWith("--from=") ? done.get(parts.shift()!.slice(7)) : undefined;
        const dest = parts.pop()!;
        for (const src of parts) {
          const source = from
            ? path.join(from.root, path.isAbsolute(src) ? src : path.join(from.workdir, src))
            : path.join(context, src);
          const target = dest.endsWith("/")
            ? path.join(inRoot(dest), path.basename(src))
            : inRoot(dest);
          fs.mkdirSync(path.dirname(target), { recursive: true });
          let copied = 0;
          fs.cpSync(source, target, {
            recursive: true,
            verbatimSymlinks: true,
            filter: (file) => {
              if (from || fs.statSync(file).isDirectory()) return true;
              const kept = ignore(path.relative(context, file).split(path.sep).join("/"));
              if (kept) copied++;
              return kept;
            },
          });
          if (!from && copied === 0)
            throw new Error(`COPY ${src}: not in the build context (excluded by .dockerignore?)`);
        }
      } else if (ins.op === "RUN") {
        execFileSync("bash", ["-c", ins.args], {
          cwd: inRoot("."),
          env: { ...process.env, ...s.env },
          stdio: ["ignore", "pipe", "pipe"],
        });
      } else if (ins.op === "USER") {
        s.user = ins.args;
      } else if (ins.op === "CMD") {
        s.cmd = JSON.parse(ins.args) as string[];
      } else if (ins.op === "EXPOSE") {
        s.exposed.push(Number(ins.args));
      } else {
        throw new Error(`unsupported Dockerfile instruction ${ins.op}`);
      }
    }
    if (stage.name) done.set(stage.name, s);
    last = s;
  });
  return last!;
}
