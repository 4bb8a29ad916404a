// Mocha root hooks: tear down servers the run started itself.
import { stopSharedServices } from "./services";

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(30000);
    await stopSharedServices();
  },
};
