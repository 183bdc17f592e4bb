#!/usr/bin/env bash
# Single-host TPU v4-8: create, install kdjax, run one job. Usage:
#   PROJECT=my-proj BUCKET=gs://my-bucket REPO=https://github.com/me/kdjax.git \
#     launch/tpu/v4_8.sh [--dry_run]
set -euo pipefail
cd "$(dirname "$0")/../.."
python -m launch.tpu.tpu_vm --action=launch --name="${NAME:-kdjax-v4-8}" \
  --zone="${ZONE:-us-central2-b}" --accelerator_type=v4-8 --project="${PROJECT:?set PROJECT}" \
  --repo_url="${REPO:?set REPO}" --branch="${BRANCH:-main}" \
  --command="python -m launch.main --config=${CONFIG:-experiments/quickstart.py} --workdir=${BUCKET:?set BUCKET}/${RUN:-v4-8-run}" \
  "$@"
