#!/usr/bin/env bash
# Install what the lab needs from Debian 12 (bookworm) packages. Run as root. Idempotent:
# a package already installed is left alone, so a second run only checks.
#
# The packaged services must not start on their own (they would take port 53 and the
# default paths): while installing, a policy-rc.d refuses every service start. The lab
# starts each server itself, with its own configuration (run-server.sh).
#
#   LAB_SKIP_APT_UPDATE=1   do not run `apt-get update` first
#   setup.sh --list         print the package names and exit (no root needed)
set -euo pipefail

PACKAGES=(
  # the seven DNS servers
  unbound bind9 dnsdist nsd knot knot-module-dnstap knot-resolver pdns-recursor
  # Frame Streams and dnstap tools: fstrm_capture, dnstap (Go), dnstap-ldns
  fstrm-bin golang-github-dnstap-golang-dnstap-cli dnstap-ldns
  # the load: dnsperf; dig and nsupdate (dnsutils)
  dnsperf dnsutils
  # TLS and relays (socat, openssl), the data generator (python3), ss and ps
  socat openssl python3 iproute2 procps
)

if [[ ${1:-} == --list ]]; then
  echo "${PACKAGES[*]}"
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $EUID -ne 0 ]]; then
    echo "setup.sh: missing packages: ${missing[*]}" >&2
    echo "setup.sh: as root: apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# dnstap lab setup.sh: no service starts while installing\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [[ ${LAB_SKIP_APT_UPDATE:-0} != 1 ]]; then
    apt-get update
  fi
  apt-get install -y --no-install-recommends "${missing[@]}"
  if ((own_policy)); then
    rm -f "$policy"
    trap - EXIT
  fi
else
  echo "setup.sh: all ${#PACKAGES[@]} packages are installed"
fi

# Debian's AppArmor profiles for named and unbound allow only the packaged paths; the lab
# keeps its files under $LAB_RUN. Where AppArmor enforces, switch those two profiles off
# (the usual /etc/apparmor.d/disable link). Nothing happens where AppArmor is off.
if [[ $EUID -eq 0 && "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" == Y ]] &&
  command -v apparmor_parser >/dev/null; then
  mkdir -p /etc/apparmor.d/disable
  for profile in usr.sbin.named usr.sbin.unbound; do
    if [[ -e /etc/apparmor.d/$profile && ! -e /etc/apparmor.d/disable/$profile ]]; then
      ln -s "/etc/apparmor.d/$profile" "/etc/apparmor.d/disable/$profile"
      apparmor_parser -R "/etc/apparmor.d/$profile" 2>/dev/null || true
      echo "setup.sh: AppArmor profile $profile switched off"
    fi
  done
fi

# On a machine with systemd, the packaged units must not hold the ports either.
if [[ $EUID -eq 0 && -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
  for unit in unbound named dnsdist pdns-recursor nsd knot kresd@1; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
