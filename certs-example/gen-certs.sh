#!/usr/bin/env bash
# Makes a development PKI for CareSeal: a CA, a server certificate for
# localhost, and one client certificate per demo identity (URI SAN = SPIFFE id).
#
# Usage: certs-example/gen-certs.sh [--force] [OUT_DIR]
#   OUT_DIR defaults to certs-example/out (git-ignored).
#   Without --force, existing files that are valid, match this script's
#   identities and are not near expiry are kept; anything else is (re)made.
#   --force makes everything anew, including the CA.
#
# For development and tests only. Clinics use their own PKI: see README.md.
set -euo pipefail

readonly CA_DAYS=90
readonly LEAF_DAYS=30
readonly LEAF_RENEW_DAYS=7                # renew a leaf with less than this left
readonly CA_RENEW_DAYS=$((LEAF_DAYS + 5)) # a fresh leaf must never outlive its CA
readonly TRUST_DOMAIN="careseal.local"

# name|kind|URI SAN (empty for the server)|subject CN
readonly CERTS=(
  "server|server||localhost"
  "ehr-demo|client|spiffe://${TRUST_DOMAIN}/tenant/demo-clinic/ehr/demo-ehr|demo-ehr (demo-clinic)"
  "portal|client|spiffe://${TRUST_DOMAIN}/portal|CareSeal portal"
  "clinician-demo|client|spiffe://${TRUST_DOMAIN}/tenant/demo-clinic/clinician/dr-demo|dr-demo (demo-clinic)"
  "admin|client|spiffe://${TRUST_DOMAIN}/admin|CareSeal admin"
  "auditor-demo|client|spiffe://${TRUST_DOMAIN}/tenant/demo-clinic/auditor/demo-auditor|demo-auditor (demo-clinic)"
)
readonly SERVER_SAN="DNS:localhost,IP:127.0.0.1,IP:::1"

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "gen-certs: $*" >&2
  exit 1
}

force=0
out_dir=""
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) die "unknown option: $arg (see --help)" ;;
    *)
      [[ -z "$out_dir" ]] || die "only one OUT_DIR may be given"
      out_dir="$arg"
      ;;
  esac
done

command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="${out_dir:-$script_dir/out}"

umask 077
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"

# One run at a time per OUT_DIR (tests and the dev-server command may race).
if command -v flock >/dev/null; then
  exec 9>"$out_dir/.lock"
  flock 9
fi

work="$(mktemp -d "$out_dir/.tmp.XXXXXX")"
trap 'rm -rf "$work"' EXIT

ca_crt="$out_dir/ca.crt"
ca_key="$out_dir/ca.key"

# --- checks -------------------------------------------------------------

# key_matches CRT KEY: the certificate carries the key's public half.
key_matches() {
  local a b
  a="$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null)" || return 1
  b="$(openssl pkey -in "$2" -pubout 2>/dev/null)" || return 1
  [[ -n "$a" && "$a" == "$b" ]]
}

# fresh CRT KEY DAYS: both exist, key is private (0600), they match, and the
# certificate is valid for at least DAYS more days.
fresh() {
  local crt="$1" key="$2" days="$3"
  [[ -s "$crt" && -s "$key" ]] || return 1
  [[ "$(stat -c %a "$key")" == "600" ]] || return 1
  openssl x509 -in "$crt" -noout -checkend $((days * 86400)) >/dev/null 2>&1 || return 1
  key_matches "$crt" "$key"
}

ca_ok() {
  fresh "$ca_crt" "$ca_key" "$CA_RENEW_DAYS" || return 1
  openssl verify -CAfile "$ca_crt" "$ca_crt" >/dev/null 2>&1
}

# leaf_ok NAME KIND URI: fresh, chains to the current CA for its purpose, and
# names exactly the identity this script would put in it.
leaf_ok() {
  local name="$1" kind="$2" uri="$3" purpose want got
  fresh "$out_dir/$name.crt" "$out_dir/$name.key" "$LEAF_RENEW_DAYS" || return 1
  if [[ "$kind" == server ]]; then purpose=sslserver; else purpose=sslclient; fi
  openssl verify -CAfile "$ca_crt" -purpose "$purpose" "$out_dir/$name.crt" \
    >/dev/null 2>&1 || return 1
  if [[ "$kind" == server ]]; then
    want="DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"
  else
    want="URI:$uri"
  fi
  got="$(openssl x509 -in "$out_dir/$name.crt" -noout -ext subjectAltName 2>/dev/null |
    sed -n '2p' | sed 's/^ *//')"
  [[ "$got" == "$want" ]]
}

