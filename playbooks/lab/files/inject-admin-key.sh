# Runs in a lab machine as root. Creates the image's default admin user with the lab key and
# passwordless sudo, like cloud-init does on a cloud image. Prints "changed" when it changed anything.
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
