// TLS to the registry against a real PostgreSQL with `ssl=on` and a private CA, through every
// path that connects: the shared options (registry/src/tls.ts), the router process, the
// migrations and registry-entry providers, and the registry CLI. sslmode follows libpq's table
// "SSL Mode Descriptions" (https://www.postgresql.org/docs/current/libpq-ssl.html), which the
// Terraform postgresql provider follows too (lib/pq ssl.go, cyrilgdn/terraform-provider-postgresql).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { Client } from "pg";
import { parse } from "pg-connection-string";
import {
  registryEntryProvider,
  MIGRATION_SET,
  registryMigrationsProvider,
} from "../components/resources";
import {
  connectClient,
  withRegistryClient,
  LATEST_VERSION,
  migrate,
  upsertEntry,
  registryPgConfig,
} from "@vllm-fleet/registry";
import { EXIT, run } from "../scripts/registry";
import { makeTestPki, TestPki } from "./support/pki";
import { startRouter } from "./support/router";
import { PostgresServer, startPostgres } from "./support/services";

/** True when the session runs over TLS (pg_stat_ssl is PostgreSQL's own view of it). */
async function sessionUsesTls(db: Client): Promise<boolean> {
  const r = await db.query<{ ssl: boolean }>(
    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
  );
  return r.rows[0].ssl;
}

