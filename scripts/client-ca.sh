#!/usr/bin/env bash
# The client CA at work, with OpenSSL's `openssl ca` and the database that
# gen-certs.sh set up in CERTS/client-ca-db/: issue a student's certificate,
# revoke one, renew the revocation list. Run by `lab client …` through
# subprocess with an argument list; names are validated by lab before this.
#
#   client-ca.sh issue-many --certs CERTS --out DIR --days N [--enddate YYYYMMDDHHMMSSZ]   (signs DIR/*.csr)
#   client-ca.sh sign   --certs CERTS --out DIR --csr FILE --name LOGIN [--display NAME] --lab LAB --subject /O=org/OU=unit --days N
#   client-ca.sh revoke --certs CERTS --cert FILE        (records it; `crl` then writes the list)
#   client-ca.sh crl    --certs CERTS --crl FILE --crl-days N [--also-crl FILE]
#   client-ca.sh ocsp-signer --certs CERTS --out DIR --lab LAB --subject /O=org/OU=unit --days N
# Every value comes from lab (lab/core/layout.py holds them once); nothing is defaulted here.
#
# sign writes into DIR (mode 0700, files 0600): NAME.crt server-ca.crt client-ca.crt
set -euo pipefail
umask 077

cmd=${1:-}; shift || true
certs="" out="" name="" display="" role="" lab="" subject="" days="" enddate="" cert="" csr="" crl="" crl_days="" also_crl=""
while [ $# -gt 0 ]; do
    case "$1" in
        --certs) certs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --display) display=$2; shift 2 ;;
        --role) role=$2; shift 2 ;;
        --lab) lab=$2; shift 2 ;;
        --subject) subject=$2; shift 2 ;;
        --days) days=$2; shift 2 ;;
        --enddate) enddate=$2; shift 2 ;;
        --cert) cert=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --csr) csr=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --crl) crl=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --crl-days) crl_days=$2; shift 2 ;;
        --also-crl) also_crl=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        *) echo "client-ca.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -n "$certs" ] || { echo "client-ca.sh: --certs is required" >&2; exit 2; }
[ -n "$out" ] && { mkdir -p "$out"; out=$(cd "$out" && pwd); }
cd "$certs"
conf=client-ca-db/ca.cnf
[ -f "$conf" ] || { echo "client-ca.sh: $certs/$conf is missing (made by gen-certs.sh)" >&2; exit 1; }
# A student's subject: the lab's O and OU, their login (UID: ASCII, their files' name) and their display name
# (CN, any script, a UTF8String: -utf8). -preserveDN keeps the UID, which ca.cnf's policy (made by labs of
# before) does not name. lab/pki/names.py checks a display name has none of -subj's / + = \.
display=${display:-$name}
# A role other than student (instructor) is a second OU: the CA database records it, and the mTLS server's
# access map (lab/pki/access.py) is made from that database, keyed on issuer and serial.
case "$role" in ""|student) role_ou="" ;; *) role_ou="/OU=$role" ;; esac
student_subject="$subject$role_ou/UID=$name/CN=$display"
# A student's extensions: the client CA's own v3_client (read from ca.cnf, as this lab made it) and their
# SPIFFE ID as the one URI SAN (spiffe://LAB/ROLE/LOGIN): an identity beyond the CN, the form service
# meshes use. Written beside the certificate, removed once it is issued.
client_ext() { awk '/^\[ *v3_client *\]/{p=1; print "[v3_student]"; next} /^\[/{p=0} p' "$conf"; }
student_ext() {
    client_ext > "$1"
    printf 'subjectAltName = URI:spiffe://%s/%s/%s\n' "$lab" "${role:-student}" "$name" >> "$1"
}

# How long a certificate lives: --days, or (a short-lived certificate, lab client add --ttl) an exact end.
validity() {
    if [ -n "$enddate" ]; then printf '%s\n' -enddate "$enddate"; else printf '%s\n' -days "$days"; fi
}

gencrl() {
    [ -n "$crl_days" ] || { echo "client-ca.sh: --crl-days is required" >&2; exit 2; }
    # nginx refuses every client once the CRL is past its nextUpdate: lab renews it early.
    openssl ca -gencrl -config "$conf" -crldays "$crl_days" -out "$crl.tmp"
    # The other CAs the server trusts (the partner school's): their lists go in the same file (ssl_crl).
    [ -z "$also_crl" ] || cat "$also_crl" >> "$crl.tmp"
    mv -f "$crl.tmp" "$crl"
}

