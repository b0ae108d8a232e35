/**
 * Access keys, role policies and temporary (session) credentials.
 *
 * SigV4 cannot be verified from a hash of the secret: the verifier recomputes
 * the HMAC chain from the secret itself. So secrets are stored encrypted
 * (AES-256-GCM) with a server key that lives outside the store, in
 * `<data dir>/server.key` (mode 0600, created on first start) or the file
 * named by `--server-key-file` (servers sharing one PostgreSQL share this
 * file). A stolen database alone reveals no secret. Secrets are shown once,
 * when a key is created.
 *
 * Session credentials (what functions get for their execution role) are
 * stateless: the session token is the secret, the role and the expiry,
 * sealed with the server key. Nothing is written per Init, and any server
 * with the same key verifies them.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ACCOUNT_ID } from "../config.js";
import { LambdaError } from "../errors.js";
import type { Store } from "../store/store.js";
import { type PolicyDocument, parsePolicy } from "./policy.js";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function randomId(prefix: string): string {
  const bytes = randomBytes(16);
  let out = prefix;
  for (let i = 0; i < 16; i++) out += BASE32[(bytes[i] as number) % 32];
  return out;
}

function randomSecret(): string {
  return randomBytes(30).toString("base64").replace(/\+/g, "A").replace(/\//g, "B");
}

export const USER_NAME_RE = /^[\w+=,.@-]{1,64}$/;
export const ROLE_NAME_RE = /^[\w+=,.@-]{1,64}$/;
const ROLE_ARN_RE = /^arn:aws[a-zA-Z-]*:iam::\d{12}:role\/(?:[\w+=,.@/-]*\/)?([\w+=,.@-]{1,64})$/;

export function userArn(name: string): string {
  return `arn:aws:iam::${ACCOUNT_ID}:user/${name}`;
}

export const ROOT_ARN = `arn:aws:iam::${ACCOUNT_ID}:root`;

/** The role name in a role ARN, or null. */
export function roleNameOf(roleArn: string): string | null {
  return ROLE_ARN_RE.exec(roleArn)?.[1] ?? null;
}

/** Who made a request, and what their own (identity) policy says. */
export interface Principal {
  /** The ARN shown in AccessDenied messages. */
  arn: string;
  kind: "root" | "user" | "session" | "internal";
  /** For sessions: the role ARN (resource policies may name it). */
  roleArn?: string;
  /** For sessions: the function the credentials were issued to. */
  sessionName?: string;
  /** Identity policy; null = none (only resource policies can allow). Root has every permission. */
  policy: PolicyDocument | null;
}

export interface AccessKeySummary {
  AccessKeyId: string;
  UserName: string;
  Arn: string;
  CreateDate: string;
  HasPolicy: boolean;
}

/** The server key: 32 random bytes in a 0600 file. */
export function loadServerKey(file: string): Buffer {
  if (!existsSync(file)) {
    writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600, flag: "wx" });
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) chmodSync(file, 0o600);
  const hex = readFileSync(file, "utf8").trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new Error(`${file} is not a Lambent server key (64 hex characters expected)`);
  }
  return Buffer.from(hex, "hex");
}

export function defaultServerKeyFile(dataDir: string): string {
  return join(dataDir, "server.key");
}

/** Seal/open with AES-256-GCM under a key derived from the server key for one purpose. */
class Sealer {
  private readonly key: Buffer;
  constructor(serverKey: Buffer, purpose: string) {
    this.key = createHash("sha256").update(serverKey).update(`\0lambent:${purpose}`).digest();
  }
  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([c.update(plain, "utf8"), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]).toString("base64url");
  }
  open(sealed: string): string | null {
    try {
      const raw = Buffer.from(sealed, "base64url");
      if (raw.length < 29) return null;
      const d = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
      d.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString("utf8");
    } catch {
      return null;
    }
  }
}

export const ExpiredToken = (m = "The security token included in the request is expired") =>
  new LambdaError("ExpiredTokenException", 403, m);

interface CachedKey {
  at: number;
  key: { secret: string; principal: Principal } | null;
}

/** How long a looked-up key or role policy is trusted before it is read again (other servers' changes). */
const CACHE_MS = 2000;
/** Session credentials live this long (Lambda's role sessions last hours; each Init gets fresh ones). */
export const SESSION_TTL_MS = 12 * 3600 * 1000;