describe("registry TLS (libpq sslmode, private CA, real PostgreSQL with ssl=on)", function () {
  this.timeout(120000);
  let pki: TestPki;
  let server: PostgresServer;
  /** The server's superuser URL at `host` with `sslmode` (and extra query parameters). */
  let urlFor: (host: string, sslmode: string, extra?: string) => string;

  before(async () => {
    pki = makeTestPki();
    // hostssl only: a connection without TLS is refused, as on managed services that force TLS.
    server = await startPostgres({ cert: pki.serverCert, key: pki.serverKey, required: true });
    urlFor = (host, sslmode, extra = "") => {
      const u = new URL(server.url);
      u.hostname = host;
      return `${u.toString()}?sslmode=${sslmode}${extra}`;
    };
  });
  after(async () => {
    await server?.destroy();
    if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  describe("the shared options (registryPgConfig)", () => {
    async function connect(url: string, ca?: string): Promise<boolean> {
      const db = await connectClient(url, { ca });
      try {
        return await sessionUsesTls(db);
      } finally {
        await db.end();
      }
    }

    it("strips sslmode and sslrootcert from the URL, so pg-connection-string cannot re-read them", () => {
      const cfg = registryPgConfig(urlFor("localhost", "verify-full", "&sslrootcert=system"));
      assert.doesNotMatch(cfg.connectionString, /ssl/);
      // pg-connection-string turns any sslmode into `ssl: {}` (verify against Node's CAs), which
      // overrides the client's own `ssl` (pg lib/connection-parameters.js merges it last).
      assert.equal(parse(cfg.connectionString).ssl, undefined);
      assert.deepEqual(parse(urlFor("localhost", "require")).ssl, {});
    });

    it("pg's own reading of sslmode=require verifies against Node's CAs and fails on a private CA", async () => {
      const db = new Client({ connectionString: urlFor("localhost", "require") });
      await assert.rejects(db.connect(), /unable to verify the first certificate/);
      await db.end().catch(() => undefined);
    });

    it("verify-full with the CA succeeds over TLS", async () => {
      assert.equal(await connect(urlFor("localhost", "verify-full"), pki.ca), true);
    });

    it("verify-full without the CA fails, naming sslrootcert and where to set it", async () => {
      await assert.rejects(
        connect(urlFor("localhost", "verify-full")),
        (e: Error) =>
          /unable to verify the first certificate \(sslmode=verify-full\)/.test(e.message) &&
          /registry\.sslrootcert in the stack, --sslrootcert or PGSSLROOTCERT/.test(e.message) &&
          /REGISTRY_SSLROOTCERT for the router/.test(e.message),
      );
    });

    it("verify-full against a certificate for another host name fails (cert: localhost, host: 127.0.0.1)", async () => {
      await assert.rejects(
        connect(urlFor("127.0.0.1", "verify-full"), pki.ca),
        /IP: 127\.0\.0\.1 is not in the cert's list.*sslmode=verify-full checks the host name.*verify-ca/,
      );
    });

    it("verify-ca with the CA accepts a wrong host name (chain only)", async () => {
      assert.equal(await connect(urlFor("127.0.0.1", "verify-ca"), pki.ca), true);
    });

    it("verify-ca with a CA that did not sign the server certificate fails", async () => {
      await assert.rejects(
        connect(urlFor("localhost", "verify-ca"), pki.otherCa),
        /not signed by the CA in sslrootcert/,
      );
    });

    it("verify-ca without a CA is refused before connecting (as libpq without root.crt)", () => {
      assert.throws(
        () => registryPgConfig(urlFor("localhost", "verify-ca")),
        /verify-ca needs the CA .*sslrootcert/,
      );
    });

    it("require without a CA encrypts without verifying: succeeds against the private CA", async () => {
      assert.equal(await connect(urlFor("127.0.0.1", "require")), true);
    });

    it("require with a CA behaves as verify-ca (libpq: 'if a root CA file exists')", async () => {
      assert.equal(await connect(urlFor("127.0.0.1", "require"), pki.ca), true);
      await assert.rejects(
        connect(urlFor("localhost", "require"), pki.otherCa),
        /not signed by the CA in sslrootcert/,
      );
    });

    it("sslrootcert in the URL is read as a file (libpq's parameter)", async () => {
      const url = urlFor(
        "localhost",
        "verify-full",
        `&sslrootcert=${encodeURIComponent(pki.caFile)}`,
      );
      assert.equal(await connect(url), true);
      assert.throws(
        () =>
          registryPgConfig(urlFor("localhost", "verify-full", "&sslrootcert=/nonexistent/ca.pem")),
        /sslrootcert: cannot read '\/nonexistent\/ca\.pem' \(ENOENT\)/,
      );
    });

    it("sslrootcert=system allows only verify-full (libpq 16+)", () => {
      assert.throws(
        () => registryPgConfig(urlFor("localhost", "require", "&sslrootcert=system")),
        /sslrootcert=system needs sslmode=verify-full/,
      );
    });

    it("disable against a server that requires TLS fails, saying to turn TLS on", async () => {
      await assert.rejects(
        connect(urlFor("localhost", "disable")),
        /no pg_hba\.conf entry .*no encryption: the server requires TLS; add sslmode=require/,
      );
    });

    it("allow and prefer are refused: they fall back to plaintext", () => {
      for (const mode of ["allow", "prefer"])
        assert.throws(
          () => registryPgConfig(urlFor("localhost", mode)),
          new RegExp(`sslmode=${mode} is not supported .*falls back to an unencrypted connection`),
        );
    });

    it("other ssl parameters are refused rather than silently reinterpreted by pg", () => {
      assert.throws(
        () => registryPgConfig(urlFor("localhost", "require", "&sslcert=client.crt")),
        /'sslcert' is not supported/,
      );
    });
  });

  describe("the migrations and registry-entry providers", () => {
    it("migrate and write a row with the CA as a PEM input; without it they fail naming sslrootcert", async () => {
      const connectionString = urlFor("localhost", "verify-full");
      const created = await registryMigrationsProvider.create!({
        connectionString,
        caCertificate: pki.ca,
        migrations: MIGRATION_SET,
      });
      assert.equal(created.outs.version, LATEST_VERSION);

      await assert.rejects(
        registryMigrationsProvider.update!(created.id, created.outs, {
          connectionString,
          migrations: MIGRATION_SET,
        }),
        /cannot reach the registry database .*sslmode=verify-full.*registry\.sslrootcert/,
      );

      const entry = await registryEntryProvider.create!({
        connectionString,
        caCertificate: pki.ca,
        environment: "development",
        modelName: "tls-model",
        endpoint: "tls-model-development.llm.svc.cluster.local:8000",
        namespace: "llm",
        servedModelName: "tls-model",
        fallbacks: [],
        enabled: true,
        managedBy: "development",
      });
      assert.equal(entry.outs.status, "ready");
      const read = await registryEntryProvider.read!(entry.id, entry.outs);
      assert.equal(read.props?.endpoint, "tls-model-development.llm.svc.cluster.local:8000");
    });

    it("a new CA is a change the registry entry diffs (read and delete use the state's)", async () => {
      const olds = { caCertificate: pki.ca, connectionString: "postgresql://x" };
      const diff = await registryEntryProvider.diff!(
        "id",
        olds as never,
        {
          ...olds,
          caCertificate: pki.otherCa,
        } as never,
      );
      assert.equal(diff.changes, true);
    });
  });

  describe("the router process", () => {
    it("reads its CA from REGISTRY_SSLROOTCERT and serves the registry's models over verify-full", async () => {
      const databaseUrl = urlFor("localhost", "verify-full");
      await withRegistryClient(
        databaseUrl,
        async (db) => {
          await migrate(db);
          await upsertEntry(db, {
            modelName: "tls-model",
            environment: "development",
            endpoint: "tls-model-development.llm.svc.cluster.local:8000",
            namespace: "llm",
          });
        },
        { ca: pki.ca },
      );
      const router = await startRouter({
        DATABASE_URL: databaseUrl,
        REGISTRY_SSLROOTCERT: pki.caFile,
        ROUTER_ENVIRONMENT: "development",
      });
      try {
        const res = await fetch(`${router.url}/v1/models`);
        assert.equal(res.status, 200);
        const body = (await res.json()) as { data: { id: string }[] };
        assert.deepEqual(
          body.data.map((m) => m.id),
          ["tls-model"],
        );
      } finally {
        await router.stop();
      }
    });

    it("without REGISTRY_SSLROOTCERT the router cannot load the registry and says why", async () => {
      const router = await startRouter(
        { DATABASE_URL: urlFor("localhost", "verify-full"), ROUTER_ENVIRONMENT: "development" },
        { waitReady: false },
      );
      try {
        const deadline = Date.now() + 10000;
        while (!router.output.some((l) => /REGISTRY_SSLROOTCERT/.test(l)) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 100));
        assert.ok(
          router.output.some((l) =>
            /sslmode=verify-full.*REGISTRY_SSLROOTCERT for the router/.test(l),
          ),
          router.output.join("\n"),
        );
        assert.notEqual((await fetch(`${router.url}/readyz`)).status, 200);
      } finally {
        await router.stop();
      }
    });

    it("an unreadable REGISTRY_SSLROOTCERT is a configuration error (exit 2) naming the variable", async () => {
      await assert.rejects(
        startRouter({
          DATABASE_URL: urlFor("localhost", "verify-full"),
          REGISTRY_SSLROOTCERT: "/nonexistent/ca.crt",
          ROUTER_ENVIRONMENT: "development",
        }),
        /exited with 2[\s\S]*REGISTRY_SSLROOTCERT: cannot read '\/nonexistent\/ca\.crt' \(ENOENT\)/,
      );
    });
  });

  describe("the registry CLI", () => {
    async function cli(env: Record<string, string>, ...args: string[]) {
      const out: string[] = [];
      const err: string[] = [];
      const code = await run(args, { env, out: (s) => out.push(s), err: (s) => err.push(s) });
      return { code, out: out.join("\n"), err: err.join("\n") };
    }

    it("--sslrootcert and PGSSLROOTCERT give the CA; without one verify-full fails naming them", async () => {
      const env = { DATABASE_URL: urlFor("localhost", "verify-full") };
      const flag = await cli(env, "--sslrootcert", pki.caFile, "migrate");
      assert.equal(flag.code, 0, flag.err);
      const register = await cli(
        { ...env, PGSSLROOTCERT: pki.caFile },
        "register",
        "--model-name",
        "tls-model",
        "--endpoint",
        "tls-model-development.llm.svc.cluster.local:8000",
        "--environment",
        "development",
        "--namespace",
        "llm",
      );
      assert.equal(register.code, 0, register.err);

      const fromEnv = await cli({ ...env, PGSSLROOTCERT: pki.caFile }, "list", "--format", "json");
      assert.equal(fromEnv.code, 0, fromEnv.err);
      assert.match(fromEnv.out, /"modelName": "tls-model"/);

      const without = await cli(env, "list");
      assert.equal(without.code, EXIT.unavailable, "the registry cannot be reached: exit 3");
      assert.match(without.err, /sslmode=verify-full.*--sslrootcert or PGSSLROOTCERT/);

      const missing = await cli({ ...env, PGSSLROOTCERT: "/nonexistent/ca.pem" }, "list");
      assert.equal(missing.code, EXIT.usage);
      assert.match(missing.err, /PGSSLROOTCERT: cannot read '\/nonexistent\/ca\.pem'/);
    });
  });
});
