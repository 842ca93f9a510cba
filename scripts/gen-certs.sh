#!/usr/bin/env bash
# Make the lab's PKI with OpenSSL, non-interactively: two certificate
# authorities (one for the server, one for clients), a server certificate and a
# client certificate, as in the classic "mTLS hello world" -- but each one
# passes `openssl verify -x509_strict` with the right -purpose, which the
# article's do not (its CAs lack keyUsage; its client certificate is X.509 v1).
#
# Usage: gen-certs.sh --out DIR --lab NAME --subject /O=org/OU=unit --days N --ca-days N --server-ca-days N
#                    --crl-days N --san DNS:name|IP:addr [--san ...] [--server-only]
# --server-only: the server CA and the server certificate alone (new names for the
# server; the client CA, its database and the students' certificates stay).
# --authz-demo: the authorization demo set alone (demo/instructor, demo/partner-ca,
# demo/impostor), for a lab made before it: DIR holds the client CA's key and certificate.
# Every value comes from lab (lab/core/layout.py holds them once); nothing is defaulted here.
#
# Writes into DIR (created, mode 0700; every file mode 0600 through umask):
#   server-ca.key server-ca.crt client-ca.key client-ca.crt
#   server.key    server.crt    client.key    client.crt
# and, for the failures `lab verify` demonstrates, into DIR/demo/ (lab keeps
# them apart from the real set, in the lab directory's demo-certs/):
#   rogue-ca.key rogue-ca.crt        a CA the mTLS server does not trust
#   rogue-client.key rogue-client.crt  a client certificate signed by it
#   expired-client.key expired-client.crt  from the client CA, validity ended yesterday
#   wrong-purpose.key wrong-purpose.crt    from the client CA, serverAuth only (no clientAuth)
# and, for authorization (who may reach what, after authentication):
#   instructor.key instructor.crt  from the client CA, the instructor role (a second OU, a SPIFFE ID)
#   partner-ca.key partner-ca.crt partner-ca.crl  a second CA the mTLS server also trusts (a partner
#                                  school's), and its empty revocation list (nginx wants one per CA)
#   impostor.key impostor.crt      from the partner CA: the instructor's very subject, serial and SPIFFE ID
# and the client CA's database (DIR/client-ca-db/, for issuing and revoking
# students' certificates) and its revocation list (DIR/crl/client-ca.crl).
# `lab up` runs this into a fresh temporary folder and moves the result into
# place only when every step succeeded, so no half-made set is ever used.
set -euo pipefail
umask 077

out="" lab="" subject="" days="" ca_days="" server_ca_days="" crl_days="" server_only="" authz_only=""
sans=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --lab) lab=$2; shift 2 ;;
        --subject) subject=$2; shift 2 ;;
        --days) days=$2; shift 2 ;;
        --ca-days) ca_days=$2; shift 2 ;;
        --server-ca-days) server_ca_days=$2; shift 2 ;;
        --server-only) server_only=1; shift ;;
        --authz-demo) authz_only=1; shift ;;
        --crl-days) crl_days=$2; shift 2 ;;
        --san) sans+=("$2"); shift 2 ;;
        *) echo "gen-certs.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
for required in out lab subject days ca_days server_ca_days crl_days; do
    [ -n "${!required}" ] || { echo "gen-certs.sh: --${required//_/-} is required" >&2; exit 2; }
