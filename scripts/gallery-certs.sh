#!/usr/bin/env bash
# The gallery of bad client certificates (lab gallery): each one broken in one way, made with OpenSSL
# from the lab's client CA (or, for two rows, deliberately not), for the mTLS server to judge.
#
# Usage: gallery-certs.sh --out DIR --lab NAME --subject /O=org/OU=unit --days N
# DIR holds client-ca.crt and client-ca.key (lab copies them in, and takes the result out: the
# gallery's certificates are kept in the lab directory's gallery-certs/, never in the CA's
# database: they are specimens, not students). Writes into DIR, for each row NAME:
#   NAME.key, NAME.crt   the certificate, and after it any intermediate the client sends
#   NAME.chain.pem       that intermediate alone (for openssl s_client -cert_chain)
# lab/teach/gallery.py lists the rows, what each breaks, and what each validator is expected to do.
set -euo pipefail
umask 077

out="" lab="" subject="" days=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --lab) lab=$2; shift 2 ;;
        --subject) subject=$2; shift 2 ;;
        --days) days=$2; shift 2 ;;
        *) echo "gallery-certs.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
for required in out lab subject days; do
    [ -n "${!required}" ] || { echo "gallery-certs.sh: --$required is required" >&2; exit 2; }
done
cd "$out"
[ -f client-ca.crt ] && [ -f client-ca.key ] || { echo "gallery-certs.sh: $out has no client-ca.crt/.key" >&2; exit 1; }

# Every leaf names itself in its one URI SAN (spiffe://LAB/gallery/NAME), so that validators which want
# a SAN on a client certificate (pyca's) judge the defect, not its absence. ${SAN} is set per certificate.
printf '[req]\ndistinguished_name = dn\n[dn]\n' > req.cnf     # requests: the subject only
cat > gallery.cnf <<'CNF'
[good]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = ${ENV::SAN}
[ca_as_leaf]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = ${ENV::SAN}
[keycertsign_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = ${ENV::SAN}
[server_eku_no_ku]
basicConstraints = critical, CA:FALSE
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = ${ENV::SAN}
[unknown_critical]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = ${ENV::SAN}
# An extension no implementation knows (x509-limbo's OID), marked critical.
1.3.6.1.4.1.55738.666.1 = critical, ASN1:NULL
[no_aki]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = none
subjectAltName = ${ENV::SAN}
[not_a_ca]
# An "intermediate" that is not a CA: CA:FALSE, no keyCertSign.
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[sub_ca]
# A CA under the client CA, whose own pathLenConstraint (0) allows none.
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[constrained_ca]
# A CA that may vouch only for URIs under example.com: the leaf's spiffe:// URI is not.
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical, permitted;URI:.example.com
CNF

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
san() { echo "URI:spiffe://$lab/gallery/$1"; }
# sign NAME ISSUER SECTION [x509 options...]: NAME.key's request, signed by ISSUER (.crt/.key) with SECTION.
sign() {
    local name=$1 issuer=$2 section=$3
    shift 3
    openssl req -new -key "$name.key" -subj "$subject/CN=$lab gallery $name" -config req.cnf |
        SAN=${SAN:-$(san "$name")} openssl x509 -req -CA "$issuer.crt" -CAkey "$issuer.key" -days "$days" \
            -set_serial "0x$(openssl rand -hex 15)" -extfile gallery.cnf -extensions "$section" "$@" -out "$name.crt"
}
# chain NAME INTERMEDIATE: the leaf first, then the intermediate the client sends with it.
chain() { cat "$2.crt" >> "$1.crt"; cp "$2.crt" "$1.chain.pem"; }   # the chain alone: openssl s_client -cert_chain

for n in control ca-as-leaf keycertsign-leaf server-eku-no-ku v1 unknown-critical not-yet-valid no-aki \
         two-uri-sans bad-signature not-a-ca-issuer not-a-ca pathlen-exceeded sub-ca name-constraints \
         constrained-ca; do
    key "$n"
done
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa-1024.key 2>/dev/null
key sha1

sign control client-ca good
sign ca-as-leaf client-ca ca_as_leaf
sign keycertsign-leaf client-ca keycertsign_leaf
sign server-eku-no-ku client-ca server_eku_no_ku
sign rsa-1024 client-ca good
sign sha1 client-ca good -sha1
sign unknown-critical client-ca unknown_critical
sign no-aki client-ca no_aki
SAN="URI:spiffe://$lab/student/alice,URI:spiffe://$lab/instructor/alice" sign two-uri-sans client-ca good
# X.509 v1: no extensions at all (openssl x509 -req without -extfile writes version 1).
openssl req -new -key v1.key -subj "$subject/CN=$lab gallery v1" -config req.cnf |
    openssl x509 -req -CA client-ca.crt -CAkey client-ca.key -days "$days" -set_serial "0x$(openssl rand -hex 15)" \
        -out v1.crt
# Not yet valid: from tomorrow. openssl x509 cannot set a start date before OpenSSL 3.4; openssl ca can, from
# a throwaway database (the client CA's own records students, not specimens).
mkdir -p db
: > db/index.txt
openssl rand -hex 15 > db/serial
printf '[ca]\ndefault_ca = g\n[g]\ndatabase = db/index.txt\nserial = db/serial\nnew_certs_dir = db\ncertificate = client-ca.crt\nprivate_key = client-ca.key\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\norganizationName = optional\norganizationalUnitName = optional\ncommonName = supplied\n' > db/ca.cnf
cat gallery.cnf >> db/ca.cnf
tomorrow=$(date -u -d "+1 day" +%Y%m%d%H%M%SZ 2>/dev/null || date -u -v+1d +%Y%m%d%H%M%SZ)
later=$(date -u -d "+$((days + 1)) days" +%Y%m%d%H%M%SZ 2>/dev/null || date -u -v+"$((days + 1))"d +%Y%m%d%H%M%SZ)
openssl req -new -key not-yet-valid.key -subj "$subject/CN=$lab gallery not-yet-valid" -config req.cnf |
    SAN=$(san not-yet-valid) openssl ca -batch -config db/ca.cnf -notext -in /dev/stdin \
        -startdate "$tomorrow" -enddate "$later" -extensions good -out not-yet-valid.crt 2>db/err || { cat db/err >&2; exit 1; }
rm -rf db
# The issuer's name, not its signature: a valid leaf whose signature's last byte is flipped. The name still
# leads to the client CA; the signature no longer verifies with its key.
sign bad-signature client-ca good
openssl x509 -in bad-signature.crt -outform DER -out bad-signature.der
size=$(wc -c < bad-signature.der)
byte=$(od -An -tu1 -j $((size - 1)) -N1 bad-signature.der | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 1)))" | dd of=bad-signature.der bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
openssl x509 -inform DER -in bad-signature.der -out bad-signature.crt
rm -f bad-signature.der
# Chains: the client sends its leaf and the intermediate that signed it.
sign not-a-ca client-ca not_a_ca
SAN=$(san not-a-ca-issuer) sign not-a-ca-issuer not-a-ca good
chain not-a-ca-issuer not-a-ca
sign sub-ca client-ca sub_ca
sign pathlen-exceeded sub-ca good
chain pathlen-exceeded sub-ca
sign constrained-ca client-ca constrained_ca
sign name-constraints constrained-ca good
chain name-constraints constrained-ca
# The intermediates' keys are the lab's business only: no one sends them.
rm -f not-a-ca.key sub-ca.key constrained-ca.key not-a-ca.crt sub-ca.crt constrained-ca.crt gallery.cnf req.cnf
