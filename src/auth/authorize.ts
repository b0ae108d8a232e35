/**
 * Authorization: the identity policy of the caller (key or execution role)
 * and the resource-based policy of the function or layer version the request
 * is about, combined as IAM does within one account — an explicit Deny in
 * either wins; otherwise an Allow in either allows (so a key granted by a
 * function's resource policy may invoke it although its own policy says
 * nothing); otherwise 403 AccessDeniedException with AWS's message:
 * "User: <arn> is not authorized to perform: <action> on resource: <arn>
 * because no identity-based policy allows the <action> action"
 * (seen from Lambda in slackapi/bolt-python#632), or "… with an explicit deny
 * in an identity-based policy" / "… in a resource-based policy".
 */
import { ACCOUNT_ID } from "../config.js";
import type { PermissionService } from "../control/permissions.js";
import { LambdaError } from "../errors.js";
import { type RequiredPermission, requiredPermission } from "./actions.js";
import type { Principal } from "./keys.js";
import { evaluate, type RequestContext } from "./policy.js";

export const AccessDenied = (m: string) => new LambdaError("AccessDeniedException", 403, m);

export class Authorizer {
  constructor(private readonly permissions: PermissionService) {}

  /** Throws AccessDeniedException unless the principal may make this request. */
  async check(
    principal: Principal,
    method: string,
    rawPath: string,
    query: Array<[string, string]>,
    region: string,
  ): Promise<void> {
    // The account's root may do anything: working out the action and resource would be wasted.
    if (principal.kind === "root") return;
    await this.checkPermission(principal, requiredPermission(method, rawPath, query, region), region, {
      method,
      rawPath,
    });
  }

  /** Throws AccessDeniedException unless the principal may have `need` (checked as for a request). */
  async checkPermission(
    principal: Principal,
    need: RequiredPermission,
    region: string,
    request?: { method: string; rawPath: string },
  ): Promise<RequiredPermission> {
    if (principal.kind === "root") return need;
    const deny = (why: string) =>
      AccessDenied(
        `User: ${principal.arn} is not authorized to perform: ${need.action} on resource: ${need.resource} ${why}`,
      );
    if (principal.kind === "internal") {
      // The presigning credential downloads packages and nothing else.
      if (request?.method === "GET" && /^\/_lambent\/(code|layers)\/[^/]+$/.test(request.rawPath))
        return need;
      throw deny(`because no identity-based policy allows the ${need.action} action`);
    }
    const ctx: RequestContext = {
      action: need.action,
      resource: need.resource,
      principalArn: principal.arn,
      keys: {
        "aws:principalarn": principal.arn,
        "aws:principalaccount": ACCOUNT_ID,
        "aws:requestedregion": region,
      },
    };
    if (principal.roleArn) ctx.roleArn = principal.roleArn;
    const identity = evaluate(principal.policy, ctx, false);
    if (identity === "deny") throw deny("with an explicit deny in an identity-based policy");
    let resource: "allow" | "deny" | "implicit" = "implicit";
    if (need.function) {
      const doc = await this.permissions.policyFor(
        "function",
        need.function.name,
        need.function.qualifier ?? "",
      );
      resource = evaluate(doc, ctx, true);
    } else if (need.layerVersion) {
      const doc = await this.permissions.policyFor(
        "layer",
        need.layerVersion.name,
        String(need.layerVersion.version),
      );
      resource = evaluate(doc, ctx, true);
    }
    if (resource === "deny") throw deny("with an explicit deny in a resource-based policy");
    if (identity === "allow" || resource === "allow") return need;
    throw deny(`because no identity-based policy allows the ${need.action} action`);
  }

  /**
   * May this request reach a function URL? As Lambda decides since its October 2025 authorization
   * model: both `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` on the function (qualified by
   * the URL's alias) must be allowed, with `lambda:FunctionUrlAuthType` and
   * `lambda:InvokedViaFunctionUrl` (true) known to the conditions. For `NONE` the caller is anonymous:
   * only the function's resource policy can allow it (statements for principal `*`, as AddPermission
   * with `FunctionUrlAuthType` / `InvokedViaFunctionUrl` makes them). For `AWS_IAM` the signed
   * caller's identity policy or the resource policy allows each action, as for any action. Answers the
   * decision instead of throwing.
   */
  async mayInvokeFunctionUrl(
    principal: Principal | null,
    fn: { name: string; qualifier?: string; arn: string },
    authType: "NONE" | "AWS_IAM",
    region: string,
  ): Promise<boolean> {
    if (principal?.kind === "root") return true;
    if (principal?.kind === "internal") return false;
    const doc = await this.permissions.policyFor("function", fn.name, fn.qualifier ?? "");
    const allowed = (action: string): boolean => {
      const ctx: RequestContext = {
        action,
        resource: fn.arn,
        principalArn: principal?.arn ?? "anonymous",
        keys: {
          "lambda:functionurlauthtype": authType,
          "lambda:invokedviafunctionurl": "true",
          "aws:requestedregion": region,
          ...(principal ? { "aws:principalarn": principal.arn, "aws:principalaccount": ACCOUNT_ID } : {}),
        },
      };
      if (principal?.roleArn) ctx.roleArn = principal.roleArn;
      const identity = principal ? evaluate(principal.policy, ctx, false) : "implicit";
      if (identity === "deny") return false;
      const resource = evaluate(doc, ctx, true);
      if (resource === "deny") return false;
      return identity === "allow" || resource === "allow";
    };
    return allowed("lambda:InvokeFunctionUrl") && allowed("lambda:InvokeFunction");
  }
}
