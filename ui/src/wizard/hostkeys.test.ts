import { describe, expect, it } from "vitest";

import { consoleCommand, fingerprintGroups, keyType } from "./hostkeys";

describe("host keys", () => {
  it("knows the key types OpenSSH uses", () => {
    expect(keyType("ssh-ed25519 AAAAC3Nz root@host1")).toBe("ed25519");
    expect(keyType("ecdsa-sha2-nistp256 AAAAE2V")).toBe("ecdsa");
    expect(keyType("ssh-rsa AAAAB3")).toBe("rsa");
    expect(keyType("  ssh-ed25519   AAAA")).toBe("ed25519");
    expect(keyType("")).toBeNull();
    expect(keyType("garbage")).toBeNull();
  });

  it("gives the console command for the key's file", () => {
    expect(consoleCommand("ssh-ed25519 AAAA")).toBe("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
    expect(consoleCommand("ecdsa-sha2-nistp384 AAAA")).toBe("ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub");
    expect(consoleCommand("ssh-rsa AAAA")).toBe("ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub");
    expect(consoleCommand("")).toBe("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
  });

  it("splits a fingerprint into groups a person can compare", () => {
    expect(fingerprintGroups("SHA256:abcdEFGHijkl+/9")).toBe("SHA256:abcd EFGH ijkl +/9");
    expect(fingerprintGroups(" MD5:aa:bb ")).toBe("MD5:aa:bb");
    expect(fingerprintGroups("SHA256:")).toBe("SHA256:");
  });
});
