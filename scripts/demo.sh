#!/usr/bin/env bash
# The main job: sets up everything (scripts/setup.sh --with-services: the build, PostgreSQL 15,
# Redis 7, Ceph RGW ...), then runs the disaster-recovery drill of a whole local RAG stack
# (scripts/rag_drill.sh): PostgreSQL, Redis, an S3 bucket of documents on Ceph RGW, the Qdrant
# contract server and Kubernetes manifests are loaded with a corpus whose parts point at each
# other, backed up as one recovery point, destroyed, restored tier by tier and proved
# consistent, printing the measured RTO and RPO.
#
#   bash scripts/demo.sh
#
# DEMO_FILES=1 also runs scripts/files_drill.sh afterwards (a ~400 MB directory and a
# PostgreSQL cluster under pgbench load, with throughput figures). REPRISE_BIN: use this
# binary and skip setup.sh. Other settings: see scripts/rag_drill.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -z "${REPRISE_BIN:-}" ]]; then
  bash scripts/setup.sh --with-services
fi
bash scripts/rag_drill.sh
if [[ "${DEMO_FILES:-0}" == 1 ]]; then
  REPRISE_BIN=${REPRISE_BIN:-$(pwd)/${REPRISE_BUILD_DIR:-build}/reprise} bash scripts/files_drill.sh
fi
