/**
 * The front door: a fastify app with Lambda's routes. Routes parse requests
 * and call control/ and frontend/; errors become AWS-shaped responses here,
 * in one place.
 */
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from "fastify";
import type { Limits } from "../config.js";
import {
  LambdaError,
  RequestTooLarge,
  ServiceError,
  UnknownOperation,
  UnsupportedMediaType,
} from "../errors.js";
import type { Platform } from "../platform.js";
import { registerAuth } from "./auth.js";
import { registerConsoleRoutes } from "./console.js";
import {
  clientErrorHandler,
  createHttpServer,
  frameworkErrors,
  sendError,
  sendJsonProtocolError,
} from "./front-door.js";
import { functionUrlDoor } from "./function-url.js";
import { registerModelValidation, registerUnimplementedOperations } from "./operations.js";
import { registerAccountRoutes } from "./routes/account.js";
import { registerAliasRoutes } from "./routes/aliases.js";
import { registerCapacityProviderRoutes } from "./routes/capacity-providers.js";
import {
  CBOR_PATH_PREFIX,
  cloudWatchHandler,
  cloudWatchProtocolOf,
  sendCloudWatchError,
} from "./routes/cloudwatch.js";
import { cloudWatchLogsHandler, logsOperationOf } from "./routes/cloudwatch-logs.js";
import { registerConcurrencyRoutes } from "./routes/concurrency.js";
import { registerDevMountRoutes } from "./routes/dev-mounts.js";
import { registerEnvironmentRoutes } from "./routes/environments.js";
import { registerEventInvokeConfigRoutes } from "./routes/event-invoke-config.js";
import { registerEventSourceRoutes } from "./routes/event-sources.js";
import { registerFunctionSettingsRoutes } from "./routes/function-settings.js";
import { registerFunctionUrlRoutes } from "./routes/function-urls.js";
import { registerFunctionRoutes } from "./routes/functions.js";
import { registerInvokeRoutes } from "./routes/invoke.js";
import { registerKeyRoutes } from "./routes/keys.js";
import { registerLayerRoutes } from "./routes/layers.js";
import { registerLogRoutes } from "./routes/logs.js";
import { registerPermissionRoutes } from "./routes/permissions.js";
import { registerPrometheusRoutes } from "./routes/prometheus.js";
import { registerScheduleRoutes } from "./routes/schedules.js";
import { registerStackRoutes } from "./routes/stacks.js";
import { registerTagRoutes } from "./routes/tags.js";

export function buildApp(platform: Platform): FastifyInstance {
  const app = Fastify({
    logger: false,
    // Base64 zips of up to 50 MB arrive inside JSON bodies.
    bodyLimit: Math.ceil((platform.options.limits.zipBytes * 4) / 3) + 1024 * 1024,
    routerOptions: { maxParamLength: 2048 },
    return503OnClosing: false,
    genReqId: () => randomUUID(),
    forceCloseConnections: false,
    // Timeouts and the per-client connection cap live on the Node server (front-door.ts).
    // Function URL requests (by Host or /_lambent/urls/) are claimed before fastify routes anything.
    serverFactory: (handler) => {
      const claim = functionUrlDoor(platform);
      return createHttpServer(platform.options.http)((req, res) => {
        if (!claim(req, res)) handler(req, res);
      });
    },
    clientErrorHandler,
    frameworkErrors,
  });

  // Every body arrives as raw bytes; routes decide how to read it (JSON, or an invoke payload).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.addHook("onSend", async (req, reply) => {
    if (!reply.hasHeader("x-amzn-RequestId")) reply.header("x-amzn-RequestId", req.id);
  });

  app.setErrorHandler((err: FastifyError | LambdaError, req, reply) => {
    const e = toLambdaError(err, req, platform.options.limits);
    if (e.statusCode >= 500 && !platform.options.quiet) {
      console.error(`lambent: ${req.method} ${req.url} failed:`, err);
    }
    // CloudWatch Logs speaks JSON 1.1, CloudWatch CBOR or query: their errors too, authentication's included.
    const cloudwatch = cloudWatchProtocolOf(req);
    if (cloudwatch !== undefined) {
      sendCloudWatchError(
        reply,
        cloudwatch,
        e.type === "ServiceException" ? new LambdaError("InternalServiceFault", 500, e.message) : e,
        req.id,
      );
    } else if (logsOperationOf(req) !== undefined) {
      sendJsonProtocolError(
        reply,
        e.type === "ServiceException" ? new LambdaError("ServiceUnavailableException", 500, e.message) : e,
      );
    } else sendError(reply, e);
  });

  app.setNotFoundHandler((req, reply) => {
    sendError(reply, UnknownOperation(`Unknown operation: ${req.method} ${req.url.split("?")[0]}`));
  });

  registerAuth(app, platform);
  app.get("/health", async () => platform.health());
  registerConsoleRoutes(app);

  // Every request of a model operation is checked against the model first, as AWS's front end does.
  registerModelValidation(app, platform.options.region);

  registerFunctionRoutes(app, platform);
  registerInvokeRoutes(app, platform);
  registerAccountRoutes(app, platform);
  registerTagRoutes(app, platform);
  registerLogRoutes(app, platform);
  registerCloudWatchRoutes(app, platform);
  registerPrometheusRoutes(app, platform);
  registerEventInvokeConfigRoutes(app, platform);
  registerAliasRoutes(app, platform);
  registerConcurrencyRoutes(app, platform);
  registerCapacityProviderRoutes(app, platform);
  registerEventSourceRoutes(app, platform);
  registerEnvironmentRoutes(app, platform);
  registerLayerRoutes(app, platform);
  registerFunctionSettingsRoutes(app, platform);
  registerPermissionRoutes(app, platform);
  registerFunctionUrlRoutes(app, platform);
  registerKeyRoutes(app, platform);
  registerScheduleRoutes(app, platform);
  registerStackRoutes(app, platform);
  registerDevMountRoutes(app, platform);
  // Last: every model operation nothing above routed gets its AWS-shaped "not supported yet" answer.
  registerUnimplementedOperations(app);
  return app;
}

