/** The unprivileged identity functions run as, as on Lambda. */
export const SANDBOX_USER = { name: "sbx_user1051", uid: 993, gid: 990 } as const;

/** /etc/passwd and /etc/group as an environment sees them: root and the sandbox user, nothing of the host. */
export function sandboxPasswd(): string {
  const { name, uid, gid } = SANDBOX_USER;
  return `root:x:0:0:root:/root:/sbin/nologin\n${name}:x:${uid}:${gid}::/tmp:/sbin/nologin\n`;
}

export function sandboxGroup(): string {
  return `root:x:0:\n${SANDBOX_USER.name}:x:${SANDBOX_USER.gid}:\n`;
}
