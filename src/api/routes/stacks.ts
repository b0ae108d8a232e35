/**
 * Stacks of `lambent deploy` (`/_lambent/stacks`): the CLI reads a stack's state
 * before a deploy and writes it after every step. Authorized like everything
 * else, with `lambent:ListStacks`, `lambent:DescribeStack`, `lambent:PutStack`
 * and `lambent:DeleteStack` (see auth/actions.ts).
 */
import type { FastifyInstance } from "fastify";
import { constraintViolation } from "../../errors.js";
import type { Platform } from "../../platform.js";
import { jsonBody, pathParam, queryString, requestRegion } from "../request.js";

export function registerStackRoutes(app: FastifyInstance, platform: Platform): void {
  const stacks = platform.stacks;

  app.get("/_lambent/stacks", async () => ({ Stacks: await stacks.list() }));

  app.get("/_lambent/stacks/:StackName", async (req) => stacks.get(pathParam(req, "StackName")));

  app.put("/_lambent/stacks/:StackName", async (req) =>
    stacks.put(pathParam(req, "StackName"), jsonBody(req), requestRegion(req, platform.options.region)),
  );

  app.delete("/_lambent/stacks/:StackName", async (req, reply) => {
    const raw = queryString(req, "Revision");
    const revision = raw === undefined ? undefined : Number(raw);
    if (revision !== undefined && (!Number.isInteger(revision) || revision < 1)) {
      throw constraintViolation("revision", raw, "Member must be a positive integer");
    }
    await stacks.delete(pathParam(req, "StackName"), revision);
    reply.code(204);
    return "";
  });
}
