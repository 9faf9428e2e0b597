# Runs in a lab machine as root, through the engine (what a cloud's metadata service and console do).
# Creates the image's default admin user with the lab key and passwordless sudo, like cloud-init on a
# cloud image; waits until sshd runs (a fresh container under load may take a while); prints the
# host's ed25519 key on a line "hostkey: ...". Prints "changed" for each thing it changed.
set -eu
home="/home/$LAB_USER"
if ! id "$LAB_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --groups sudo "$LAB_USER"
  echo changed
fi
install -d -m 0700 -o "$LAB_USER" -g "$LAB_USER" "$home/.ssh"
if [ "$(cat "$home/.ssh/authorized_keys" 2>/dev/null)" != "$LAB_KEY" ]; then
  printf '%s\n' "$LAB_KEY" > "$home/.ssh/authorized_keys"
  chown "$LAB_USER:$LAB_USER" "$home/.ssh/authorized_keys"
  chmod 0600 "$home/.ssh/authorized_keys"
  echo changed
fi
rule="$LAB_USER ALL=(ALL) NOPASSWD:ALL"
if [ "$(cat /etc/sudoers.d/90-cloud-init-users 2>/dev/null)" != "$rule" ]; then
  printf '%s\n' "$rule" > /etc/sudoers.d/90-cloud-init-users
  chmod 0440 /etc/sudoers.d/90-cloud-init-users
  echo changed
fi
tries=0
until systemctl is-active -q ssh; do
  tries=$((tries + 1))
  if [ "$tries" -gt 60 ]; then
    echo "sshd is not active after 90 s: systemctl status ssh" >&2
    exit 1
  fi
  sleep 1.5
done
echo "hostkey: $(cat /etc/ssh/ssh_host_ed25519_key.pub)"
