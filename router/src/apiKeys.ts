// API keys: a file with one key per line, either plaintext or `sha256:<64 hex>`. Only hashes
// are kept in memory and presented keys are compared hash-to-hash in constant time.
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { ROUTER_ENV } from "./contract";

const HASHED = /^sha256:([0-9a-f]{64})$/i;

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

export class ApiKeys {
  private constructor(private readonly hashes: Buffer[]) {}

  /** Reads `path`; blank lines and `#` comments are ignored. Throws naming the file when it holds no key. */
  static fromFile(path: string): ApiKeys {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new Error(
        `${ROUTER_ENV.apiKeysFile}: cannot read ${path} (${(e as NodeJS.ErrnoException).code})`,
      );
    }
    const hashes = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => {
        const m = HASHED.exec(l);
        return m ? Buffer.from(m[1], "hex") : sha256(l);
      });
    if (!hashes.length) {
      throw new Error(
        `${ROUTER_ENV.apiKeysFile}: ${path} holds no keys; add one key (or sha256:<hex>) per line, or unset the variable`,
      );
    }
    return new ApiKeys(hashes);
  }

  /** True when the `Authorization: Bearer <key>` header carries a known key. */
  accepts(authorization: string | undefined): boolean {
    if (!authorization || !authorization.startsWith("Bearer ")) return false;
    const presented = sha256(authorization.slice(7).trim());
    let ok = false;
    // Every stored hash is compared, so timing does not reveal which one matched.
    for (const h of this.hashes) ok = timingSafeEqual(h, presented) || ok;
    return ok;
  }
}
