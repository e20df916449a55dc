//! The lab's replicated VM store: a GlusterFS replica-2 volume across stor1 and stor2, mounted on
//! both hosts through FUSE at the same path (so libvirt treats it as shared storage and live
//! migration needs no disk copy). The full storage provisioning (quorum, tuning, leases) belongs
//! to the provisioning engine; the lab only needs a working shared store for its guest.

use std::time::{Duration, Instant};

use super::{Lab, STORE_MOUNT, VOLUME};
use crate::error::{Error, Result};
use crate::progress::Progress;

const BRICK: &str = "/srv/twofold/bricks/vmstore";

fn gluster(lab: &Lab, node: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["gluster", "--mode=script"];
    full.extend_from_slice(args);
    lab.exec_output(node, &full)
}

/// Retry a step until it succeeds or the deadline passes (glusterd needs a moment after start).
fn retry<T>(what: &str, secs: u64, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => {
                return Err(Error::Lab(format!("{what}: {e}")));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

pub fn ensure_volume(lab: &Lab, progress: &dyn Progress) -> Result<()> {
    if gluster(lab, "stor1", &["volume", "status", VOLUME]).is_ok() {
        return Ok(());
    }
    progress.begin("creating the replicated VM store", None);
    retry("probing stor2 from stor1", 60, || {
        gluster(lab, "stor1", &["peer", "probe", "stor2"])
    })?;
    retry("waiting for stor1 and stor2 to join", 60, || {
        let s = gluster(lab, "stor1", &["peer", "status"])?;
        if s.contains("Peer in Cluster (Connected)") {
            Ok(())
        } else {
            Err(Error::Lab(format!("peer status: {}", s.trim())))
        }
    })?;
    for n in ["stor1", "stor2"] {
        lab.exec_output(n, &["mkdir", "-p", BRICK])?;
    }
    let b1 = format!("stor1:{BRICK}");
    let b2 = format!("stor2:{BRICK}");
    if gluster(lab, "stor1", &["volume", "info", VOLUME]).is_err() {
        retry("creating the volume", 30, || {
            gluster(
                lab,
                "stor1",
                &[
                    "volume", "create", VOLUME, "replica", "2", &b1, &b2, "force",
                ],
            )
        })?;
    }
    let uid = id_of("-u", "libvirt-qemu")?;
    let gid = id_of("-g", "libvirt-qemu")?;
    // QEMU runs as libvirt-qemu and must own its images on the volume. Client-side caches are
    // off and O_DIRECT reaches the bricks: after a live migration the destination must never
    // read a block its own client cached while the VM last ran there (GlusterFS's "virt"
    // profile does the same; its quorum settings are the provisioning engine's business).
    for (k, v) in [
        ("storage.owner-uid", uid.as_str()),
        ("storage.owner-gid", gid.as_str()),
        ("server.allow-insecure", "on"),
        ("performance.quick-read", "off"),
        ("performance.read-ahead", "off"),
        ("performance.io-cache", "off"),
        ("performance.open-behind", "off"),
        ("performance.stat-prefetch", "off"),
        ("network.remote-dio", "disable"),
        ("performance.strict-o-direct", "on"),
        ("cluster.eager-lock", "enable"),
        ("cluster.choose-local", "off"),
    ] {
        gluster(lab, "stor1", &["volume", "set", VOLUME, k, v])?;
    }
    retry("starting the volume", 30, || {
        gluster(lab, "stor1", &["volume", "start", VOLUME])
    })?;
    progress.message(&format!("volume {VOLUME} replicated on stor1 and stor2"));
    progress.finish();
    Ok(())
}

pub fn ensure_host_mounts(lab: &Lab, progress: &dyn Progress) -> Result<()> {
    for host in ["host1", "host2"] {
        if lab
            .exec_output(host, &["mountpoint", "-q", STORE_MOUNT])
            .is_ok()
        {
            continue;
        }
        lab.exec_output(host, &["mkdir", "-p", STORE_MOUNT])?;
        let src = format!("stor1:/{VOLUME}");
        retry(&format!("mounting the VM store on {host}"), 30, || {
            lab.exec_output(
                host,
                &[
                    "mount",
                    "-t",
                    "glusterfs",
                    "-o",
                    "backup-volfile-servers=stor2",
                    &src,
                    STORE_MOUNT,
                ],
            )
        })?;
        progress.message(&format!("{host} mounted the VM store at {STORE_MOUNT}"));
    }
    Ok(())
}

fn id_of(flag: &str, user: &str) -> Result<String> {
    Ok(super::cmd::run("id", &[flag, user])?.trim().to_string())
}
