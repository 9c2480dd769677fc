#!/usr/bin/env bash
# Second-stage re-ranking on the offline evaluation sets (bench/RESULTS_rerank.md).
#   omniret eval prepare pdfs data/pdfs --source /tmp/texdoc/x      # texlive manuals: heading -> PDF
#   omniret eval prepare openclipart data/oca                         # Open Clip Art: title -> image
# Each run evaluates the first stage and the re-ranked list on the same test queries (<method>>rerank).
set -euo pipefail
OUT=${OUT:-bench/rerank_out}
omniret eval run data/pdfs --model offline --methods raw --rerank model:e5 --rerank-depth 20 \
    --max-queries 200 --cache data/eval-cache --out "$OUT/pdfs-e5"
omniret eval run data/oca --task title --subset 2000 --model offline --methods raw \
    --rerank model:offline:multilingual --rerank-depth 20 --max-queries 200 --cache data/eval-cache \
    --out "$OUT/oca-title-multilingual"
