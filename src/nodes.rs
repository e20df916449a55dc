//! The node list: which machines make up a platform, their role and how to reach them over SSH.
//! `twofold lab nodes` prints it and later commands (`setup --nodes FILE`) read it, so it is a
//! small, hand-editable TOML file:
//!
//! ```toml
//! [[node]]
//! name = "host1"
//! role = "host"
//! address = "10.251.77.11"
//! ssh_port = 22
//! user = "root"
//! key = "/var/lib/twofold-lab/admin_ed25519"
//! host_key = "ssh-ed25519 AAAA..."
//! ```

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use percent_encoding::{percent_encode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs VMs (KVM + libvirt).
    Host,
    /// Holds a replica of the shared VM store (GlusterFS).
    Storage,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Storage => "storage",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "host" => Some(Role::Host),
            "storage" => Some(Role::Storage),
            _ => None,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub role: Role,
    pub address: String,
    #[serde(default = "default_ssh_port")]
    pub ssh_port: u16,
    #[serde(default = "default_user")]
    pub user: String,
    /// Private key file used to log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// The node's pinned SSH host key (`type base64`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
}

fn default_ssh_port() -> u16 {
    22
}

fn default_user() -> String {
    "root".to_string()
}

impl NodeSpec {
    /// libvirt URI of this node's system daemon, reached through its SSH server with the node's key
    /// and a known_hosts file that pins its host key. User, host and the file paths are
    /// percent-encoded: libvirt decodes each once, so a path with spaces, `&`, `;`, `#` or `%`
    /// arrives as it is and cannot add a parameter of its own.
    pub fn libvirt_uri(&self, known_hosts: Option<&Path>) -> String {
        let mut uri = format!(
            "qemu+libssh://{}@{}:{}/system?sshauth=privkey",
            utf8_percent_encode(&self.user, URI_USER),
            uri_host(&self.address),
            self.ssh_port
        );
        if let Some(k) = &self.key {
            uri.push_str(&format!("&keyfile={}", uri_path(k)));
        }
        if let Some(kh) = known_hosts {
            uri.push_str(&format!(
                "&known_hosts={}&known_hosts_verify=normal",
                uri_path(kh)
            ));
        }
        uri
    }
}

/// Left as they are in a URI's user part: the unreserved characters of RFC 3986.
const URI_USER: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The host: unreserved characters, and `:` inside an IPv6 address's brackets.
const URI_HOST: &AsciiSet = &URI_USER.remove(b':');
/// A query value: unreserved characters and `/`. Everything that separates parameters for libvirt
/// (`&`, `;`, `=`), ends the query (`#`) or decodes differently elsewhere (`+`, `%`) is encoded.
const URI_QUERY_VALUE: &AsciiSet = &URI_USER.remove(b'/');

fn uri_host(addr: &str) -> String {
    let host = utf8_percent_encode(addr, URI_HOST);
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{host}]"),
        _ => host.to_string(),
    }
}

fn uri_path(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    percent_encode(p.as_os_str().as_bytes(), URI_QUERY_VALUE).to_string()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeList {
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeSpec>,
}

impl NodeList {
    pub fn load(path: &Path) -> Result<NodeList> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::NodesFile {
            path: path.to_path_buf(),
            detail: format!(
                "cannot read it ({e}); give the path of a file written by `twofold lab nodes`"
            ),
        })?;
        Self::parse(&text).map_err(|detail| Error::NodesFile {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parse and validate; the error says what is wrong and how to fix it.
    pub fn parse(text: &str) -> std::result::Result<NodeList, String> {
        let list: NodeList = toml::from_str(text).map_err(|e| {
            format!("not a valid node list: {}. Each node is a [[node]] table with name, role (host or storage) and address", e.message())
        })?;
        list.validate()?;
        Ok(list)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.nodes.is_empty() {
            return Err("no [[node]] entries; list the hosts and storage nodes".into());
        }
        let mut names = HashSet::new();
        let mut addrs = HashSet::new();
        for n in &self.nodes {
            validate_name(&n.name)?;
            if !names.insert(n.name.as_str()) {
                return Err(format!(
                    "node name '{}' appears twice; every node needs its own name",
                    n.name
                ));
            }
            validate_address(&n.address).map_err(|e| format!("node '{}': {e}", n.name))?;
            if !addrs.insert((n.address.as_str(), n.ssh_port)) {
                return Err(format!(
                    "node '{}' has the same address and SSH port as another node ({}:{}); each machine must be listed once",
                    n.name, n.address, n.ssh_port
                ));
            }
            if n.ssh_port == 0 {
                return Err(format!("node '{}': ssh_port 0 is not a port; use 22 unless the machine's SSH server listens elsewhere", n.name));
            }
            validate_user(&n.user).map_err(|e| format!("node '{}': {e}", n.name))?;
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a node list always serializes")
    }

    pub fn get(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn hosts(&self) -> impl Iterator<Item = &NodeSpec> {
        self.nodes.iter().filter(|n| n.role == Role::Host)
    }
}

/// Node names become hostnames and parts of file names: keep them to DNS label characters.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid node name; use 1 to 63 letters, digits and inner hyphens (like host1)"
        ))
    }
}

