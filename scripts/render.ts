// npm run render -- --stack <name> [--out <dir>]: every Kubernetes manifest of a stack as YAML,
// offline (no cluster, no Pulumi CLI), validated against the Kubernetes schemas.
import * as fs from "node:fs";
import * as path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { stringify } from "yaml";
import { loadStackSpec, StackConfigError, StackSpec } from "../components/spec";
import { schemaProblems, renderStack } from "../components/manifests";
import { EXIT, EXIT_HELP } from "./lib/cli";

/** File name of one object: apply order first, so `kubectl apply -f dir` creates namespaces first. */
export function manifestFileName(index: number, kind: string, name: string): string {
  return `${String(index).padStart(2, "0")}-${kind.toLowerCase()}-${name}.yaml`;
}

/** Lists the files a render wrote, so the next render removes exactly those and nothing else. */
export const RENDER_INDEX = ".rendered-files";

/** The output directory is not one render may write into; nothing was changed. */
export class RenderDirectoryError extends Error {}

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
    if (e instanceof StackConfigError) throw new RenderExit(e.message, EXIT.usage);
    throw new RenderExit(
      `render: cannot read stack ${stack}: ${(e as Error).message}`,
      EXIT.unavailable,
    );
  }
}

/** A failure render reports and exits with `code`. */
class RenderExit extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
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

function main(argv: string[]): number {
  const program = new Command()
    .name("npm run render --")
    .description(
      "Write every Kubernetes manifest of a stack as YAML (offline), validated against the Kubernetes schemas.",
    )
    .requiredOption("--stack <name>", "stack to render (development, staging, production)", (v) => {
      if (!/^[A-Za-z0-9_.-]+$/.test(v))
        throw new InvalidArgumentError("a stack name such as development");
      return v;
    })
    .option(
      "--out <dir>",
      "output directory (default: rendered/<stack>); new, empty, or written by an earlier render",
    )
    .addHelpText(
      "after",
      `\nA re-render removes only the files the previous render listed in ${RENDER_INDEX}; a non-empty\ndirectory without that list is refused, never cleared.\n\nExits 2 for an invalid stack config or an --out directory render may not write into, 4 when a\nmanifest fails its schema.\n\n${EXIT_HELP}`,
    )
    .exitOverride();
  try {
    program.parse(argv);
  } catch (e) {
    return (e as { exitCode?: number }).exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  const { stack, out } = program.opts<{ stack: string; out?: string }>();
  const dir = path.resolve(out ?? path.join("rendered", stack));
  const started = Date.now();
  try {
    const { files, problems } = renderToDirectory(stack, dir);
    if (problems.length) {
      console.error(
        `render: ${problems.length} manifest(s) fail schema validation:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
      );
      return EXIT.unverified;
    }
    console.log(
      `render: wrote ${files.length} manifests for stack '${stack}' to ${path.relative(process.cwd(), dir) || "."} in ${Date.now() - started} ms`,
    );
    return EXIT.ok;
  } catch (e) {
    if (e instanceof RenderDirectoryError) {
      console.error(`render: ${e.message}`);
      return EXIT.usage;
    }
    if (e instanceof RenderExit) {
      console.error(e.message);
      return e.code;
    }
    console.error(`render: ${(e as Error).message}`);
    return EXIT.failed;
  }
}

if (require.main === module) process.exitCode = main(process.argv);
