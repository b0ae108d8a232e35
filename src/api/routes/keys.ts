/**
 * Lambent's key and role administration (the `lambent keys` / `lambent roles`
 * commands talk to these): access keys with their identity policies, and the
 * identity policies of execution roles. Authorized like everything else, with
 * IAM action names (iam:CreateAccessKey, iam:PutRolePolicy, …).
 *
 * Why not IAM's own API: IAM speaks the aws-query protocol (form-encoded
 * requests, XML answers) on its own endpoint, with users, groups, attached and
 * managed policies; a handful of JSON routes cover what an operator of one
 * Lambent account needs, and keep the policy grammar identical to IAM's.
 */
import type { FastifyInstance } from "fastify";
import { ROLE_NAME_RE } from "../../auth/keys.js";
import { parsePolicy } from "../../auth/policy.js";
import { constraintViolation, InvalidRequestContent, ResourceNotFound } from "../../errors.js";
import type { Platform } from "../../platform.js";
import { jsonBody, pathParam } from "../request.js";

function rawPolicy(body: unknown): string {
  const raw = body as Buffer | undefined;
  if (!raw || raw.length === 0) throw InvalidRequestContent("The request body must be a policy document.");
  return raw.toString("utf8");
}

function roleName(raw: string): string {
  if (!ROLE_NAME_RE.test(raw)) {
    throw constraintViolation(
      "roleName",
      raw,
      "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
    );
  }
  return raw;
}

export function registerKeyRoutes(app: FastifyInstance, platform: Platform): void {
  const keys = platform.auth.keys;

  app.post("/_lambent/keys", async (req, reply) => {
    const body = jsonBody(req);
    const userName = body.UserName;
    if (typeof userName !== "string")
      throw constraintViolation("userName", "null", "Member must not be null");
    const policy = body.Policy === undefined ? null : parsePolicy(body.Policy, "identity");
    const created = await keys.create(userName, policy);
    reply.code(201);
    return {
      AccessKey: {
        AccessKeyId: created.accessKeyId,
        SecretAccessKey: created.secretAccessKey,
        UserName: userName,
        Arn: created.arn,
      },
    };
  });

  app.get("/_lambent/keys", async () => ({ AccessKeys: await keys.list() }));

  app.delete("/_lambent/keys/:AccessKeyId", async (req, reply) => {
    if (!(await keys.delete(pathParam(req, "AccessKeyId")))) {
      throw ResourceNotFound(`The Access Key with id ${pathParam(req, "AccessKeyId")} cannot be found.`);
    }
    reply.code(204);
    return "";
  });

  app.get("/_lambent/keys/:AccessKeyId/policy", async (req) => {
    const p = await keys.getPolicy(pathParam(req, "AccessKeyId"));
    if (p === undefined) {
      throw ResourceNotFound(`The Access Key with id ${pathParam(req, "AccessKeyId")} cannot be found.`);
    }
    return { Policy: p };
  });

  app.put("/_lambent/keys/:AccessKeyId/policy", async (req) => {
    const policy = parsePolicy(rawPolicy(req.body), "identity");
    if (!(await keys.putPolicy(pathParam(req, "AccessKeyId"), policy))) {
      throw ResourceNotFound(`The Access Key with id ${pathParam(req, "AccessKeyId")} cannot be found.`);
    }
    return { Policy: JSON.stringify(policy) };
  });

  app.get("/_lambent/roles", async () => ({ Roles: await keys.listRoles() }));

  app.get("/_lambent/roles/:RoleName", async (req) => {
    const name = roleName(pathParam(req, "RoleName"));
    const p = await keys.getRolePolicy(name);
    if (p === undefined) throw ResourceNotFound(`The role with name ${name} has no policy.`);
    return { RoleName: name, Policy: p };
  });

  app.put("/_lambent/roles/:RoleName", async (req) => {
    const name = roleName(pathParam(req, "RoleName"));
    const policy = parsePolicy(rawPolicy(req.body), "identity");
    await keys.putRolePolicy(name, policy);
    return { RoleName: name, Policy: JSON.stringify(policy) };
  });

  app.delete("/_lambent/roles/:RoleName", async (req, reply) => {
    const name = roleName(pathParam(req, "RoleName"));
    if (!(await keys.deleteRolePolicy(name)))
      throw ResourceNotFound(`The role with name ${name} has no policy.`);
    reply.code(204);
    return "";
  });
}
