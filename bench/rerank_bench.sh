#!/usr/bin/env bash
# Second-stage re-ranking on the offline evaluation sets (bench/RESULTS_rerank.md).
#   omniret eval prepare pdfs data/pdfs --source /tmp/texdoc/x      # texlive manuals: heading -> PDF
#   omniret eval prepare openclipart data/oca                         # Open Clip Art: title -> image
# Each run evaluates the first stage and the re-ranked list on the same test queries (<method>>rerank).
# PDFS_N: the first N PDFs of data/pdfs (all 40 take hours to index on 2 shared cores).
# --depth 50 --rerank-depth 50: Index.search re-ranks max(k, rerank_depth) hits, so the re-ranker sees the
# top 50 first-stage hits (the least depth the runner accepts; mAP@50 needs 50 ranks).
# RUN_PDFS=1 adds the PDF run: model:e5 re-embeds each candidate page's whole text layer for every query,
# 3.5 s a page measured on one loaded core of the shared box, i.e. minutes per query at depth 50 (see RESULTS_rerank.md).
set -euo pipefail
OUT=${OUT:-bench/rerank_out}
PDFS_N=${PDFS_N:-8}
Q=${MAX_QUERIES:-60}
if [ "${RUN_PDFS:-0}" = 1 ]; then
PDFS=data/pdfs$PDFS_N
mkdir -p "$PDFS"
head -n "$PDFS_N" data/pdfs/corpus.jsonl > "$PDFS/corpus.jsonl"
python - "$PDFS" <<'EOF'
import json, sys
folder = sys.argv[1]
ids = {json.loads(line)["id"] for line in open(f"{folder}/corpus.jsonl", encoding="utf-8")}
with open("data/pdfs/queries.jsonl", encoding="utf-8") as src, open(f"{folder}/queries.jsonl", "w", encoding="utf-8") as dst:
    dst.writelines(line for line in src if set(json.loads(line)["relevant"]) <= ids)
EOF
for rr in model:e5 ${EXTRA_PDF_RERANK:-}; do
    omniret eval run "$PDFS" --model offline --methods raw --rerank "$rr" --depth 50 --rerank-depth 50 \
        --max-queries "$Q" --cache data/eval-cache --out "$OUT/pdfs$PDFS_N-${rr//[:\/]/_}"
done
fi
omniret eval run data/oca --task title --subset "${OCA_SUBSET:-2000}" --model offline --methods raw \
    --rerank model:offline:multilingual --depth 50 --rerank-depth 50 --max-queries "$Q" --cache data/eval-cache \
    --out "$OUT/oca-title-multilingual"