export class KeyStore {
  private readonly secrets: Sealer;
  private readonly sessions: Sealer;
  private readonly cache = new Map<string, CachedKey>();
  private readonly roleCache = new Map<string, { at: number; policy: PolicyDocument | null }>();
  /** A credential only this process knows, for presigning Code.Location and layer Content.Location. */
  readonly internal: { accessKeyId: string; secretAccessKey: string };

  constructor(
    private readonly store: Store,
    serverKey: Buffer,
  ) {
    this.secrets = new Sealer(serverKey, "access-key-secret");
    this.sessions = new Sealer(serverKey, "session-token");
    const derived = createHash("sha256").update(serverKey).update("\0lambent:presign").digest();
    this.internal = {
      accessKeyId: `AKIALAMBENT${derived.toString("hex").slice(0, 9).toUpperCase()}`,
      secretAccessKey: derived.toString("base64url"),
    };
  }

  forget(): void {
    this.cache.clear();
    this.roleCache.clear();
  }

  async count(): Promise<number> {
    const r = await this.store.db
      .selectFrom("access_keys")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async create(
    userName: string,
    policy: PolicyDocument | null,
  ): Promise<{ accessKeyId: string; secretAccessKey: string; arn: string }> {
    if (!USER_NAME_RE.test(userName)) {
      throw new LambdaError(
        "ValidationException",
        400,
        `1 validation error detected: Value '${userName}' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+`,
      );
    }
    const accessKeyId = randomId("AKIA");
    const secretAccessKey = randomSecret();
    await this.store.db
      .insertInto("access_keys")
      .values({
        access_key_id: accessKeyId,
        user_name: userName,
        secret: this.secrets.seal(secretAccessKey),
        policy: policy ? JSON.stringify(policy) : null,
        created_at: Date.now(),
      })
      .execute();
    return { accessKeyId, secretAccessKey, arn: userArn(userName) };
  }

  async list(): Promise<AccessKeySummary[]> {
    const rows = await this.store.db
      .selectFrom("access_keys")
      .select(["access_key_id", "user_name", "created_at", "policy"])
      .orderBy("created_at")
      .orderBy("access_key_id")
      .execute();
    return rows.map((r) => ({
      AccessKeyId: r.access_key_id,
      UserName: r.user_name,
      Arn: userArn(r.user_name),
      CreateDate: new Date(r.created_at).toISOString(),
      HasPolicy: r.policy !== null,
    }));
  }

  async delete(accessKeyId: string): Promise<boolean> {
    const r = await this.store.db
      .deleteFrom("access_keys")
      .where("access_key_id", "=", accessKeyId)
      .executeTakeFirst();
    this.cache.delete(accessKeyId);
    return Number(r.numDeletedRows) > 0;
  }

  async getPolicy(accessKeyId: string): Promise<string | null | undefined> {
    const r = await this.store.db
      .selectFrom("access_keys")
      .select("policy")
      .where("access_key_id", "=", accessKeyId)
      .executeTakeFirst();
    return r === undefined ? undefined : r.policy;
  }

  async putPolicy(accessKeyId: string, policy: PolicyDocument | null): Promise<boolean> {
    const r = await this.store.db
      .updateTable("access_keys")
      .set({ policy: policy ? JSON.stringify(policy) : null })
      .where("access_key_id", "=", accessKeyId)
      .executeTakeFirst();
    this.cache.delete(accessKeyId);
    return Number(r.numUpdatedRows) > 0;
  }

  /** The secret and principal of a long-term key, or null when unknown. */
  async lookup(accessKeyId: string): Promise<{ secret: string; principal: Principal } | null> {
    const now = Date.now();
    const hit = this.cache.get(accessKeyId);
    if (hit && now - hit.at < CACHE_MS) return hit.key;
    let key: CachedKey["key"] = null;
    if (accessKeyId === this.internal.accessKeyId) {
      key = {
        secret: this.internal.secretAccessKey,
        principal: {
          arn: `arn:aws:iam::${ACCOUNT_ID}:user/lambent-internal`,
          kind: "internal",
          policy: null,
        },
      };
    } else if (/^AKIA[A-Z2-7]{16}$/.test(accessKeyId)) {
      const row = await this.store.db
        .selectFrom("access_keys")
        .select(["secret", "user_name", "policy"])
        .where("access_key_id", "=", accessKeyId)
        .executeTakeFirst();
      const secret = row ? this.secrets.open(row.secret) : null;
      if (row && secret !== null) {
        key = {
          secret,
          principal: {
            arn: userArn(row.user_name),
            kind: "user",
            policy: row.policy ? parsePolicy(row.policy, "identity") : null,
          },
        };
      }
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(accessKeyId, { at: now, key });
    return key;
  }

  // ---- roles -------------------------------------------------------------

  async putRolePolicy(roleName: string, policy: PolicyDocument): Promise<void> {
    const now = Date.now();
    const text = JSON.stringify(policy);
    await this.store.db
      .insertInto("role_policies")
      .values({ role_name: roleName, policy: text, updated_at: now })
      .onConflict((oc) => oc.column("role_name").doUpdateSet({ policy: text, updated_at: now }))
      .execute();
    this.roleCache.delete(roleName);
  }

  async getRolePolicy(roleName: string): Promise<string | undefined> {
    const r = await this.store.db
      .selectFrom("role_policies")
      .select("policy")
      .where("role_name", "=", roleName)
      .executeTakeFirst();
    return r?.policy;
  }

  async deleteRolePolicy(roleName: string): Promise<boolean> {
    const r = await this.store.db
      .deleteFrom("role_policies")
      .where("role_name", "=", roleName)
      .executeTakeFirst();
    this.roleCache.delete(roleName);
    return Number(r.numDeletedRows) > 0;
  }

  async listRoles(): Promise<Array<{ RoleName: string; Arn: string; UpdateDate: string }>> {
    const rows = await this.store.db
      .selectFrom("role_policies")
      .select(["role_name", "updated_at"])
      .orderBy("role_name")
      .execute();
    return rows.map((r) => ({
      RoleName: r.role_name,
      Arn: `arn:aws:iam::${ACCOUNT_ID}:role/${r.role_name}`,
      UpdateDate: new Date(r.updated_at).toISOString(),
    }));
  }

  private async rolePolicy(roleName: string): Promise<PolicyDocument | null> {
    const now = Date.now();
    const hit = this.roleCache.get(roleName);
    if (hit && now - hit.at < CACHE_MS) return hit.policy;
    const text = await this.getRolePolicy(roleName);
    const policy = text ? parsePolicy(text, "identity") : null;
    this.roleCache.set(roleName, { at: now, policy });
    return policy;
  }

  // ---- sessions ----------------------------------------------------------

  /** Fresh temporary credentials for a function's execution role. */
  issueSession(roleArn: string, sessionName: string, ttlMs = SESSION_TTL_MS) {
    const accessKeyId = randomId("ASIA");
    const secretAccessKey = randomSecret();
    const expiration = Date.now() + ttlMs;
    const sessionToken = this.sessions.seal(
      JSON.stringify({ k: accessKeyId, s: secretAccessKey, r: roleArn, n: sessionName, e: expiration }),
    );
    return { accessKeyId, secretAccessKey, sessionToken, expiration };
  }

  /**
   * The secret and principal for temporary credentials, or null when the token
   * is not ours or does not belong to the key. Throws ExpiredTokenException.
   */
  async openSession(
    accessKeyId: string,
    token: string,
  ): Promise<{ secret: string; principal: Principal } | null> {
    const text = this.sessions.open(token);
    if (text === null) return null;
    let s: { k: string; s: string; r: string; n: string; e: number };
    try {
      s = JSON.parse(text);
    } catch {
      return null;
    }
    if (s.k !== accessKeyId) return null;
    if (Date.now() > s.e) throw ExpiredToken();
    const roleName = roleNameOf(s.r);
    return {
      secret: s.s,
      principal: {
        arn: `arn:aws:sts::${ACCOUNT_ID}:assumed-role/${roleName ?? "unknown"}/${s.n}`,
        kind: "session",
        roleArn: s.r,
        sessionName: s.n,
        policy: roleName ? await this.rolePolicy(roleName) : null,
      },
    };
  }
}
