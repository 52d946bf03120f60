#!/usr/bin/env bash
# Until the first release the schema lives in one initial migration (0001) plus hand-written
# PostgreSQL extras (0002+). After changing a model, regenerate 0001 from the models.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f alembic/versions/0001_initial_schema.py
# later revisions depend on 0001: hide them while autogenerating against an empty database
mkdir -p "$tmp/later"; for f in alembic/versions/0*.py; do [ -e "$f" ] && mv "$f" "$tmp/later/"; done
DATABASE_URL="sqlite:///$tmp/empty.db" .venv/bin/alembic revision --autogenerate -m "initial schema" --rev-id 0001 >/dev/null 2>&1
for f in "$tmp"/later/*.py; do [ -e "$f" ] && mv "$f" alembic/versions/; done
rm -rf "$tmp"
echo "regenerated alembic/versions/0001_initial_schema.py"
