#!/usr/bin/env bash
# Installs what tern's tests and demo need on a fresh Debian machine, when missing:
# real BGP peers (bird2, gobgpd, frr, exabgp), capture tools, iproute2/nftables, ping and kubectl.
# Idempotent and quiet when everything is already present.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have bird || need+=(bird2)
have gobgpd || need+=(gobgpd)
{ have vtysh && [ -x /usr/lib/frr/bgpd ]; } || need+=(frr)
have exabgp || need+=(exabgp)
have tshark || need+=(tshark)
have tcpdump || need+=(tcpdump)
have ip || need+=(iproute2)
have nft || need+=(nftables)
have jq || need+=(jq)
have curl || need+=(curl)
have ping || need+=(iputils-ping)
# kubectl drives the Kubernetes API server double (interop/src/bin/kube-api).
have kubectl || need+=(kubernetes-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The distribution starts these daemons as services; tests start their own instances instead.
for svc in bird gobgpd frr exabgp; do
  systemctl stop "$svc" >/dev/null 2>&1 || true
done
