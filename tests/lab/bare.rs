//! `lab up --bare`: nodes that run nothing but sshd and take root's password, as machines just
//! installed, reached by Twofold's own SSH code.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use twofold::error::Error;
use twofold::lab::{UpOptions, NODES};
use twofold::node::{Auth, HostKeyPolicy, Secret, Session, Target};
use twofold::nodes::Role;
use twofold::progress::NoProgress;

use crate::Ctx;

pub fn bare_nodes_run_only_sshd_and_take_a_password(ctx: &Ctx) {
    let opts = UpOptions {
        bare: true,
        twofold_exe: ctx.twofold.clone(),
        inventory: None,
    };
    // A password file left readable by an older lab must come out private.
    let password_file = ctx.lab.dir.join("root-password");
    if password_file.exists() {
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let status = ctx.lab.up(&opts, &NoProgress).unwrap();
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", password_file.display());
    assert!(status.all_running(), "{status:?}");
    for n in &status.nodes {
        let daemons: Vec<&str> = n.daemons.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(daemons, ["sshd"], "{}", n.name);
    }
    for n in NODES {
        for d in ["libvirtd", "glusterd", "glusterfsd", "virtlogd"] {
            assert!(
                ctx.lab.daemon_pids(n.name, d).unwrap().is_empty(),
                "{d} on {}",
                n.name
            );
        }
    }
    let list = ctx.lab.node_list().unwrap();
    assert!(
        list.nodes.iter().all(|n| n.key.is_none()),
        "bare nodes have no key yet"
    );
    let password = ctx.lab.root_password().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for n in &list.nodes {
            let target = Target::from(n);
            let pinned = HostKeyPolicy::Pinned(n.host_key.clone().unwrap());
            let auth = Auth::Password(password.clone());
            let s = Session::connect(&target, &auth, &pinned, Duration::from_secs(10))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", n.name));
            let out = s.exec("hostname", None).await.unwrap();
            assert_eq!(out.stdout_text().trim(), n.name);
            // The node's /etc/shadow is the lab's: root and no account of this machine.
            let out = s.exec("cut -d: -f1 /etc/shadow", None).await.unwrap();
            assert!(out.success(), "{}: {}", n.name, out.stderr_text());
            assert_eq!(out.stdout_text(), "root\n", "{}", n.name);
            if n.role == Role::Storage {
                let out = s
                    .exec("gluster --mode=script pool list", None)
                    .await
                    .unwrap();
                assert!(!out.success(), "no glusterd on a bare node");
            }
        }
        let n = &list.nodes[0];
        let wrong = Auth::Password(Secret::new("not-the-password"));
        let pinned = HostKeyPolicy::Pinned(n.host_key.clone().unwrap());
        match Session::connect(&Target::from(n), &wrong, &pinned, Duration::from_secs(10)).await {
            Err(Error::AuthFailed { node, .. }) => assert_eq!(node, n.name),
            other => panic!("wrong password: {:?}", other.map(|_| ())),
        }
    });
}