done
[ ${#sans[@]} -gt 0 ] || { echo "gen-certs.sh: at least one --san is required" >&2; exit 2; }
mkdir -p "$out"
cd "$out"

# Everything below runs in as few rounds of parallel openssl processes as the
# dependencies allow (keys -> CAs -> leaves; the client CA's database last):
# each openssl start costs milliseconds, and `lab up` waits for this script.
# Job output goes to *.err files, shown only if a job fails. A job is a
# function and its arguments, run as they are (no string is evaluated).
pids=()
spawn() {  # spawn FUNCTION ARGS...: start one job of the current round
    local i=${#pids[@]}
    ( "$@" ) >"job$i.err" 2>&1 &
    pids+=($!)
}
round() {  # wait for every job of this round; fail if any failed
    local i failed=0
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || { failed=1; cat "job$i.err" >&2; }
    done
    rm -f job*.err
    pids=()
    return "$failed"
}

# Random material in one call: a tag that makes every lab's CA names distinct
# (a browser that meets two labs never sees two CAs with the same name; Firefox
# refuses two certificates with the same issuer and serial), and one random,
# positive 128-bit serial number per certificate.
rnd=$(openssl rand -hex 164)   # 328 hex digits: a tag and 10 serials
tag=${rnd:0:6}
serial() { echo "0x7${rnd:$((6 + 32 * $1)):31}"; }   # serial N: N-th serial (0..9)
san_list=$(IFS=,; echo "${sans[*]}")
# The server CA may vouch for exactly these names and addresses (RFC 5280
# 4.2.1.10, critical): a student who trusts it in a browser trusts it for the
# lab's server and nothing else. (A DNS name permits its subdomains too.)
constraints=""
for san in "${sans[@]}"; do
    case "$san" in
        DNS:*) c="permitted;$san" ;;
        IP:*:*) c="permitted;$san/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" ;;
        IP:*) c="permitted;$san/255.255.255.255" ;;
    esac
    constraints="${constraints:+$constraints, }$c"
done

# Extensions, per RFC 5280 and the CA/Browser Forum baseline:
# - CAs: basicConstraints critical CA:TRUE, keyUsage keyCertSign+cRLSign
#   (required for a CA under -x509_strict), pathlen:0 (they sign leaves only).
# - leaves: CA:FALSE, digitalSignature (ECDSA keys sign; keyEncipherment is
#   only for RSA key transport), one extendedKeyUsage each, so the server
#   certificate cannot be used as a client one and vice versa.
cat > ext.cnf <<CNF
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
nameConstraints = critical, $constraints
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = $san_list
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_instructor]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = URI:spiffe://$lab/instructor/lab-instructor
CNF
# The lab's own instructor (no student holds it): the role is a second OU, the login a UID, as lab client
# add --role instructor writes them (scripts/client-ca.sh). The impostor copies it, from another CA.
instructor_subject="$subject/OU=instructor/UID=lab-instructor/CN=$lab instructor"

key() {  # ECDSA P-256: accepted by every TLS client and made in milliseconds
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
}
ca() {  # ca NAME SERIAL-INDEX "Common Name" [EXTENSIONS DAYS]
    openssl req -new -x509 -config ext.cnf -extensions "${4:-v3_ca}" -key "$1.key" \
        -subj "$subject/CN=$3" -days "${5:-$ca_days}" -set_serial "$(serial "$2")" -sha256 -out "$1.crt"
}
leaf() {  # leaf NAME SERIAL-INDEX CA "Common Name" EXTENSIONS [SUBJECT]
    openssl req -new -utf8 -config ext.cnf -key "$1.key" -subj "${6:-$subject/CN=$4}" |
        openssl x509 -req -CA "$3.crt" -CAkey "$3.key" -set_serial "$(serial "$2")" \
            -days "$days" -sha256 -extfile ext.cnf -extensions "$5" -out "$1.crt"
}

# An expired certificate needs explicit start and end dates in the past, which
# only `openssl ca` can set (x509 -req cannot before OpenSSL 3.4).
past() {  # past N: N days ago, as openssl ca wants it (GNU date, then BSD date)
    date -u -d "-$1 days" +%Y%m%d%H%M%SZ 2>/dev/null || date -u -v-"$1"d +%Y%m%d%H%M%SZ
}

