#!/bin/sh
# PID 1 of a simulated host (embedded in package testhosts).
#
# The test process starts it in new mount, UTS and PID namespaces and inside
# the host's network namespace, as:  boot.sh HOSTDIR NAME ADDR/PREFIX
# It gives the host its own view of the file system, brings up its network,
# starts sshd and stays PID 1: it reaps orphans, and SIGUSR1 / SIGUSR2 start /
# stop sshd. SIGKILL on it kills every process of the host at once.
set -eu
H=$1
NAME=$2
ADDR=$3

# Nothing mounted below may reach the real machine.
mount --make-rprivate /
# Copies of the machine's "ip netns" mounts would keep other fleets' network
# namespaces alive after their teardown.
umount -R /run/netns 2>/dev/null || :
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "$NAME" >/proc/sys/kernel/hostname

# Copy-on-write views: lower = the real directory, changes land in $H/upper.
for d in /etc /var /usr; do
	mount -t overlay overlay -o "lowerdir=$d,upperdir=$H/upper$d,workdir=$H/work$d" "$d"
done
mount --bind "$H/mnt" /mnt
mount --bind "$H/run" /run
mount --bind "$H/root" /root
# Last: $H lives under /tmp and is out of sight from here on.
mount --bind "$H/tmp" /tmp

printf '%s\n' 'link set lo up' "addr add $ADDR dev eth0" 'link set eth0 up' | ip -batch -

sshd_pid=
start_sshd() {
	/usr/sbin/sshd -D -e -f /etc/ssh/sshd_config </dev/null &
	sshd_pid=$!
}
stop_sshd() {
	if [ -n "$sshd_pid" ]; then kill "$sshd_pid" 2>/dev/null || :; fi
	sshd_pid=
}
trap start_sshd USR1
trap stop_sshd USR2
start_sshd

# PID 1 duty: "wait" reaps every child, orphans handed to us included. A
# trapped signal ends it early; a fresh sleep keeps it from returning at once
# when sshd is stopped.
set +e
while :; do
	sleep 3600 &
	wait
done
