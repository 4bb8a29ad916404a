// Pods from a file, for platforms without cluster DNS (`npm run local`, the benchmark): a JSON
// object mapping registry endpoints to their pods' addresses,
//   {"llama-development.llm.svc.cluster.local:8000": ["127.0.0.1:8001", "127.0.0.1:8002"]}
// re-read every discovery round, so rewriting the file adds and removes pods. An endpoint the
// file does not list is sent to the endpoint itself.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { endpointProblems } from "@vllm-fleet/registry";
import type { Logger } from "../logger";
import type { PodSource } from "./discovery";

export type StaticPods = ReadonlyMap<string, readonly string[]>;

/** Parses the file's text; throws an Error listing every problem. */
export function parseStaticPods(text: string): StaticPods {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json))
    throw new Error('must be a JSON object: {"<endpoint host:port>": ["<pod host:port>", ...]}');
  const problems: string[] = [];
  const pods = new Map<string, readonly string[]>();
  for (const [endpoint, list] of Object.entries(json)) {
    problems.push(...endpointProblems(endpoint, "key"));
    if (!Array.isArray(list) || list.some((p) => typeof p !== "string")) {
      problems.push(`${JSON.stringify(endpoint)} must map to a list of "host:port" strings`);
      continue;
    }
    for (const p of list as string[]) problems.push(...endpointProblems(p, "pod"));
    pods.set(endpoint, list as string[]);
  }
  if (problems.length) throw new Error(problems.join("; "));
  return pods;
}

/** Reads and parses the file now (for the router's configuration, which fails fast). */
export function readStaticPods(file: string): StaticPods {
  return parseStaticPods(readFileSync(file, "utf8"));
}

export class StaticSource implements PodSource {
  private text?: string;
  private failure?: string;

  constructor(
    private readonly file: string,
    private pods: StaticPods,
    private readonly logger: Logger,
  ) {}

  covers(): boolean {
    return true;
  }

  async refresh(): Promise<void> {
    try {
      const text = await readFile(this.file, "utf8");
      if (text === this.text) return;
      this.text = text; // a bad edit is reported once, not re-read every round
      this.pods = parseStaticPods(text);
      this.failure = undefined;
    } catch (err) {
      // A file being rewritten, or a bad edit: keep the last good list.
      const message = (err as Error).message;
      if (message !== this.failure)
        this.logger.warn(
          { file: this.file, err: message },
          "static pod list unreadable; keeping the last one",
        );
      this.failure = message;
    }
  }

  async resolve(endpoint: string): Promise<string[]> {
    return [...(this.pods.get(endpoint) ?? [])];
  }
}
