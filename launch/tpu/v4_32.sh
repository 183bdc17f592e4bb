#!/usr/bin/env bash
# Multi-host TPU v4-32 slice (4 hosts): create, install on every worker, run the same job on
# all workers under nohup (log: ~/kdjax-run.log on each worker). Usage:
#   PROJECT=my-proj BUCKET=gs://my-bucket REPO=https://github.com/me/kdjax.git \
#     launch/tpu/v4_32.sh [--dry_run]
set -euo pipefail
cd "$(dirname "$0")/../.."
python -m launch.tpu.tpu_vm --action=launch --name="${NAME:-kdjax-v4-32}" \
  --zone="${ZONE:-us-central2-b}" --accelerator_type=v4-32 --project="${PROJECT:?set PROJECT}" \
  --repo_url="${REPO:?set REPO}" --branch="${BRANCH:-main}" --background \
  --command="python -m launch.main --config=${CONFIG:-experiments/quickstart.py} --workdir=${BUCKET:?set BUCKET}/${RUN:-v4-32-run}" \
  "$@"
