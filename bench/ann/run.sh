#!/bin/sh
# Runs the whole ANN benchmark in one go: dataset and exact ground truth (Go),
# pkg/hnsw (Go), hnswlib and FAISS HNSW (Debian python3 packages) on the same
# vectors, then the report with min/median over runs and ratios.
#
#   bench/ann/run.sh                  # 100k × 384, 3 query passes
#   N=20000 RUNS=1 bench/ann/run.sh   # quick check
#
# Needs: go, and apt-get install python3-faiss python3-hnswlib python3-numpy.
# Environment: N, NQ (dataset size), RUNS (query passes), SYSTEMS (peers),
# GRPC=0 (skip the gRPC step), GRPC_ADDR (server for the gRPC step).
set -eu
cd "$(dirname "$0")/.."
DIR=${DIR:-out/ann}
N=${N:-100000}
NQ=${NQ:-1000}
RUNS=${RUNS:-3}
PY=${PY:-/usr/bin/python3}
SYSTEMS=${SYSTEMS:-hnswlib,faiss}
# FAISS builds with OpenMP; passive waiting keeps idle threads from burning a
# core on a small machine.
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$DIR"
if [ ! -f "$DIR/meta.json" ] || ! grep -q "\"N\": $N," "$DIR/meta.json" || ! grep -q "\"NQ\": $NQ," "$DIR/meta.json"; then
	go run ./ann gen -dir "$DIR" -n "$N" -nq "$NQ"
fi
go build -o "$DIR/ann-bench" ./ann
"$DIR/ann-bench" run -dir "$DIR" -runs "$RUNS" | tee "$DIR/go.log"
"$PY" ann/peers.py --dir "$DIR" --runs "$RUNS" --systems "$SYSTEMS" | tee "$DIR/peers.log"
# Through Qdrant's gRPC API with the official client, against the embedded
# store started in process (GRPC_ADDR=host:port targets another server, e.g.
# a real Qdrant; GRPC=0 skips this step).
if [ "${GRPC:-1}" != 0 ]; then
	"$DIR/ann-bench" grpc -dir "$DIR" -runs "$RUNS" -addr "${GRPC_ADDR:-}" | tee "$DIR/grpc.log"
fi
"$PY" ann/report.py --dir "$DIR" | tee "$DIR/report.md"
