// A throwaway private PKI for TLS tests, made with the openssl CLI: a CA and a server
// certificate for `localhost` only (so 127.0.0.1 is "another host name" for verify-full).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface TestPki {
  dir: string;
  /** PEM of the CA certificate, and the file holding it. */
  ca: string;
  caFile: string;
  /** PEM of a second, unrelated CA (it signed nothing the server presents). */
  otherCa: string;
  /** The server's certificate (SAN DNS:localhost) and key, PEM. */
  serverCert: string;
  serverKey: string;
}

function openssl(dir: string, ...args: string[]): void {
  try {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    throw new Error(
      `openssl ${args[0]} failed (${(e as Error).message}); install openssl (apt-get install openssl)`,
    );
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(dir: string, name: string): void {
  openssl(
    dir,
    "req",
    "-x509",
    ...EC,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/CN=vllm-fleet test ${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
}

export function makeTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vllm-fleet-pki-"));
  makeCa(dir, "ca");
  makeCa(dir, "other-ca");
  openssl(
    dir,
    "req",
    ...EC,
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  );
  fs.writeFileSync(
    path.join(dir, "server.ext"),
    "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "server.ext",
    "-out",
    "server.crt",
  );
  const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
  return {
    dir,
    ca: read("ca.crt"),
    caFile: path.join(dir, "ca.crt"),
    otherCa: read("other-ca.crt"),
    serverCert: read("server.crt"),
    serverKey: read("server.key"),
  };
}
