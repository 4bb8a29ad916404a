// The frame every operator command runs in (scripts/lib/cli.ts): the same --help ending, usage
// errors and exit codes from each command, errors printed one way, results printed per --format
// (scripts/lib/format.ts), and libraries that never import a command's entry point.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  EXIT,
  EXIT_HELP,
  runScript,
  scriptCommand,
  ScriptError,
  ScriptRun,
} from "../scripts/lib/cli";
import { Format, formatOption, printResult } from "../scripts/lib/format";
import { run as local } from "../scripts/local";
import { run as promote } from "../scripts/promote";
import { run as registry } from "../scripts/registry";
import { run as render } from "../scripts/render";
import { run as rollback } from "../scripts/rollback";
import { run as sim } from "../scripts/simulator";
import { run as status } from "../scripts/status";
import { run as verify } from "../scripts/verify";
import { scriptRunner } from "./support/scriptIo";

const ROOT = path.resolve(__dirname, "..");

const COMMANDS: [string, ScriptRun][] = [
  ["local", local],
  ["promote", promote],
  ["registry", registry],
  ["render", render],
  ["rollback", rollback],
  ["sim", sim],
  ["status", status],
  ["verify", verify],
];

describe("the operator commands' frame (scripts/lib/cli.ts)", () => {
  for (const [name, run] of COMMANDS) {
    it(`npm run ${name}: --help names the command and ends with the exit-code table; an unknown option is a usage error`, async () => {
      const cli = scriptRunner(run, {});
      const help = await cli("--help");
      assert.equal(help.code, EXIT.ok, help.err);
      assert.match(help.out, new RegExp(`^Usage: npm run ${name} -- \\[options\\]`));
      assert.ok(help.out.endsWith(`\n\n${EXIT_HELP}`), help.out);
      const bad = await cli("--no-such-flag");
      assert.equal(bad.code, EXIT.usage);
      // Commander reports a missing required option before an unknown one.
      assert.match(bad.err, /^error: (unknown option '--no-such-flag'|required option '.+' not)/);
      assert.match(bad.err, /\(add --help for usage\)$/);
      assert.equal(bad.out, "");
    });
  }

  /** A one-command program whose body throws `error`. */
  const failing = (error: unknown) => async () => {
    const err: string[] = [];
    const io = { env: {}, out: () => undefined, err: (s: string) => err.push(s) };
    const program = scriptCommand(io, { name: "t", description: "test" });
    const code = await runScript(io, program, [], () => Promise.reject(error));
    return { code, err: err.join("\n") };
  };

  it("prints a ScriptError's own lines and exits with its code", async () => {
    const r = await failing(new ScriptError("2 problems:\n  - a\n  - b\x1b[2K", EXIT.drift))();
    assert.equal(r.code, EXIT.drift);
    assert.equal(r.err, "error: 2 problems:\n  - a\n  - b\\x1b[2K");
  });

  it("prints any other error (a driver's, a library's) on one escaped line and exits 1", async () => {
    const r = await failing(new Error('value "x\n✓ forged" is invalid'))();
    assert.equal(r.code, EXIT.failed);
    assert.equal(r.err, 'error: value "x\\n✓ forged" is invalid');
  });

  it("a program of subcommands without one prints its help and exits 2", async () => {
    const none = await scriptRunner(registry, {})();
    assert.equal(none.code, EXIT.usage);
    assert.match(none.out, /^Usage: npm run registry -- \[options\] \[command\]/);
  });

  it("--format offers the command's formats, prints JSON exactly and CSV only where offered", async () => {
    const printed = async (formats: Format[], ...args: string[]) => {
      const out: string[] = [];
      const io = { env: {}, out: (s: string) => out.push(s), err: () => undefined };
      const program = scriptCommand(io, { name: "t", description: "test" }).addOption(
        formatOption(formats),
      );
      const code = await runScript<{ format: Format }>(io, program, args, async (o) => {
        printResult(io, o.format, {
          json: { a: "x\n" },
          text: () => "text",
          ...(formats.includes("csv") ? { csv: () => "csv" } : {}),
        });
        return EXIT.ok;
      });
      return { code, out: out.join("\n") };
    };
    assert.deepEqual(await printed(["table", "json"]), { code: EXIT.ok, out: "text" });
    assert.deepEqual(await printed(["table", "json"], "--format", "json"), {
      code: EXIT.ok,
      out: '{\n  "a": "x\\n"\n}',
    });
    assert.equal((await printed(["table", "json"], "--format", "csv")).code, EXIT.usage);
    assert.deepEqual(await printed(["table", "json", "csv"], "--format", "csv"), {
      code: EXIT.ok,
      out: "csv",
    });
  });

  it("libraries (scripts/lib, scripts/simulator) and commands never import a command's entry point (scripts/*.ts)", () => {
    const ts = (dir: string) =>
      fs
        .readdirSync(path.join(ROOT, dir))
        .filter((f) => f.endsWith(".ts"))
        .map((f) => path.join(ROOT, dir, f));
    const commands = ts("scripts");
    const entryPoints = commands.map((f) => f.replace(/\.ts$/, ""));
    const importers = [...ts("scripts/lib"), ...ts("scripts/simulator"), ...commands];
    assert.ok(entryPoints.length > 5 && importers.length > 15);
    for (const file of importers) {
      const text = fs.readFileSync(file, "utf8");
      for (const [, spec] of text.matchAll(/from "(\.[^"]+)"/g)) {
        const target = path.resolve(path.dirname(file), spec);
        assert.ok(!entryPoints.includes(target), `${path.relative(ROOT, file)} imports ${spec}`);
      }
    }
    // Commander stays inside the frame: a command builds its program with scriptCommand.
    const { scripts } = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    for (const [name] of COMMANDS) {
      // The file `npm run <name>` runs.
      const file = /\s(scripts\/\S+\.ts)$/.exec(scripts[name])![1];
      const text = fs.readFileSync(path.join(ROOT, file), "utf8");
      assert.doesNotMatch(text, /new Command\(/, `${file} builds its own program`);
      assert.match(text, /^if \(require\.main === module\) main\(run\);$/m, name);
    }
  });
});
