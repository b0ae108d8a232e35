/**
 * EventBridge Scheduler's REST-JSON API (signed for service `scheduler`):
 * `/schedules/{Name}`, `/schedule-groups/{Name}`, `/tags/{ResourceArn}`. Every
 * request is checked against the generated Scheduler model first.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Platform } from "../../platform.js";
import { SCHEDULER_OPERATIONS, SCHEDULER_SHAPES } from "../generated/scheduler-model.js";
import { jsonBody, pathParam, queryList, queryString, requestRegion } from "../request.js";
import { type ShapeTable, validateRequest } from "../validate.js";

const SCHEDULER_TABLE: ShapeTable = {
  shapes: SCHEDULER_SHAPES,
  serviceChecked: new Set(),
  // Dead-letter targets may be any of Lambent's destination URIs (as for async invoke).
  uriExtensions: new Set(["DeadLetterConfigArnString"]),
};

/** Check a request against its operation's input shape; answers the parsed body. */
function checked(req: FastifyRequest, operation: keyof typeof SCHEDULER_OPERATIONS): Record<string, unknown> {
  const op = SCHEDULER_OPERATIONS[operation];
  if (!op) throw new Error(`no Scheduler operation ${String(operation)}`);
  const body = req.method === "POST" || req.method === "PUT" ? jsonBody(req) : undefined;
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries((req.params ?? {}) as Record<string, string>)) params[k] = v;
  validateRequest(
    op,
    {
      params,
      query: (req.query ?? {}) as Record<string, unknown>,
      headers: req.headers as Record<string, unknown>,
      body,
    },
    SCHEDULER_TABLE,
  );
  return body ?? {};
}

function maxResults(req: FastifyRequest): number | undefined {
  const raw = queryString(req, "MaxResults");
  return raw === undefined ? undefined : Number(raw);
}

export function registerScheduleRoutes(app: FastifyInstance, platform: Platform): void {
  const s = platform.schedules;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);
  const opt = <T>(name: string, v: T | undefined) => (v === undefined ? {} : { [name]: v });

  app.post("/schedules/:Name", async (req) => {
    const body = checked(req, "CreateSchedule");
    return s.create(pathParam(req, "Name"), region(req), body);
  });
  app.put("/schedules/:Name", async (req) => {
    const body = checked(req, "UpdateSchedule");
    return s.update(pathParam(req, "Name"), region(req), body);
  });
  app.get("/schedules/:Name", async (req) => {
    checked(req, "GetSchedule");
    return s.get(pathParam(req, "Name"), queryString(req, "groupName"));
  });
  app.delete("/schedules/:Name", async (req) => {
    checked(req, "DeleteSchedule");
    await s.delete(pathParam(req, "Name"), queryString(req, "groupName"));
    return {};
  });
  app.get("/schedules", async (req) => {
    checked(req, "ListSchedules");
    return s.list({
      ...opt("group", queryString(req, "ScheduleGroup")),
      ...opt("prefix", queryString(req, "NamePrefix")),
      ...opt("state", queryString(req, "State")),
      ...opt("max", maxResults(req)),
      ...opt("token", queryString(req, "NextToken")),
    });
  });

  app.post("/schedule-groups/:Name", async (req) => {
    const body = checked(req, "CreateScheduleGroup");
    return s.createGroup(
      pathParam(req, "Name"),
      region(req),
      (body.Tags as Array<{ Key: string; Value: string }> | undefined) ?? [],
    );
  });
  app.get("/schedule-groups/:Name", async (req) => {
    checked(req, "GetScheduleGroup");
    return s.getGroup(pathParam(req, "Name"), region(req));
  });
  app.delete("/schedule-groups/:Name", async (req) => {
    checked(req, "DeleteScheduleGroup");
    await s.deleteGroup(pathParam(req, "Name"));
    return {};
  });
  app.get("/schedule-groups", async (req) => {
    checked(req, "ListScheduleGroups");
    return s.listGroups(region(req), {
      ...opt("prefix", queryString(req, "NamePrefix")),
      ...opt("max", maxResults(req)),
      ...opt("token", queryString(req, "NextToken")),
    });
  });

  app.get("/tags/:ResourceArn", async (req) => {
    checked(req, "ListTagsForResource");
    return { Tags: await s.tagsOf(pathParam(req, "ResourceArn")) };
  });
  app.post("/tags/:ResourceArn", async (req) => {
    const body = checked(req, "TagResource");
    await s.tag(pathParam(req, "ResourceArn"), body.Tags as Array<{ Key: string; Value: string }>);
    return {};
  });
  app.delete("/tags/:ResourceArn", async (req) => {
    checked(req, "UntagResource");
    await s.untag(pathParam(req, "ResourceArn"), queryList(req, "TagKeys"));
    return {};
  });
}
