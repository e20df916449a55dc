#!/bin/sh
# Twofold lab guest: /init of the initramfs (busybox). Mounts the pseudo file systems, loads the
# virtio disk modules listed in /lib/modules/load.order (dependencies first; written by the image
# builder from the kernel's modules.dep), waits for the disk and execs the workload as PID 1.
# Kernel command line: twofold.name=NAME names the guest; twofold.disk=none skips the disk.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s

disk=/dev/vda
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    twofold.disk=*) disk="${arg#twofold.disk=}" ;;
  esac
done

if [ "$disk" != none ]; then
  for m in $(cat /lib/modules/load.order); do
    insmod "/lib/modules/$m" || echo "TFINIT insmod $m failed"
  done
  i=0
  while [ ! -b "$disk" ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  [ -b "$disk" ] || echo "TFINIT no block device $disk after 10 s"
fi

exec /bin/workload "$disk"
