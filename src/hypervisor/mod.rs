//! libvirt hosts.