# The client CA keeps a database (openssl ca): every certificate it issues
# from here on has a unique serial and can be revoked; lab client add / revoke
# (scripts/client-ca.sh) use it. The serial starts at a random number.
client_ca_db() {
    mkdir -p client-ca-db/issued crl
    : > client-ca-db/index.txt
    echo "7${rnd:$((6 + 32 * 9)):31}" > client-ca-db/serial
    echo 1000 > client-ca-db/crlnumber
    {
    cat <<CNF
[ca]
default_ca = client_ca
[client_ca]
database = client-ca-db/index.txt
serial = client-ca-db/serial
crlnumber = client-ca-db/crlnumber
new_certs_dir = client-ca-db/issued
certificate = client-ca.crt
private_key = client-ca.key
default_md = sha256
policy = any
unique_subject = no
crl_extensions = crl_ext
[any]
# The order here is the order of the subject: the same as every other certificate.
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[crl_ext]
authorityKeyIdentifier = keyid:always
CNF
    cat ext.cnf
    } > client-ca-db/ca.cnf
    openssl req -new -config ext.cnf -key demo/expired-client.key \
        -subj "$subject/CN=$lab expired client" |
        openssl ca -batch -config client-ca-db/ca.cnf -notext -in /dev/stdin \
            -startdate "$(past 2)" -enddate "$(past 1)" -extensions v3_client -out demo/expired-client.crt
    # The client CA's revocation list, empty for now. nginx (ssl_crl) refuses
    # every client once it is past its nextUpdate, so it is made for --crl-days
    # days and `lab up` renews it well before then.
    openssl ca -gencrl -config client-ca-db/ca.cnf -crldays "$crl_days" -out crl/client-ca.crl
}

# A CA's revocation list with nothing revoked, from a throwaway database: nginx checks a CRL for every
# CA it trusts, so the partner CA needs one (lab appends it to the client CA's, in the one ssl_crl file).
empty_crl() {  # empty_crl CA DAYS
    local db="$1-db"
    mkdir -p "$db"
    : > "$db/index.txt"
    echo 1000 > "$db/crlnumber"
    printf '[ca]\ndefault_ca = c\n[c]\ndatabase = %s\ncrlnumber = %s\ncertificate = %s\nprivate_key = %s\ndefault_md = sha256\n' \
        "$db/index.txt" "$db/crlnumber" "$1.crt" "$1.key" > "$db/ca.cnf"
    openssl ca -gencrl -config "$db/ca.cnf" -crldays "$2" -out "$1.crl"
    rm -rf "$db"
}
# The authorization demo set: keys, the partner CA, then the instructor and the impostor (same serial).
authz_keys() { for k in demo/instructor demo/partner-ca demo/impostor; do spawn key "$k"; done; }
authz_ca() { spawn ca demo/partner-ca 7 "$lab Partner School CA $tag"; }
authz_leaves() {
    spawn leaf demo/instructor 8 client-ca "" v3_instructor "$instructor_subject"
    spawn leaf demo/impostor 8 demo/partner-ca "" v3_instructor "$instructor_subject"
    spawn empty_crl demo/partner-ca "$ca_days"
}

if [ -n "$authz_only" ]; then
    mkdir -p demo
    authz_keys
    round
    authz_ca
    round
    authz_leaves
    round
    rm -f ext.cnf
    exit 0
fi

if [ -n "$server_only" ]; then
    spawn key server-ca
    spawn key server
    round
    ca server-ca 0 "$lab Server CA $tag" v3_server_ca "$server_ca_days"
    leaf server 3 server-ca localhost v3_server
    rm -f ext.cnf
    exit 0
fi

mkdir -p demo
for k in server-ca client-ca server client demo/rogue-ca demo/rogue-client demo/expired-client demo/wrong-purpose; do
    spawn key "$k"
done
authz_keys
round
spawn ca server-ca 0 "$lab Server CA $tag" v3_server_ca "$server_ca_days"
spawn ca client-ca 1 "$lab Client CA $tag"
spawn ca demo/rogue-ca 2 "$lab ROGUE CA $tag"
authz_ca
round
# The demo certificates (demo/) are each refused by the mTLS server, for one reason.
spawn leaf server 3 server-ca localhost v3_server
spawn leaf client 4 client-ca "$lab student client" v3_client
spawn leaf demo/rogue-client 5 demo/rogue-ca "$lab rogue client" v3_client
spawn leaf demo/wrong-purpose 6 client-ca "$lab server-auth-only client" v3_server
spawn client_ca_db
authz_leaves
round
# One ssl_crl file for every CA the mTLS server trusts: the client CA's list, then the partner's.
cat demo/partner-ca.crl >> crl/client-ca.crl
rm -f ext.cnf
