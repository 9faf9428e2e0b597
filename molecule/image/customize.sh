#!/bin/sh
# mmdebstrap customize hook: runs on the host with the new root as $1.
# Makes the image behave like a cloud image under a container engine.
set -eu
root="$1"

# Host keys must differ per host: drop the baked ones, create them on first boot.
rm -f "$root"/etc/ssh/ssh_host_*
cat > "$root"/etc/systemd/system/ssh-host-keys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root"/etc/systemd/system/multi-user.target.wants
ln -sf /etc/systemd/system/ssh-host-keys.service \
  "$root"/etc/systemd/system/multi-user.target.wants/ssh-host-keys.service

# systemd credentials (LoadCredential=) need / to be a shared mount; real hosts have that already.
cat > "$root"/etc/systemd/system/lab-shared-root.service <<'UNIT'
[Unit]
Description=Make / a shared mount (container engines leave it private)
DefaultDependencies=no
Before=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/bin/mount --make-rshared /

[Install]
WantedBy=local-fs.target
UNIT
mkdir -p "$root"/etc/systemd/system/local-fs.target.wants
ln -sf /etc/systemd/system/lab-shared-root.service \
  "$root"/etc/systemd/system/local-fs.target.wants/lab-shared-root.service

# Units that have no meaning in a container.
for unit in getty@tty1.service console-getty.service systemd-firstboot.service \
            systemd-remount-fs.service sys-kernel-debug.mount sys-kernel-tracing.mount; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

# Image size: no package cache inside (the lab shares a caching proxy on the engine host).
rm -f "$root"/etc/apt/apt.conf.d/docker-clean
: > "$root"/etc/machine-id
