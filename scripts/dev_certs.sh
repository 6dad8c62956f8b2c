#!/usr/bin/env bash
# A local CA and a server certificate signed by it, for development and tests:
# Traefik (or Mosquitto's TLS listener) serves server.pem/server.key; devices get ca.pem
# (`provision flash ... --ca DIR/ca.pem`), which the SDK verifies the broker against.
#
# Usage: scripts/dev_certs.sh [DIR] [NAME...]
#   DIR   where to write ca.pem, ca.key, server.pem, server.key (default deploy/certs)
#   NAME  host names and IP addresses the server is reached at
#         (default: localhost 127.0.0.1)
# Examples:
#   scripts/dev_certs.sh
#   scripts/dev_certs.sh deploy/certs iot.example.com 192.168.1.20
#
# An existing CA in DIR is kept (boards already carry it); the server certificate is
# made anew each run. Not for production: the CA key sits unencrypted next to it.
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
command -v openssl >/dev/null 2>&1 || {
    echo "dev_certs: openssl is missing; install it: apt-get install openssl" >&2
    exit 1
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/deploy/certs}"
shift || true
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(localhost 127.0.0.1)
mkdir -p "$DIR"
umask 077

if [ ! -s "$DIR/ca.pem" ] || [ ! -s "$DIR/ca.key" ]; then
    echo "dev_certs: new CA in $DIR/ca.pem" >&2
    openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/ca.key"
    openssl req -x509 -new -key "$DIR/ca.key" -sha256 -days 3650 \
        -subj "/CN=Fieldline development CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$DIR/ca.pem" 2>/dev/null
else
    echo "dev_certs: keeping the CA in $DIR/ca.pem" >&2
fi

# Subject alternative names: an address as IP (OpenSSL-style checks) and also as DNS
# text, since mbedtls (MicroPython) compares the server name as a string.
SAN=""
for name in "${NAMES[@]}"; do
    if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then
        SAN+="IP:$name,DNS:$name,"
    else
        SAN+="DNS:$name,"
    fi
done
SAN="${SAN%,}"

openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/server.key"
openssl req -new -key "$DIR/server.key" -subj "/CN=${NAMES[0]}" -out "$DIR/server.csr"
EXT="$(mktemp)"
trap 'rm -f "$EXT" "$DIR/server.csr"' EXIT
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
    "$SAN" >"$EXT"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
    -CAcreateserial -days 825 -sha256 -extfile "$EXT" -out "$DIR/server.pem" 2>/dev/null
chmod 0644 "$DIR/ca.pem" "$DIR/server.pem"
chmod 0600 "$DIR/ca.key" "$DIR/server.key"
echo "dev_certs: server certificate for ${NAMES[*]} in $DIR/server.pem (key server.key)" >&2
echo "dev_certs: give devices the CA: provision flash ... --ca $DIR/ca.pem" >&2
