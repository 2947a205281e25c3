#!/bin/sh
# Memory, recall and latency of int8 scalar quantization with mapped
# originals and rescoring (the store's quantization_config + on_disk),
# side by side in one run with the float32 pkg/hnsw index and hnswlib on the
# same dataset.
#
#   bench/ann/quant.sh                  # 100k × 384
#   N=20000 bench/ann/quant.sh          # quick check
#
# Needs: go, and apt-get install python3-hnswlib python3-numpy.
set -eu
cd "$(dirname "$0")/.."
DIR=${DIR:-out/ann}
N=${N:-100000}
NQ=${NQ:-1000}
PY=${PY:-/usr/bin/python3}
EF=${EF:-16,24,32,48,64,96,128}
mkdir -p "$DIR"
if [ ! -f "$DIR/meta.json" ] || ! grep -q "\"N\": $N," "$DIR/meta.json" || ! grep -q "\"NQ\": $NQ," "$DIR/meta.json"; then
	go run ./ann gen -dir "$DIR" -n "$N" -nq "$NQ"
fi
go build -o "$DIR/ann-bench" ./ann
"$DIR/ann-bench" quant -dir "$DIR" -ef "$EF" | tee "$DIR/quant.log"
"$DIR/ann-bench" run -dir "$DIR" -runs 1 -ef "$EF" -phases sweep | tee "$DIR/go-float.log"
"$PY" ann/peers.py --dir "$DIR" --runs 1 --systems hnswlib --ef "$EF" --ef-conc 64 --clients 2 | tee "$DIR/peers-quant.log"
