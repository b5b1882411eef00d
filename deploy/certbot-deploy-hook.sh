#!/usr/bin/env bash
# certbot --deploy-hook: runs after every successful issue or renewal. Copies the new certificate
# into deploy/certs (nginx mounts that folder) and reloads nginx without dropping connections.
# certbot sets RENEWED_LINEAGE to /etc/letsencrypt/live/<domain>.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${RENEWED_LINEAGE:?run by certbot as --deploy-hook}"
install -m 0644 "$RENEWED_LINEAGE/fullchain.pem" "$HERE/certs/fullchain.pem"
install -m 0600 "$RENEWED_LINEAGE/privkey.pem" "$HERE/certs/privkey.pem"
cd "$HERE/.."
if docker compose ps --status running --services 2>/dev/null | grep -qx nginx; then
  docker compose exec -T nginx nginx -s reload
fi
echo "certificate for $(basename "$RENEWED_LINEAGE") installed in $HERE/certs"
