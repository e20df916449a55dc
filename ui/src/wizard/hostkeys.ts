// Helping the user check a machine's SSH identity on its console: which host key file matches the
// key the machine presented, and the command that prints its fingerprint. Pure.

/** "ssh-ed25519 AAAA… comment" → "ed25519"; null for something that is not a key line. */
export function keyType(line: string): "ed25519" | "ecdsa" | "rsa" | null {
  const algo = line.trim().split(/\s+/)[0] ?? "";
  if (algo === "ssh-ed25519") return "ed25519";
  if (algo.startsWith("ecdsa-sha2-")) return "ecdsa";
  if (algo === "ssh-rsa" || algo === "rsa-sha2-256" || algo === "rsa-sha2-512") return "rsa";
  return null;
}

/** The command to run on the machine's console; ed25519 when the key's type is unknown, since
 *  that is the key OpenSSH prefers. */
export function consoleCommand(keyLine: string): string {
  return `ssh-keygen -lf /etc/ssh/ssh_host_${keyType(keyLine) ?? "ed25519"}_key.pub`;
}

/** Fingerprints are long; split the hash in groups of four so a person can compare them. */
export function fingerprintGroups(fp: string): string {
  const m = /^(SHA256:)(.+)$/.exec(fp.trim());
  if (!m) return fp.trim();
  return m[1] + (m[2]!.match(/.{1,4}/g) ?? []).join(" ");
}
