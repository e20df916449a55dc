#!/bin/sh
# Runs as the first process of one lab node, already inside the node's network namespace and a
# fresh mount + UTS namespace (private propagation). It gives the node its own view of the files a
# real machine keeps to itself, starts the node's daemons, then stays as the node's anchor: its PID
# is how `twofold lab exec` enters the node, and killing it (with the daemons) powers the node off.
#
# Arguments: NODE ROLE NODE_DIR
set -eu
NODE=$1
ROLE=$2
DIR=$3

hostname "$NODE"

# State a real machine keeps to itself: /run (pid files, sockets), libvirt and glusterd state,
# logs, root's home (SSH keys), /etc/libvirt (config and persistent domain definitions), /etc/hosts.
mkdir -p /var/lib/twofold /var/lib/glusterd /var/cache/libvirt /var/lib/libvirt /srv
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/lock /run/libvirt /run/gluster
mkdir -p "$DIR/var-lib-libvirt" "$DIR/var-log" "$DIR/var-cache-libvirt" "$DIR/var-lib-twofold" \
  "$DIR/var-lib-glusterd" "$DIR/root" "$DIR/srv"
mount --bind "$DIR/var-lib-libvirt" /var/lib/libvirt
mount --bind "$DIR/var-cache-libvirt" /var/cache/libvirt
mount --bind "$DIR/var-log" /var/log
mount --bind "$DIR/var-lib-twofold" /var/lib/twofold
mount --bind "$DIR/root" /root
mount --bind "$DIR/etc-libvirt" /etc/libvirt
mount --bind "$DIR/hosts" /etc/hosts
# Provisioning writes /etc/fstab; the machine's own must stay untouched.
[ -e "$DIR/fstab" ] || cp /etc/fstab "$DIR/fstab"
mount --bind "$DIR/fstab" /etc/fstab
# A bare node has root's password of the lab (a machine just installed).
if [ -e "$DIR/shadow" ]; then
  mount --bind "$DIR/shadow" /etc/shadow
fi
mount --bind "$DIR/var-lib-glusterd" /var/lib/glusterd
mount --bind "$DIR/srv" /srv
mkdir -p /var/log/libvirt/qemu /var/log/glusterfs /var/lib/libvirt/qemu /var/lib/twofold/store

# A lab whose guests run under TCG hides /dev/kvm from its nodes. Where /dev/kvm exists but
# QEMU's user may not open it, libvirt's own check and QEMU's probe disagree about KVM, and
# libvirt then probes QEMU again on every lookup (about 30 s per domain definition).
if [ -e "$DIR/hide-kvm" ] && [ -e /dev/kvm ]; then
  : > "$DIR/no-kvm"
  chmod 000 "$DIR/no-kvm"
  mount --bind "$DIR/no-kvm" /dev/kvm
fi

/usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/var-log/sshd.log"

case "$ROLE" in
  host)
    virtlogd -d
    virtlockd -d
    libvirtd -d -f /etc/libvirt/libvirtd.conf
    # A host that holds the store's arbiter brick runs glusterd too (as if enabled at boot).
    if [ -e /var/lib/glusterd/glusterd.info ]; then
      glusterd -p /run/glusterd.pid --log-file=/var/log/glusterfs/glusterd.log
    fi
    ;;
  bare)
    # Nothing but sshd: provisioning installs and starts the rest.
    ;;
  storage)
    mkdir -p /srv/twofold/bricks
    glusterd -p /run/glusterd.pid --log-file=/var/log/glusterfs/glusterd.log
    ;;
esac

echo $$ > "$DIR/anchor.pid"
# Stay alive as the node's anchor without holding any file open.
exec sleep infinity