/// The SSH login: as strict as the wizard's form (ui/src/wizard/validate.ts `checkUser`) and
/// Debian's `useradd`: 1 to 32 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`,
/// and a `$` only at the end (Samba machine accounts).
pub fn validate_user(user: &str) -> std::result::Result<(), String> {
    let fix = "give the user name Twofold logs in as, usually root";
    if user.is_empty() {
        return Err(format!("user is empty; {fix}"));
    }
    if user.contains('@') {
        return Err(format!(
            "user '{user}' contains '@'; give only the user name (like root), not user@machine: the machine's address goes in address"
        ));
    }
    if user.chars().any(char::is_whitespace) {
        return Err(format!(
            "user '{user}' contains a space or another blank; give the user name alone, like root (check for spaces at its start or end)"
        ));
    }
    let body = user.strip_suffix('$').unwrap_or(user);
    let ok = user.len() <= 32
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && body
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{user}' is not a valid user name; use 1 to 32 letters, digits, dots, hyphens and underscores, starting with a letter, digit or underscore (like root)"
        ))
    }
}

/// An address is an IP address or a DNS name.
pub fn validate_address(addr: &str) -> std::result::Result<(), String> {
    if addr.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let looks_like_ip = addr.chars().all(|c| c.is_ascii_digit() || c == '.');
    let valid_dns = !addr.is_empty()
        && addr.len() <= 253
        && !looks_like_ip
        && addr.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if valid_dns {
        Ok(())
    } else if addr.is_empty() {
        Err("address is empty; give the machine's IP address or DNS name".into())
    } else {
        Err(format!(
            "'{addr}' is neither an IP address nor a host name; give something like 192.0.2.10 or host1.example.com"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[node]]
name = "host1"
role = "host"
address = "10.251.77.11"

[[node]]
name = "stor1"
role = "storage"
address = "stor1.example.com"
ssh_port = 2222
"#;

    #[test]
    fn parses_and_round_trips() {
        let l = NodeList::parse(GOOD).unwrap();
        assert_eq!(l.nodes.len(), 2);
        assert_eq!(l.nodes[0].ssh_port, 22);
        assert_eq!(l.nodes[0].user, "root");
        assert_eq!(l.nodes[1].role, Role::Storage);
        let again = NodeList::parse(&l.to_toml()).unwrap();
        assert_eq!(again, l);
    }

    #[test]
    fn rejects_bad_input_with_guidance() {
        let dup = GOOD
            .replace("stor1.example.com", "10.251.77.11")
            .replace("2222", "22");
        assert!(NodeList::parse(&dup).unwrap_err().contains("same address"));
        let dupname = GOOD.replace("stor1", "host1");
        assert!(NodeList::parse(&dupname)
            .unwrap_err()
            .contains("appears twice"));
        let badrole = GOOD.replace("\"storage\"", "\"nas\"");
        assert!(NodeList::parse(&badrole).unwrap_err().contains("role"));
        let badaddr = GOOD.replace("10.251.77.11", "10.251.77.999");
        assert!(NodeList::parse(&badaddr)
            .unwrap_err()
            .contains("neither an IP"));
        assert!(NodeList::parse("").unwrap_err().contains("no [[node]]"));
        let unknown = format!("{GOOD}\nfoo = 1\n");
        assert!(NodeList::parse(&unknown).is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("host_1").is_err());
    }

    #[test]
    fn user_names_as_strict_as_the_form() {
        for good in ["root", "admin", "_svc", "a.b-c_d", "host$", &"a".repeat(32)] {
            assert_eq!(validate_user(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("", "is empty"),
            ("root@host1", "not user@machine"),
            (" root", "space"),
            ("ro ot", "space"),
            ("root\t", "space"),
            ("-root", "not a valid user name"),
            (".root", "not a valid user name"),
            ("$", "not a valid user name"),
            ("a$b", "not a valid user name"),
            ("root;reboot", "not a valid user name"),
            ("r%6Fot", "not a valid user name"),
            ("jörg", "not a valid user name"),
            (&"a".repeat(33), "not a valid user name"),
        ] {
            let e = validate_user(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
            assert!(e.contains("root"), "says what to give: {e}");
        }
        let list = GOOD.replacen(
            "address = \"10.251.77.11\"",
            "address = \"10.251.77.11\"\nuser = \"root@10.251.77.11\"",
            1,
        );
        let e = NodeList::parse(&list).unwrap_err();
        assert!(
            e.starts_with("node 'host1': user 'root@10.251.77.11'"),
            "{e}"
        );
    }

    #[test]
    fn libvirt_uri_escapes_odd_paths_and_ipv6() {
        let mut n = NodeList::parse(GOOD).unwrap().nodes[0].clone();
        let key = "/home/a b/keys&more;x=y#frag%41+plus?q'é/id";
        let kh = "/var/lib/twofold/known hosts";
        n.key = Some(key.into());
        n.user = "svc$".into();
        let uri = n.libvirt_uri(Some(Path::new(kh)));
        // libvirt's own reading: the query split at '&' or ';', each value decoded once.
        let (_, query) = uri.split_once('?').unwrap();
        assert!(
            !query.contains([' ', '#', ';', '\'', '+', '?']) && uri.is_ascii(),
            "{uri}"
        );
        let params: Vec<(String, String)> = query
            .split(['&', ';'])
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                let v = percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .unwrap();
                (k.to_string(), v.into_owned())
            })
            .collect();
        let want = [
            ("sshauth", "privkey"),
            ("keyfile", key),
            ("known_hosts", kh),
            ("known_hosts_verify", "normal"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(params, want);

        // And a general URI parser agrees on every part.
        let parsed = url::Url::parse(&uri).unwrap();
        assert_eq!(parsed.scheme(), "qemu+libssh");
        assert_eq!(
            percent_encoding::percent_decode_str(parsed.username())
                .decode_utf8()
                .unwrap(),
            "svc$"
        );
        assert_eq!(parsed.host_str(), Some("10.251.77.11"));
        assert_eq!(parsed.port(), Some(22));
        assert_eq!(parsed.path(), "/system");
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(pairs, want);

        n.address = "fd00::11".into();
        n.key = None;
        let uri = n.libvirt_uri(None);
        assert_eq!(
            uri,
            "qemu+libssh://svc%24@[fd00::11]:22/system?sshauth=privkey"
        );
        assert_eq!(
            url::Url::parse(&uri).unwrap().host_str(),
            Some("[fd00::11]")
        );
    }

    #[test]
    fn libvirt_uri_pins_keys() {
        let l = NodeList::parse(GOOD).unwrap();
        let mut n = l.nodes[0].clone();
        n.key = Some("/k".into());
        let uri = n.libvirt_uri(Some(Path::new("/kh")));
        assert_eq!(
            uri,
            "qemu+libssh://root@10.251.77.11:22/system?sshauth=privkey&keyfile=/k&known_hosts=/kh&known_hosts_verify=normal"
        );
    }
}
