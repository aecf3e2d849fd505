#!/bin/bash
#
# asyncsync's replacement for skopeo v1.9.3's systemtest/helpers.bash.
#
# Everything upstream defines is loaded unchanged from helpers.upstream.bash (a verbatim copy of
# upstream/helpers.bash); only the parts that need a container runtime and the internet are replaced:
#
#   start_registry   runs a local `docker-registry serve` (CNCF distribution 2.8) instead of a
#                    registry:2 container, with the same options: --port, --testuser/--testpassword
#                    (htpasswd, bcrypt), --with-cert (the same openssl certificate, copied to
#                    $TESTDIR/client-auth), --enable-delete.
#   podman           a function in front of the real podman: `podman rm -f NAME` stops the registry
#                    started as NAME (the tests' teardown); every other call goes to the real podman.
#
# The tests' assertions are not touched. quay.io is served by the runner (tests/systemtest/run.py) from
# stand-in images, inside a private network and mount namespace; see tests/systemtest/README.md.

# shellcheck source=/dev/null
source "$(dirname "${BASH_SOURCE[0]}")/helpers.upstream.bash"

# Where registry pid files and logs live (the runner sets it; one directory per run).
SYSTEMTEST_STATE=${SYSTEMTEST_STATE:-${BATS_TMPDIR:-/tmp}}

start_registry() {
    local port=5000
    local testuser=
    local testpassword=
    local create_cert=
    local enable_delete=false

    # option processing: recognize options for running the registry
    # in different modes.
    local opt
    for opt; do
        local value=$(expr "$opt" : '[^=]*=\(.*\)')
        case "$opt" in
            --port=*)           port="$value";          shift;;
            --testuser=*)       testuser="$value";      shift;;
            --testpassword=*)   testpassword="$value";  shift;;
            --with-cert)        create_cert=1;          shift;;
            --enable-delete=*)  enable_delete="$value"; shift;;
            -*)                 die "Invalid option '$opt'" ;;
            *)                  break;;
        esac
    done

    local name=${1?start_registry() invoked without a NAME}

    # Temp directory must be defined and must exist
    [[ -n $TESTDIR && -d $TESTDIR ]]

    AUTHDIR=$TESTDIR/auth
    mkdir -p $AUTHDIR

    local regdir=$SYSTEMTEST_STATE/registry-$name
    rm -rf $regdir
    mkdir -p $regdir/data
    local config=$regdir/config.yml
    cat >$config <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $regdir/data}
  delete: {enabled: $enable_delete}
http:
  addr: ":$port"
  secret: $(random_string 32)
EOF

    # Called with --testuser? Create an htpasswd file
    if [[ -n $testuser ]]; then
        if [[ -z $testpassword ]]; then
            die "start_registry() invoked with testuser but no testpassword"
        fi

        if ! egrep -q "^$testuser:" $AUTHDIR/htpasswd 2>/dev/null; then
            htpasswd -Bbn $testuser $testpassword >> $AUTHDIR/htpasswd
        fi

        cat >>$config <<EOF
auth:
  htpasswd: {realm: "Registry Realm", path: $AUTHDIR/htpasswd}
EOF
    fi

    # Called with --with-cert? Create certificates.
    if [[ -n $create_cert ]]; then
        CERT=$AUTHDIR/domain.crt
        if [ ! -e $CERT ]; then
            log_and_run openssl req -newkey rsa:4096 -nodes -sha256 \
                    -keyout $AUTHDIR/domain.key -x509 -days 2 \
                    -out $CERT \
                    -subj "/C=US/ST=Foo/L=Bar/O=Red Hat, Inc./CN=registry host certificate" \
                    -addext subjectAltName=DNS:localhost
        fi

        # (appended under http:, which is the last top-level key without auth)
        sed -i "/^http:/a\\  tls: {certificate: $AUTHDIR/domain.crt, key: $AUTHDIR/domain.key}" $config

        # Copy .crt file to a directory *without* the .key one, so we can
        # test the client. (If client sees a matching .key file, it fails)
        # Thanks to Miloslav Trmac for this hint.
        mkdir -p $TESTDIR/client-auth
        log_and_run cp $CERT $TESTDIR/client-auth/
    fi

    # fd 3 is bats' output channel: a background process holding it open makes bats wait for it.
    docker-registry serve $config >$regdir/registry.log 2>&1 3>&- </dev/null &
    echo $! >$regdir/pid

    # Wait for registry to actually come up
    timeout=10
    while [[ $timeout -ge 1 ]]; do
        if echo -n 2>/dev/null >/dev/tcp/127.0.0.1/$port; then
            return
        fi

        timeout=$(( timeout - 1 ))
        sleep 1
    done
    cat $regdir/registry.log
    die "Timed out waiting for registry $name to respond on :$port"
}

# Stop the registry started as NAME (idempotent).
stop_registry() {
    local regdir=$SYSTEMTEST_STATE/registry-$1
    if [[ -e $regdir/pid ]]; then
        local pid=$(cat $regdir/pid)
        kill $pid 2>/dev/null
        local i
        for i in $(seq 50); do
            kill -0 $pid 2>/dev/null || break
            sleep 0.1
        done
        kill -0 $pid 2>/dev/null && kill -9 $pid 2>/dev/null
        rm -f $regdir/pid
    fi
    rm -rf $regdir
}

podman() {
    if [[ $# -eq 3 && $1 == rm && $2 == -f ]]; then
        stop_registry "$3"
        return 0
    fi
    command podman "$@"
}
