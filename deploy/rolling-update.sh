#!/usr/bin/env bash
# Zero-downtime upgrade of the compose deployment: start new app replicas beside the old ones,
# wait until they are healthy (/ready: database reachable, migrations applied), then stop the old
# ones. nginx re-resolves `app` every 10 s and retries a request refused by a stopping replica on
# another one; open WebSockets on an old replica close and the clients resume on a new one.
#
# Usage (from the repository root, on the server):
#   git pull && deploy/rolling-update.sh            # rebuild the image from this checkout
#   ALLIN_IMAGE=registry.example.com/allin:1.4 deploy/rolling-update.sh --pull
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REPLICAS=${REPLICAS:-2}
TIMEOUT_S=${TIMEOUT_S:-300}

if [ "${1:-}" = "--pull" ]; then
  docker compose pull app
else
  docker compose build app
fi

old=$(docker compose ps --quiet app)
if [ -z "$old" ]; then
  echo "no app replicas are running: starting them"
  exec docker compose up -d
fi
count=$(echo "$old" | wc -l)
echo "old replicas: $(echo $old)"

# New containers take the new image; --no-recreate leaves the old ones serving meanwhile.
docker compose up -d --no-deps --no-recreate --scale app=$((count + REPLICAS)) app
new=$(docker compose ps --quiet app | grep -vxF "$old" || true)
[ -n "$new" ] || { echo "no new replicas were started" >&2; exit 1; }

deadline=$((SECONDS + TIMEOUT_S))
for id in $new; do
  until [ "$(docker inspect --format '{{.State.Health.Status}}' "$id")" = healthy ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "replica $id not healthy after ${TIMEOUT_S}s: removing the new replicas, the old ones keep serving" >&2
      docker logs --tail 50 "$id" >&2 || true
      docker rm -f $new >/dev/null
      exit 1
    fi
    sleep 3
  done
  echo "new replica $id is healthy"
done

sleep 12  # let nginx's resolver (valid=10s) see the new replicas before the old ones go
# SIGTERM, then up to stop_grace_period for requests and WebSockets to finish.
docker stop $old >/dev/null
docker rm $old >/dev/null
docker compose up -d --no-deps --no-recreate --scale app="$REPLICAS" app
echo "upgraded: $(docker compose ps --quiet app | wc -l) replicas running the new image"