/**
 * `POST /` is three APIs told apart by protocol: CloudWatch Logs (JSON 1.1, `X-Amz-Target:
 * Logs_20140328.*`), CloudWatch's JSON 1.0 (`X-Amz-Target: GraniteServiceVersion20100801.*`) and its
 * query protocol (a form-encoded body); CloudWatch's CBOR protocol has paths of its own.
 */
function registerCloudWatchRoutes(app: FastifyInstance, platform: Platform): void {
  const logs = cloudWatchLogsHandler(platform);
  const metrics = cloudWatchHandler(platform);
  app.post("/", async (req, reply) => {
    const operation = logsOperationOf(req);
    if (operation !== undefined) return logs(req, reply, operation);
    const cloudwatch = cloudWatchProtocolOf(req);
    if (cloudwatch === "json" || cloudwatch === "query") return metrics(req, reply, cloudwatch);
    throw new LambdaError("UnknownOperationException", 404, "Unknown operation: POST /");
  });
  app.post(`${CBOR_PATH_PREFIX}:operation`, async (req, reply) => metrics(req, reply, "cbor"));
}

/** The operations whose request bodies carry a zip, by route (for the body-too-large message). */
const ZIP_OPERATIONS: Record<string, string> = {
  "POST /2015-03-31/functions": "CreateFunction",
  "PUT /2015-03-31/functions/:FunctionName/code": "UpdateFunctionCode",
};

function toLambdaError(err: FastifyError | LambdaError, req: FastifyRequest, limits: Limits): LambdaError {
  if (err instanceof LambdaError) return err;
  if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    const route = req.routeOptions.url ?? "";
    // An invoke payload far over its limit: the same answer as one just over it.
    if (route.endsWith("/invocations") || route.includes("/invoke-async")) {
      const max = route.endsWith("/invocations") ? limits.syncPayloadBytes : limits.asyncPayloadBytes;
      return RequestTooLarge(`Request must be smaller than ${max} bytes for the InvokeFunction operation`);
    }
    const zipBytes = limits.zipBytes;
    const operation = ZIP_OPERATIONS[`${req.method} ${route}`];
    return new LambdaError(
      "RequestEntityTooLargeException",
      413,
      operation
        ? `Request must be smaller than ${Math.ceil((zipBytes * 4) / 3)} bytes for the ${operation} operation`
        : "Request must be smaller than the maximum request size.",
    );
  }
  if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return UnsupportedMediaType(err.message);
  if (typeof err.statusCode === "number" && err.statusCode < 500) {
    return new LambdaError("InvalidRequestContentException", err.statusCode, err.message);
  }
  return ServiceError("An internal error occurred in Lambent. It has been logged on the server.");
}
