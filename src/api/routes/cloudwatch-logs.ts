/**
 * The CloudWatch Logs API (2014-03-28) on the same port as Lambda's: AWS's JSON 1.1 protocol,
 * `POST /` with `X-Amz-Target: Logs_20140328.<Operation>` and an `application/x-amz-json-1.1`
 * body, signed for the service `logs`. The body is checked against the model
 * (generated/logs-model.ts) before the operation runs: a body that is not a JSON object is a
 * SerializationException, a member of the wrong JSON type too, a broken constraint an
 * InvalidParameterException "N validation error(s) detected: …". Errors go out in JSON 1.1's
 * shape (`{"__type": …, "message": …}`) from app.ts's one error handler.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { LambdaError } from "../../errors.js";
import { InvalidParameter } from "../../logs/cloudwatch-logs.js";
import type { Platform } from "../../platform.js";
import { LOGS_OPERATIONS, LOGS_SHAPES, LOGS_TARGET_PREFIX } from "../generated/logs-model.js";
import { jsonProtocolBody, requestRegion } from "../request.js";
import { checkJsonInput, type ShapeTable } from "../validate.js";

export const LOGS_CONTENT_TYPE = "application/x-amz-json-1.1";

const TABLE: ShapeTable = { shapes: LOGS_SHAPES, serviceChecked: new Set(), uriExtensions: new Set() };

/**
 * The Logs operation a request names in `X-Amz-Target`, or undefined when it is not a Logs request
 * (only `POST /` is: the header on a Lambda route changes nothing, neither signing nor authorization).
 */
export function logsOperationOf(req: FastifyRequest): string | undefined {
  if (req.method !== "POST") return undefined;
  const url = req.raw.url ?? "";
  if (url !== "/" && !url.startsWith("/?")) return undefined;
  const target = req.headers["x-amz-target"];
  const value = Array.isArray(target) ? target[0] : target;
  if (typeof value !== "string" || !value.startsWith(`${LOGS_TARGET_PREFIX}.`)) return undefined;
  return value.slice(LOGS_TARGET_PREFIX.length + 1);
}

type Input = Record<string, unknown>;
type Handler = (input: Input, region: string) => Promise<Input> | Input;

/** Answers a request logsOperationOf named (app.ts routes `POST /` by protocol). */
export function cloudWatchLogsHandler(platform: Platform) {
  const logs = platform.cloudwatchLogs;
  const ops: Record<string, Handler> = {
    CreateLogGroup: (i) => logs.createLogGroup(i),
    DeleteLogGroup: (i) => logs.deleteLogGroup(i),
    DescribeLogGroups: (i, r) => logs.describeLogGroups(i, r),
    PutRetentionPolicy: (i) => logs.putRetentionPolicy(i),
    DeleteRetentionPolicy: (i) => logs.deleteRetentionPolicy(i),
    CreateLogStream: (i) => logs.createLogStream(i),
    DeleteLogStream: (i) => logs.deleteLogStream(i),
    DescribeLogStreams: (i, r) => logs.describeLogStreams(i, r),
    PutLogEvents: (i) => logs.putLogEvents(i),
    GetLogEvents: (i) => logs.getLogEvents(i),
    FilterLogEvents: (i) => logs.filterLogEvents(i),
    TestMetricFilter: (i) => logs.testMetricFilter(i),
    DescribeMetricFilters: (i) => logs.describeMetricFilters(i),
    DescribeSubscriptionFilters: (i) => logs.describeSubscriptionFilters(i),
    TagLogGroup: (i) => logs.tagLogGroup(i.logGroupName as string, i.tags as Record<string, string>),
    UntagLogGroup: (i) => logs.untagLogGroup(i.logGroupName as string, i.tags as string[]),
    ListTagsLogGroup: (i) => logs.listTags(i.logGroupName as string),
    TagResource: (i) =>
      logs.tagLogGroup(logs.groupOfArn(i.resourceArn as string), i.tags as Record<string, string>),
    UntagResource: (i) => logs.untagLogGroup(logs.groupOfArn(i.resourceArn as string), i.tagKeys as string[]),
    ListTagsForResource: (i) => logs.listTags(logs.groupOfArn(i.resourceArn as string)),
  };

  return async (req: FastifyRequest, reply: FastifyReply, operation: string): Promise<string> => {
    const model = LOGS_OPERATIONS[operation];
    if (!model) throw new LambdaError("UnknownOperationException", 400, `Unknown operation ${operation}`);
    const input = jsonProtocolBody(req);
    if (model.input) checkJsonInput(TABLE, model.input, input, InvalidParameter);
    const handler = ops[operation];
    if (!handler) {
      throw new LambdaError(
        "InvalidOperationException",
        400,
        `${operation} is not supported by Lambent yet (its CloudWatch Logs API serves log groups, streams, events, retention and tags).`,
      );
    }
    const out = await handler(input, requestRegion(req, platform.options.region));
    reply.header("content-type", LOGS_CONTENT_TYPE);
    return JSON.stringify(out);
  };
}
