"""Role firewall's collector probes each flow's path with a SYN from a raw socket, here in a network namespace of
its own (``unshare -n``: its loopback only, nothing of this machine's touched): a port with a service listening
answers SYN-ACK, one without answers a reset (both open paths), one a firewall drops, coming in or going out,
answers nothing (a cut path); and the service never sees a connection, so nothing logs one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.MON

SCRIPT = Path(__file__).resolve().parents[2] / "roles/firewall/files/rempart-firewall-metrics"

# In the namespace: loopback up, a drop of port 18082 in and of 18083 out (sending it fails: EPERM), a server on 18080 that writes a line per connection it
# accepts, then the collector (no firewall table of role firewall there: rempart_firewall_loaded 0).
NAMESPACE = """
set -e
PATH="$PATH:/usr/sbin:/sbin"  # nft (make tools installs it) and ip, wherever root's PATH leaves them out
ip link set lo up
nft add table inet rempart_test
nft add chain inet rempart_test in '{ type filter hook input priority 0; }'
nft add rule inet rempart_test in tcp dport 18082 drop
nft add chain inet rempart_test out '{ type filter hook output priority 0; }'
nft add rule inet rempart_test out tcp dport 18083 drop
python3 -c '
import socket, sys
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 18080)); server.listen(8); print("ready", flush=True)
server.settimeout(6)
try:
    while True:
        connection, _ = server.accept(); open(sys.argv[1], "a").write("accepted\\n"); connection.close()
except socket.timeout:
    pass
' "$ACCEPTED" > "$READY" &
server=$!
for _ in $(seq 50); do grep -q ready "$READY" 2>/dev/null && break; sleep 0.1; done
python3 "$SCRIPT" "$OUT" --flow=db1:postgresql:127.0.0.1:18080 --flow=db2:postgresql:127.0.0.1:18081 \
  --flow=mon1:relp:127.0.0.1:18082 --flow=app1:app:127.0.0.1:18083
sleep 0.5  # a connection the probe completed would be accepted by now
kill "$server"
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a raw socket and a network namespace need root")
def test_a_syn_tells_a_listening_a_closed_and_a_cut_path_apart_and_no_service_sees_it(tmp_path):
    out, accepted = tmp_path / "firewall.prom", tmp_path / "accepted"
    done = subprocess.run(["unshare", "-n", "bash", "-c", NAMESPACE], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "SCRIPT": str(SCRIPT), "OUT": str(out), "ACCEPTED": str(accepted),
                               "READY": str(tmp_path / "ready")})
    assert done.returncode == 0, done.stderr
    found = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in out.read_text(encoding="utf-8").splitlines()
             if line.startswith("rempart_flow_")}
    assert found == {
        'rempart_flow_path_open{to="db1",service="postgresql",port="18080"}': "1",
        'rempart_flow_path_open{to="db2",service="postgresql",port="18081"}': "1",
        'rempart_flow_path_open{to="mon1",service="relp",port="18082"}': "0",
        'rempart_flow_listening{to="db1",service="postgresql",port="18080"}': "1",
        'rempart_flow_listening{to="db2",service="postgresql",port="18081"}': "0",
        'rempart_flow_listening{to="mon1",service="relp",port="18082"}': "0",
        'rempart_flow_path_open{to="app1",service="app",port="18083"}': "0",
        'rempart_flow_listening{to="app1",service="app",port="18083"}': "0",
    }
    assert "rempart_firewall_loaded 0" in out.read_text(encoding="utf-8")
    assert not accepted.exists(), "the listening service accepted a connection: the probe must never complete one"
