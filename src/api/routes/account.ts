/** GetAccountSettings. */
import type { FastifyInstance } from "fastify";
import type { Platform } from "../../platform.js";

export function registerAccountRoutes(app: FastifyInstance, platform: Platform): void {
  const settings = async () => {
    const { count, codeSize } = await platform.functions.countFunctions();
    const { limits, accountConcurrency } = platform.options;
    return {
      AccountLimit: {
        TotalCodeSize: 80530636800,
        CodeSizeUnzipped: limits.unzippedBytes,
        CodeSizeZipped: limits.zipBytes,
        ConcurrentExecutions: accountConcurrency,
        UnreservedConcurrentExecutions: await platform.unreservedConcurrency(),
      },
      AccountUsage: { TotalCodeSize: codeSize, FunctionCount: count },
    };
  };
  app.get("/2016-08-19/account-settings", settings);
  app.get("/2016-08-19/account-settings/", settings);
}
