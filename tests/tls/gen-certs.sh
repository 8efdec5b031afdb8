#!/usr/bin/env bash
# Generates TEST-ONLY certificates and keys into directory $1 (created if missing) with the
# openssl CLI: a P-256 CA, ECDSA and RSA leaves signed by it (PEM, leaf + CA chain files), an
# expired leaf, a self-signed stranger, and a garbage PEM. Used by tests/unit/tls and
# tests/integration/test_tls*.py.
# Never commit the output.
set -euo pipefail
d="$1"
mkdir -p "$d"
cd "$d"
[ -f done.stamp ] && exit 0
q() { "$@" >/dev/null 2>&1; }

q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
    -subj "/CN=serval test CA" -days 3650 -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign

leaf() { # name keyspec san [startdate enddate]
    local n=$1 spec=$2 san=$3
    if [ "$spec" = rsa ]; then
        q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$n.key"
    else
        q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$n.key"
    fi
    q openssl req -new -key "$n.key" -out "$n.csr" -subj "/CN=${san%%,*}" \
        -addext "subjectAltName=$(echo "$san" | sed 's/\([^,]*\)/DNS:\1/g')"
    if [ $# -ge 5 ]; then
        : > index.txt; echo 1000 > serial
        cat > ca.cnf <<EOF
[ca]
default_ca = testca
[testca]
database = index.txt
serial = serial
new_certs_dir = .
default_md = sha256
policy = pol
copy_extensions = copy
unique_subject = no
[pol]
commonName = supplied
EOF
        q openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in "$n.csr" -out "$n.leaf" \
            -startdate "$4" -enddate "$5" -notext
    else
        q openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$n.leaf" \
            -days 825 -sha256 -copy_extensions copy
    fi
    cat "$n.leaf" ca.crt > "$n.crt"
    rm -f "$n.csr"
}

leaf ec_a ec a.example.com
leaf ec_wild ec '*.example.com'
leaf rsa_b rsa b.test
leaf ec_b ec b.test
leaf ec_def ec default.test
leaf expired ec expired.test 20200101000000Z 20200201000000Z
# a self-signed client certificate from no CA we trust (client certificate validation tests)
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout stranger.key \
    -out stranger.crt -subj "/CN=stranger.test" -days 825
printf -- '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' > garbage.pem
touch done.stamp
