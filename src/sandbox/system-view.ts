import { lstatSync, readlinkSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { sandboxGroup, sandboxPasswd } from "./sandbox-user.js";

/** Top-level system directories mapped read-only into every environment (symlinks kept as such). */
const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/** Host /etc pieces the runtimes need (TLS roots, dynamic linker cache, time zone, name service config). */
const HOST_ETC = [
  "/etc/ssl",
  "/etc/ca-certificates",
  "/etc/pki",
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/localtime",
  "/etc/nsswitch.conf",
  "/etc/host.conf",
  "/etc/alternatives",
  "/etc/mime.types",
];

/**
 * Host folders of Python and Node.js packages: hidden (an empty read-only tmpfs over each) so a function
 * sees only its runtime's own packages, as on Lambda.
 */
const HOST_PACKAGE_DIRS = [
  "/usr/lib/python3/dist-packages",
  "/usr/lib/node_modules",
  "/usr/share/nodejs",
  "/usr/local/lib/node_modules",
  "/usr/lib/python3.9/site-packages",
  "/usr/lib/python3.11/site-packages",
  "/usr/local/lib/python3.9",
  "/usr/local/lib/python3.10",
  "/usr/local/lib/python3.11",
  "/usr/local/lib/python3.12",
  "/usr/local/lib/python3.13",
];

/**
 * The bwrap arguments that build the read-only system part of the root, computed once per driver (and
 * once per runtime root filesystem). With `rootfs`, /usr, the top-level links and the /etc basics come
 * from that root filesystem (a Debian release whose python3 is the function's version) instead of the host.
 */
export function systemViewArgs(etcDir: string, network: "isolated" | "host", rootfs?: string): string[] {
  const root = rootfs ?? "";
  // Privileged bwrap creates missing parents of mount points as 0700: make them readable first.
  const args = ["/etc", "/var", "/run", "/run/lambent"].flatMap((dir) => ["--perms", "0755", "--dir", dir]);
  for (const dir of SYSTEM_DIRS) {
    const stat = lstatSafe(`${root}${dir}`);
    if (stat?.isSymbolicLink()) args.push("--symlink", readlinkSync(`${root}${dir}`), dir);
    else if (stat?.isDirectory()) args.push("--ro-bind", `${root}${dir}`, dir);
  }
  if (rootfs === undefined) {
    for (const dir of HOST_PACKAGE_DIRS) {
      if (lstatSafe(dir)?.isDirectory()) args.push("--perms", "0755", "--tmpfs", dir, "--remount-ro", dir);
    }
  }
  for (const path of HOST_ETC) args.push("--ro-bind-try", `${root}${path}`, path);
  args.push("--ro-bind", `${etcDir}/passwd`, "/etc/passwd", "--ro-bind", `${etcDir}/group`, "/etc/group");
  args.push("--ro-bind", `${etcDir}/hosts`, "/etc/hosts");
  // Isolated: slirp4netns's DNS forwarder; host network: the host's own resolver configuration.
  args.push(
    "--ro-bind",
    network === "isolated" ? `${etcDir}/resolv.conf` : "/etc/resolv.conf",
    "/etc/resolv.conf",
  );
  return args;
}

/** Writes the generated /etc files into the driver's run dir. */
export async function writeSandboxEtc(
  etcDir: string,
  network: "isolated" | "host" = "isolated",
  /** Nameservers of a pooled namespace (the host's, through the NAT); default: slirp4netns's forwarder. */
  resolvers?: readonly string[],
): Promise<void> {
  // As on Lambda, extensions listen on sandbox.localdomain. In an isolated namespace it is the
  // namespace's own address (10.0.2.100: slirp4netns' tap, or a pooled namespace's loopback), where
  // the worker's telemetry relay reaches it.
  const sandboxAddress = network === "isolated" ? "10.0.2.100" : "127.0.0.1";
  await mkdir(etcDir, { recursive: true });
  await Promise.all([
    writeFile(`${etcDir}/passwd`, sandboxPasswd()),
    writeFile(`${etcDir}/group`, sandboxGroup()),
    writeFile(
      `${etcDir}/hosts`,
      `127.0.0.1\tlocalhost\n${sandboxAddress}\tsandbox.localdomain sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    ),
    writeFile(
      `${etcDir}/resolv.conf`,
      (resolvers ?? ["10.0.2.3"]).map((address) => `nameserver ${address}\n`).join(""),
    ),
  ]);
}

function lstatSafe(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
