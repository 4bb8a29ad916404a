// Children that die with their parent however it dies (SIGKILL included): on Linux the kernel
// sends them a signal when the process that spawned them exits (prctl PR_SET_PDEATHSIG, set by
// util-linux's `setpriv --pdeathsig` right before it execs the real program). Elsewhere the
// command runs as is and only an orderly teardown stops it.
import * as fs from "node:fs";

const SETPRIV = "/usr/bin/setpriv";

/** `[file, args]` to spawn so that the child gets `signal` when this process exits. */
export function withParentDeathSignal(
  file: string,
  args: string[],
  signal: NodeJS.Signals,
): [string, string[]] {
  if (process.platform !== "linux" || !fs.existsSync(SETPRIV)) return [file, args];
  // setpriv takes the name without the SIG prefix; `--` ends its own options.
  return [SETPRIV, ["--pdeathsig", signal.replace(/^SIG/, ""), "--", file, ...args]];
}
