//! The store's layout on the nodes: the GlusterFS volume and its bricks, where the hosts mount
//! it, and the libvirt pool over it. One place, so the setup that makes these and the code that
//! uses them (VMs, status, lab, benchmarks) cannot drift apart.

/// The replicated volume.
pub const VOLUME: &str = "vmstore";
/// Each storage node's brick: a full copy of every VM disk.
pub const BRICK: &str = "/srv/twofold/bricks/vmstore";
/// The arbiter brick on the first host: file names and metadata only, no data.
pub const ARBITER_BRICK: &str = "/srv/twofold/arbiter/vmstore";
/// Where both hosts mount the volume (GlusterFS FUSE).
pub const STORE: &str = "/var/lib/twofold/store";
/// virtlockd's indirect leases live on the shared store, so both hosts see the same leases.
pub const LEASES: &str = "/var/lib/twofold/store/.leases";
/// VM disks and install media: a libvirt storage pool of this name on each host, over the store.
pub const POOL: &str = "twofold";
/// The pool's folder on the store.
pub const IMAGES: &str = "/var/lib/twofold/store/images";
/// The store's `network.ping-timeout` in seconds: how long clients wait for a brick that vanished
/// without closing its connections (a power cut, a cut link) before going on without it.
/// GlusterFS's own VM profile uses the same value.
pub const PING_TIMEOUT_S: u32 = 20;
/// What GlusterFS uses when the volume does not set `network.ping-timeout`.
pub const GLUSTER_DEFAULT_PING_TIMEOUT_S: u32 = 42;
