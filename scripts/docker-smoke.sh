#!/usr/bin/env bash
# Build the FaceWarden image and smoke-test it: init, serve over TLS, health, enrol + verify a face from a volume
# mounted at test time (never baked in), as the non-root user, against PostgreSQL.
#
#   scripts/docker-smoke.sh                  # needs a running Docker daemon and PyPI; not part of `make test`
#
# BASE_IMAGE: the image to build on. Unset and without Docker Hub, a local Debian bookworm base is made with
#   debootstrap + `docker import` (it carries this host's extra CA certificates, for TLS-intercepting proxies).
# SMOKE_PG: an admin DSN of a PostgreSQL reachable from the host (default: postgresql://postgres@127.0.0.1:5432/test);
#   the test creates and drops its own database. Containers use host networking (works with `dockerd --bridge=none`).
# FACES: a folder with train/obama/obama.jpg and test/obama1.jpg (default ../shared/faces/people).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${BASE_IMAGE:-}
SMOKE_PG=${SMOKE_PG:-postgresql://postgres@127.0.0.1:5432/test}
FACES=$(realpath "${FACES:-../shared/faces/people}")
PORT=${PORT:-18443}
TAG=facewarden:smoke
RUN_ID=$(date +%s)-$$
DB=fw_docker_smoke_${RUN_ID//-/_}
CONTAINER=fw-smoke-$RUN_ID
WORK=$(mktemp -d)

say() { printf '\n== %s\n' "$*"; }
cleanup() {
    docker rm -f "$CONTAINER" > /dev/null 2>&1 || true
    docker volume rm -f "fw-smoke-home-$RUN_ID" "fw-smoke-keys-$RUN_ID" > /dev/null 2>&1 || true
    psql "$SMOKE_PG" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" > /dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[[ -f $FACES/train/obama/obama.jpg && -f $FACES/test/obama1.jpg ]] || { echo "no test faces under $FACES" >&2; exit 2; }
docker info > /dev/null || { echo "no Docker daemon (start one: dockerd --iptables=false --bridge=none &)" >&2; exit 2; }

if [[ -z $BASE_IMAGE ]]; then
    if docker pull python:3.11-slim-bookworm > /dev/null 2>&1; then
        BASE_IMAGE=python:3.11-slim-bookworm
    else
        BASE_IMAGE=facewarden-base:bookworm
        if ! docker image inspect "$BASE_IMAGE" > /dev/null 2>&1; then
            say "no registry: building $BASE_IMAGE with debootstrap"
            root=$WORK/rootfs
            debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1 bookworm "$root" \
                http://deb.debian.org/debian > "$WORK/debootstrap.log"
            cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2> /dev/null || true
            chroot "$root" update-ca-certificates > /dev/null
            rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
            tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" > /dev/null
        fi
    fi
fi

say "build $TAG on $BASE_IMAGE"
start=$(date +%s)
DOCKER_BUILDKIT=0 docker build -q --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$TAG" . > /dev/null
echo "built in $(( $(date +%s) - start )) s; $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')"
[[ $(docker image inspect -f '{{.Config.User}}' "$TAG") == facewarden:facewarden ]]
if docker run --rm --network none --entrypoint sh "$TAG" -c \
        'find / -xdev \( -name "*.jpg" -o -name "*.jpeg" -o -name "*.mp4" -o -name "*.onnx" \) 2> /dev/null | grep -v /site-packages/' \
        | grep -q .; then
    echo "FAIL: face photos, clips or models inside the image" >&2; exit 1
fi

say "init against PostgreSQL (database $DB)"
psql "$SMOKE_PG" -qc "CREATE DATABASE $DB" > /dev/null
DB_URL="postgresql+psycopg://${SMOKE_PG#postgresql://}"
DB_URL=${DB_URL%/*}/$DB
run=(docker run --network host -e "FACEWARDEN_DATABASE_URL=$DB_URL" -e "FACEWARDEN_PORT=$PORT"
     -e 'FACEWARDEN_LIVENESS_REQUIRED_PURPOSES=[]'
     -v "fw-smoke-home-$RUN_ID:/var/lib/facewarden" -v "fw-smoke-keys-$RUN_ID:/var/lib/facewarden-keys"
     --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges)
KEY=$("${run[@]}" --rm "$TAG" init | tail -n 1)
[[ $KEY == fw_* ]] || { echo "FAIL: init printed no admin key" >&2; exit 1; }
"${run[@]}" --rm --entrypoint sh "$TAG" -c \
    'test "$(stat -c %a /var/lib/facewarden-keys/kek.json)" = 600 && test ! -e /var/lib/facewarden/keys/kek.json'

say "serve on :$PORT (faces mounted read-only at /faces)"
"${run[@]}" -d --name "$CONTAINER" --health-interval 2s -v "$FACES:/faces:ro" "$TAG" serve > /dev/null
for _ in $(seq 120); do
    docker exec "$CONTAINER" test -f /var/lib/facewarden/tls/cert.pem 2> /dev/null && \
        docker exec "$CONTAINER" python3 /usr/local/lib/facewarden/healthcheck.py 2> /dev/null && break
    sleep 1
done
docker exec "$CONTAINER" cat /var/lib/facewarden/tls/cert.pem > "$WORK/cert.pem"
curl -sf --cacert "$WORK/cert.pem" "https://localhost:$PORT/v1/health"; echo
[[ $(docker exec "$CONTAINER" id -u) == 10001 ]]
! curl -s --max-time 5 "http://127.0.0.1:$PORT/v1/health" > /dev/null 2>&1 || { echo "FAIL: plain HTTP answered" >&2; exit 1; }

say "enrol and verify over HTTPS with photos from the mounted volume"
H="Authorization: Bearer $KEY"
docker exec "$CONTAINER" cat /faces/train/obama/obama.jpg > "$WORK/enrol.jpg"
docker exec "$CONTAINER" cat /faces/test/obama1.jpg > "$WORK/probe.jpg"
enrolled=$(curl -s --cacert "$WORK/cert.pem" -H "$H" "https://localhost:$PORT/v1/subjects" -F subject=obama \
    -F purpose=device-unlock -F legal_basis=consent -F consent_given_at=2026-11-01T10:00:00Z \
    -F consent_method="docker smoke test" -F "images=@$WORK/enrol.jpg")
grep -q '"templates":1' <<< "$enrolled" || { echo "FAIL: enrol answered $enrolled" >&2; exit 1; }
verdict=$(curl -s --cacert "$WORK/cert.pem" -H "$H" "https://localhost:$PORT/v1/subjects/obama/verify" \
    -F purpose=device-unlock -F "image=@$WORK/probe.jpg")
echo "$verdict"
grep -q '"match":true' <<< "$verdict"

say "the CLI in the container reads the mounted volume: add a photo, verify"
docker exec "$CONTAINER" facewarden add-photos obama /faces/train/obama/obama2.jpg | grep -q '"templates": 2'
docker exec "$CONTAINER" facewarden verify obama /faces/test/obama1.jpg --purpose device-unlock > /dev/null
docker exec "$CONTAINER" facewarden audit verify > /dev/null

say "the image's HEALTHCHECK reports healthy"
for _ in $(seq 30); do
    [[ $(docker inspect -f '{{.State.Health.Status}}' "$CONTAINER") == healthy ]] && break
    sleep 1
done
[[ $(docker inspect -f '{{.State.Health.Status}}' "$CONTAINER") == healthy ]]

say "OK: image $TAG built, served TLS as uid 10001 on PostgreSQL, enrolled and verified"