case "$cmd" in
issue-many)
    # A class at once (lab client add): the requests lab made in DIR (*.csr, each with the student's subject
    # and SPIFFE URI SAN; keys and bundles are made in-process, lab/pki/bundle.py), signed in one openssl ca
    # run. The CA database stays the one authority: serials, and the copy in client-ca-db/issued/ that a
    # revocation names. copy_extensions = copy, which carries each request's SAN over, is set only in this
    # run's own configuration (DIR/batch.cnf), for requests lab made: ca.cnf copies nothing, so a request a
    # student made (sign) gets no extension it asks for. openssl ca writes the database once, after every
    # request is signed: a request it refuses leaves the database as it was.
    [ -n "$out" ] && [ -n "$days" ] ||
        { echo "client-ca.sh issue-many: --out and --days are required" >&2; exit 2; }
    requests=("$out"/*.csr)
    [ -e "${requests[0]}" ] || { echo "client-ca.sh issue-many: no request (*.csr) in $out" >&2; exit 2; }
    client_ext > "$out/student.ext"
    section=$(awk -F'[ \t]*=[ \t]*' '$1 == "default_ca" {print $2; exit}' "$conf")
    { cat "$conf"; printf '\n[%s]\ncopy_extensions = copy\n' "$section"; } > "$out/batch.cnf"
    # -out is opened anew for each certificate (OpenSSL 3.0): lab reads them from the database's copies.
    openssl ca -batch -utf8 -preserveDN -config "$out/batch.cnf" -notext $(validity) -extfile "$out/student.ext" \
        -extensions v3_student -out "$out/last.pem" -infiles "${requests[@]}"
    rm -f "$out/student.ext" "$out/batch.cnf" "$out/last.pem"
    ;;
sign)
    [ -n "$out" ] && [ -n "$name" ] && [ -n "$lab" ] && [ -n "$subject" ] && [ -n "$days" ] && [ -n "$csr" ] ||
        { echo "client-ca.sh sign: --out, --csr, --name, --lab, --subject and --days are required" >&2; exit 2; }
    # A student's own key stays with the student: the request carries only the
    # public key. The certificate gets the lab's subject and extensions
    # (v3_client), whatever the request asked for: ca.cnf copies no extension
    # from a request (copy_extensions is not set) and -subj replaces its subject.
    student_ext "$out/$name.ext"
    openssl ca -batch -utf8 -preserveDN -config "$conf" -notext $(validity) -extfile "$out/$name.ext" \
        -extensions v3_student -subj "$student_subject" -in "$csr" -out "$out/$name.crt"
    rm -f "$out/$name.ext"
    cp server-ca.crt client-ca.crt "$out/"
    ;;
revoke)
    [ -n "$cert" ] || { echo "client-ca.sh revoke: --cert is required" >&2; exit 2; }
    # Already revoked in the database (a revoke interrupted before its CRL was
    # written) is fine: the CRL that `crl` writes next is what nginx enforces.
    if ! err=$(openssl ca -config "$conf" -revoke "$cert" -crl_reason cessationOfOperation 2>&1); then
        case "$err" in *"Already revoked"*) ;; *) printf '%s\n' "$err" >&2; exit 1 ;; esac
    fi
    ;;
crl)
    [ -n "$crl" ] || { echo "client-ca.sh crl: --crl is required" >&2; exit 2; }
    gencrl
    ;;
ocsp-signer)
    # The OCSP responder's own key and certificate (lab up --revocation ocsp): signed by the client CA for
    # one purpose, signing OCSP answers about the client CA's certificates (RFC 6960 4.2.2.2: a delegated
    # responder, issued directly by the CA, with the id-kp-OCSPSigning extended key usage). Outside the CA
    # database (it is no student): a random serial, like the lab's other demo certificates. The responder
    # gets this key, never the CA's.
    [ -n "$out" ] && [ -n "$lab" ] && [ -n "$subject" ] && [ -n "$days" ] ||
        { echo "client-ca.sh ocsp-signer: --out, --lab, --subject and --days are required" >&2; exit 2; }
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/ocsp.key"
    openssl req -new -utf8 -config "$conf" -key "$out/ocsp.key" -subj "$subject/CN=$lab OCSP responder" \
        -out "$out/ocsp.csr"
    printf '%s\n' "basicConstraints = critical, CA:FALSE" "keyUsage = critical, digitalSignature" \
        "extendedKeyUsage = critical, OCSPSigning" "subjectKeyIdentifier = hash" \
        "authorityKeyIdentifier = keyid:always" > "$out/ocsp.ext"
    openssl x509 -req -in "$out/ocsp.csr" -CA client-ca.crt -CAkey client-ca.key -set_serial "0x7$(openssl rand -hex 16 | cut -c2-)" \
        -days "$days" -sha256 -extfile "$out/ocsp.ext" -out "$out/ocsp.crt" 2>/dev/null
    rm -f "$out/ocsp.csr" "$out/ocsp.ext"
    cp client-ca.crt "$out/"
    ;;
*)
    echo "client-ca.sh: first argument is issue-many, sign, revoke, crl or ocsp-signer" >&2; exit 2 ;;
esac
