/**
 * The platform's authentication and authorization parts, built once: the key
 * store, the SigV4 verifier, the authorizer, presigned download URLs and the
 * credentials handed to execution environments.
 */
import type { PermissionService } from "../control/permissions.js";
import type { Store } from "../store/store.js";
import { Authorizer } from "./authorize.js";
import { KeyStore, loadServerKey } from "./keys.js";
import { presignUrl } from "./sigv4.js";
import { Verifier } from "./verify.js";

/** How long Code.Location / Content.Location links work (Lambda's presigned S3 links last 10 minutes). */
export const PRESIGN_SECONDS = 600;

export class Auth {
  readonly keys: KeyStore;
  readonly verifier: Verifier;
  readonly authorizer: Authorizer;

  constructor(
    store: Store,
    permissions: PermissionService,
    opts: { serverKeyFile: string; devCredentials: boolean; region: string },
  ) {
    this.keys = new KeyStore(store, loadServerKey(opts.serverKeyFile));
    this.verifier = new Verifier(this.keys, { devCredentials: opts.devCredentials });
    this.authorizer = new Authorizer(permissions);
    this.region = opts.region;
    this.devCredentials = opts.devCredentials;
  }

  readonly region: string;
  readonly devCredentials: boolean;

  /** A download link that works for PRESIGN_SECONDS without other credentials. */
  presign(url: string, region = this.region): string {
    return presignUrl(new URL(url), {
      region,
      credentials: this.keys.internal,
      expiresSeconds: PRESIGN_SECONDS,
    });
  }

  /**
   * The AWS_* variables of an environment whose function runs as `roleArn`:
   * fresh temporary credentials at every Init, as Lambda gives them.
   */
  environmentCredentials(roleArn: string, functionName: string): Record<string, string> {
    const s = this.keys.issueSession(roleArn, functionName);
    return {
      AWS_ACCESS_KEY_ID: s.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
      AWS_SESSION_TOKEN: s.sessionToken,
    };
  }
}