# --- generation ---------------------------------------------------------

new_key() { # PATH
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null ||
    die "could not generate an EC P-256 key"
  chmod 600 "$1"
}

# A positive 127-bit serial number, random per certificate.
new_serial() {
  local hex
  hex="$(openssl rand -hex 16)"
  printf '0x%x%s' $((0x${hex:0:1} & 7)) "${hex:1}"
}

# install SRC DST MODE: atomic replace within OUT_DIR.
install_file() {
  chmod "$3" "$1"
  mv -f "$1" "$2"
}

make_ca() {
  cat >"$work/ca.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
O = CareSeal development
CN = CareSeal Development CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
# This CA can only vouch for the local trust domain and loopback, so trusting
# it by mistake does not let it impersonate anything real.
nameConstraints = critical, @nc
[nc]
permitted;URI.0 = ${TRUST_DOMAIN}
permitted;DNS.0 = localhost
permitted;IP.0 = 127.0.0.1/255.255.255.255
permitted;IP.1 = ::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff
EOF
  new_key "$work/ca.key"
  openssl req -new -x509 -config "$work/ca.cnf" -key "$work/ca.key" -sha256 \
    -days "$CA_DAYS" -set_serial "$(new_serial)" -out "$work/ca.crt" 2>"$work/err" ||
    die "could not make the CA: $(cat "$work/err")"
  install_file "$work/ca.key" "$ca_key" 600
  install_file "$work/ca.crt" "$ca_crt" 644
}

make_leaf() { # NAME KIND URI CN
  local name="$1" kind="$2" uri="$3" cn="$4" san eku
  if [[ "$kind" == server ]]; then
    san="$SERVER_SAN"
    eku="serverAuth"
  else
    san="URI:$uri"
    eku="clientAuth"
  fi
  cat >"$work/$name.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
O = CareSeal development
CN = ${cn}
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = ${eku}
subjectAltName = ${san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  new_key "$work/$name.key"
  openssl req -new -config "$work/$name.cnf" -key "$work/$name.key" -sha256 \
    -out "$work/$name.csr" 2>"$work/err" ||
    die "could not make the request for $name: $(cat "$work/err")"
  openssl x509 -req -in "$work/$name.csr" -CA "$ca_crt" -CAkey "$ca_key" \
    -set_serial "$(new_serial)" -days "$LEAF_DAYS" -sha256 \
    -extfile "$work/$name.cnf" -extensions v3_leaf -out "$work/$name.crt" 2>"$work/err" ||
    die "could not sign $name: $(cat "$work/err")"
  # Key first: a reader that sees the new certificate also sees its key.
  install_file "$work/$name.key" "$out_dir/$name.key" 600
  install_file "$work/$name.crt" "$out_dir/$name.crt" 644
}

# --- main ---------------------------------------------------------------

made=()
ca_renewed=0
if ((force)) || ! ca_ok; then
  make_ca
  ca_renewed=1
  made+=("ca")
fi

for entry in "${CERTS[@]}"; do
  IFS='|' read -r name kind uri cn <<<"$entry"
  if ((ca_renewed)) || ! leaf_ok "$name" "$kind" "$uri"; then
    make_leaf "$name" "$kind" "$uri" "$cn"
    made+=("$name")
  fi
done

expiry() { openssl x509 -in "$1" -noout -enddate | cut -d= -f2; }

if ((${#made[@]} == 0)); then
  echo "gen-certs: certificates in $out_dir are valid and not near expiry; nothing to do" \
    "(--force regenerates)."
  exit 0
fi

echo "gen-certs: made ${made[*]} in $out_dir"
printf '  %-24s %-64s %s\n' "FILE" "IDENTITY" "EXPIRES"
printf '  %-24s %-64s %s\n' "ca.crt/.key" "CareSeal Development CA" "$(expiry "$ca_crt")"
for entry in "${CERTS[@]}"; do
  IFS='|' read -r name kind uri cn <<<"$entry"
  if [[ "$kind" == server ]]; then uri="$SERVER_SAN (serverAuth)"; fi
  printf '  %-24s %-64s %s\n' "$name.crt/.key" "$uri" "$(expiry "$out_dir/$name.crt")"
done
if ((ca_renewed)); then
  echo "  The CA is new: restart servers and clients that load $ca_crt."
fi
