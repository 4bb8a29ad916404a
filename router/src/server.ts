// Entry point: `node dist/server.js`, configured by environment variables (see config.ts).
import { RouterApp } from "./app";
import { readRouterConfig, RouterConfigError } from "./config";

async function main(): Promise<void> {
  let app: RouterApp;
  try {
    app = new RouterApp(readRouterConfig(process.env));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(err instanceof RouterConfigError ? 2 : 1);
  }
  const stop = (signal: string) => {
    app.logger.info({ signal }, "shutdown requested");
    const exit = (code: number) => app.logger.flush(() => process.exit(code));
    app.shutdown().then(
      () => exit(0),
      (err) => {
        app.logger.error({ err: (err as Error).message }, "shutdown failed");
        exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  await app.start();
}

main().catch((err) => {
  process.stderr.write(`router failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
