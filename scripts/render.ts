// npm run render -- --stack <name> [--out <dir>]: every Kubernetes manifest of a stack as YAML,
// offline (no cluster, no Pulumi CLI), validated against the Kubernetes schemas.
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError } from "commander";
import { stringify } from "yaml";
import { loadStackSpec, StackConfigError, StackSpec } from "../components/spec";
import { schemaProblems, renderStack } from "../components/manifests";
import { EXIT, main, runScript, scriptCommand, ScriptError, ScriptIo } from "./lib/cli";
import { unreadableStack } from "./lib/stack";

/** File name of one object: apply order first, so `kubectl apply -f dir` creates namespaces first. */
export function manifestFileName(index: number, kind: string, name: string): string {
  return `${String(index).padStart(2, "0")}-${kind.toLowerCase()}-${name}.yaml`;
}

/** Lists the files a render wrote, so the next render removes exactly those and nothing else. */
export const RENDER_INDEX = ".rendered-files";

/** The output directory is not one render may write into (a usage error); nothing was changed. */
export class RenderDirectoryError extends ScriptError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/**
 * Removes what the previous render into `out` wrote (its index lists the files) and nothing
 * else; refuses a non-empty directory without an index, since its files are someone else's.
 */
function clearPreviousRender(out: string): void {
  if (!fs.existsSync(out)) return;
  if (!fs.statSync(out).isDirectory())
    throw new RenderDirectoryError(`--out ${out} is a file; choose a directory`);
  const index = path.join(out, RENDER_INDEX);
  if (!fs.existsSync(index)) {
    if (fs.readdirSync(out).length === 0) return;
    throw new RenderDirectoryError(
      `--out ${out} is not empty and was not written by render (no ${RENDER_INDEX}); choose a new or empty directory`,
    );
  }
  for (const name of fs.readFileSync(index, "utf8").split("\n")) {
    // Only plain names render itself writes: an edited index cannot point outside the directory.
    if (!/^[0-9]{2,}-[a-z0-9.-]+\.yaml$/.test(name)) continue;
    fs.rmSync(path.join(out, name), { force: true });
  }
  fs.rmSync(index);
}

/** The stack's config from its file: an invalid config exits 2, an unreadable stack 3. */
function readSpec(stack: string): StackSpec {
  try {
    return loadStackSpec(stack);
  } catch (e) {
    if (e instanceof StackConfigError) throw new ScriptError(e.message, EXIT.usage);
    throw unreadableStack(stack, e);
  }
}

export function renderToDirectory(
  stack: string,
  out: string,
): { files: string[]; problems: string[] } {
  const spec = readSpec(stack);
  const manifests = renderStack(spec);
  const problems = manifests.flatMap(schemaProblems);
  if (problems.length) return { files: [], problems };
  clearPreviousRender(out);
  fs.mkdirSync(out, { recursive: true });
  const names = manifests.map((m, i) => manifestFileName(i, m.kind, m.metadata.name));
  manifests.forEach((m, i) =>
    fs.writeFileSync(path.join(out, names[i]), stringify(m, { lineWidth: 0 })),
  );
  fs.writeFileSync(path.join(out, RENDER_INDEX), `${names.join("\n")}\n`);
  return { files: names.map((n) => path.join(out, n)), problems };
}

export async function run(args: string[], io: ScriptIo): Promise<number> {
  const program = scriptCommand(io, {
    name: "npm run render --",
    description:
      "Write every Kubernetes manifest of a stack as YAML (offline), validated against the Kubernetes schemas.",
    help: `A re-render removes only the files the previous render listed in ${RENDER_INDEX}; a non-empty
directory without that list is refused, never cleared.

Exits 2 for an invalid stack config or an --out directory render may not write into, 4 when a
manifest fails its schema.`,
  })
    .requiredOption("--stack <name>", "stack to render (development, staging, production)", (v) => {
      if (!/^[A-Za-z0-9_.-]+$/.test(v))
        throw new InvalidArgumentError("a stack name such as development");
      return v;
    })
    .option(
      "--out <dir>",
      "output directory (default: rendered/<stack>); new, empty, or written by an earlier render",
    );
  return runScript<{ stack: string; out?: string }>(io, program, args, async ({ stack, out }) => {
    const dir = path.resolve(out ?? path.join("rendered", stack));
    const started = Date.now();
    const { files, problems } = renderToDirectory(stack, dir);
    if (problems.length)
      throw new ScriptError(
        `${problems.length} manifest(s) fail schema validation:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
        EXIT.unverified,
      );
    io.out(
      `render: wrote ${files.length} manifests for stack '${stack}' to ${path.relative(process.cwd(), dir) || "."} in ${Date.now() - started} ms`,
    );
    return EXIT.ok;
  });
}

if (require.main === module) main(run);
