// npm run render -- --stack <name> [--out <dir>]: every Kubernetes manifest of a stack as YAML,
// offline (no cluster, no Pulumi CLI), validated against the Kubernetes schemas.
import * as fs from "node:fs";
import * as path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { stringify } from "yaml";
import { parseStackConfig, readStackConfig, StackConfigError } from "../components/config";
import { schemaProblems } from "../components/manifestSchema";
import { renderStack } from "../components/renderStack";
import { loadStackConfig } from "../components/stackFile";

/** File name of one object: apply order first, so `kubectl apply -f dir` creates namespaces first. */
export function manifestFileName(index: number, kind: string, name: string): string {
  return `${String(index).padStart(2, "0")}-${kind.toLowerCase()}-${name}.yaml`;
}

export function renderToDirectory(
  stack: string,
  out: string,
): { files: string[]; problems: string[] } {
  const spec = parseStackConfig(readStackConfig(loadStackConfig(stack)));
  const manifests = renderStack(spec);
  const problems = manifests.flatMap(schemaProblems);
  if (problems.length) return { files: [], problems };
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const files = manifests.map((m, i) => {
    const file = path.join(out, manifestFileName(i, m.kind, m.metadata.name));
    fs.writeFileSync(file, stringify(m, { lineWidth: 0 }));
    return file;
  });
  return { files, problems };
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
    .option("--out <dir>", "output directory (default: rendered/<stack>)")
    .exitOverride();
  try {
    program.parse(argv);
  } catch (e) {
    return (e as { exitCode?: number }).exitCode ?? 2;
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
      return 1;
    }
    console.log(
      `render: wrote ${files.length} manifests for stack '${stack}' to ${path.relative(process.cwd(), dir) || "."} in ${Date.now() - started} ms`,
    );
    return 0;
  } catch (e) {
    console.error(e instanceof StackConfigError ? e.message : `render: ${(e as Error).message}`);
    return 1;
  }
}

if (require.main === module) process.exitCode = main(process.argv);
