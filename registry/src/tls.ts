// libpq's `sslmode` for node-postgres, so every registry client (router, migrations, registry
// entries, CLI, verify/status) means what the Terraform postgresql provider (lib/pq) means.
// pg reads `sslmode` in a URL its own way: pg-connection-string's `parse` turns require,
// verify-ca and verify-full alike into full verification against Node's bundled CAs
// (brianc/node-postgres packages/pg-connection-string/index.js), so a registry on a private CA
// fails there and works in the provider. Here instead, per libpq's table "SSL Mode Descriptions"
// (https://www.postgresql.org/docs/current/libpq-ssl.html):
//   disable      no TLS
//   require      TLS, certificate not checked; with a root CA given, as verify-ca
//   verify-ca    TLS, chain checked against the CA, host name not checked
//   verify-full  TLS, chain and host name checked
// allow and prefer are rejected: both fall back to plaintext when TLS fails, which an active
// attacker can force, and pg cannot fall back anyway. Without `sslmode` pg's own default stays
// (no TLS). The TLS parameters are taken out of the URL so pg never applies its reading.
import * as fs from "node:fs";
import type { ConnectionOptions } from "node:tls";

export const SSL_MODES = ["disable", "require", "verify-ca", "verify-full"] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** Where each client takes a CA from, for error messages that say how to set it. */
export const SSLROOTCERT_HINT =
  "set the registry's CA certificate (PEM): registry.sslrootcert in the stack, --sslrootcert or PGSSLROOTCERT for the scripts, REGISTRY_SSLROOTCERT for the router";

/** A registry URL turned into pg options: the URL without TLS parameters, and `ssl`. */
export interface RegistryPgConfig {
  connectionString: string;
  ssl: false | ConnectionOptions;
  sslmode: SslMode;
}

/**
 * pg client options with libpq's sslmode semantics. `ca` (PEM text) is the trusted root; without
 * it a `sslrootcert` path in the URL is read (libpq's own parameter), and `sslrootcert=system`
 * means Node's bundled CAs (libpq then requires verify-full). Throws on modes pg cannot honour.
 */
export function registryPgConfig(url: string, ca?: string): RegistryPgConfig {
  // Without a query there is nothing to read: keep the URL exactly as given.
  if (!url.includes("?"))
    return { connectionString: url, ssl: sslOptions("disable", ca), sslmode: "disable" };
  const u = new URL(url);
  const mode = u.searchParams.get("sslmode") ?? "disable";
  const rootcert = u.searchParams.get("sslrootcert") ?? undefined;
  for (const key of [...u.searchParams.keys()]) {
    if (key === "sslmode" || key === "sslrootcert") u.searchParams.delete(key);
    else if (key.startsWith("ssl") || key === "uselibpqcompat")
      // pg-connection-string would rebuild `ssl` from these and override the options below.
      throw new Error(
        `registry URL parameter '${key}' is not supported (only sslmode and sslrootcert); remove it`,
      );
  }
  if (!(SSL_MODES as readonly string[]).includes(mode))
    throw new Error(
      `sslmode=${mode} is not supported for the registry: ${
        mode === "allow" || mode === "prefer"
          ? "it falls back to an unencrypted connection when TLS fails; use require (or verify-full) to encrypt, or disable"
          : `use one of ${SSL_MODES.join(", ")}`
      }`,
    );
  const sslmode = mode as SslMode;
  const root =
    ca ?? (rootcert && rootcert !== "system" ? readCaFile(rootcert, "sslrootcert") : undefined);
  if (rootcert === "system" && ca === undefined && sslmode !== "verify-full")
    // libpq: "When using sslrootcert=system, ... any weaker setting will result in an error."
    throw new Error(
      `sslrootcert=system needs sslmode=verify-full (got ${sslmode}): public CAs sign anyone's host`,
    );
  return { connectionString: u.toString(), ssl: sslOptions(sslmode, root), sslmode };
}

/** A CA certificate file's PEM text; the error names the setting `what` and the fix. */
export function readCaFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(
      `${what}: cannot read '${file}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); point it at the PEM file of the registry's CA`,
    );
  }
}

function sslOptions(sslmode: SslMode, ca: string | undefined): false | ConnectionOptions {
  // Node verifies the chain when rejectUnauthorized is true (its default) and the host name in
  // checkServerIdentity; returning undefined from it accepts any name
  // (https://nodejs.org/api/tls.html#tlsconnectoptions-callback).
  const verifyCa: ConnectionOptions = { ca, checkServerIdentity: () => undefined };
  switch (sslmode) {
    case "disable":
      return false;
    case "require":
      return ca ? verifyCa : { rejectUnauthorized: false };
    case "verify-ca":
      // As libpq (root.crt must exist): a chain check against public CAs proves nothing.
      if (!ca)
        throw new Error(
          `sslmode=verify-ca needs the CA that signs the server certificate (sslrootcert); ${SSLROOTCERT_HINT}, or use verify-full`,
        );
      return verifyCa;
    case "verify-full":
      // No CA: Node's bundled roots, as lib/pq's system roots and libpq's sslrootcert=system.
      return ca ? { ca } : {};
  }
}

const CHAIN_ERRORS = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "CERT_SIGNATURE_FAILURE",
]);

/** A connection error with what to do about it when TLS (or its absence) is the cause. */
export function explainConnectError(err: unknown, tls: RegistryPgConfig): string {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  if (e.code && CHAIN_ERRORS.has(e.code))
    return tls.ssl && tls.ssl.ca
      ? `${message} (sslmode=${tls.sslmode}): the server certificate is not signed by the CA in sslrootcert; set sslrootcert to the CA that signed it`
      : `${message} (sslmode=${tls.sslmode}): the server certificate is not signed by a CA Node trusts; ${SSLROOTCERT_HINT}`;
  if (e.code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return `${message} (sslmode=verify-full checks the host name): connect with a host name the certificate lists, or use sslmode=verify-ca with sslrootcert`;
  if (/does not support SSL/.test(message))
    return `${message} (sslmode=${tls.sslmode}): enable TLS on the server, or use sslmode=disable on a trusted network`;
  if (tls.sslmode === "disable" && /no encryption/.test(message))
    return `${message}: the server requires TLS; add sslmode=require (or verify-full) to the URL`;
  return message;
}
