#!/bin/sh
# Encoder forward-pass speed side by side with PyTorch on CPU, on the same
# synthetic weights, token ids and thread counts (issue 10):
#
#   bench/encoder.sh [rounds]
#
# pkg/encoder's BenchmarkShapes writes the MiniLM-L6- and bge-base-shaped
# models (seed 1) to bench/out/encoder and times EmbedIDs (one 16-token
# query; 32 chunks of 256 tokens) on 1 and 2 threads; then
# tools/encbench/torch_bench.py loads the same model.safetensors into
# PyTorch and times the same passes, the same threads. Rounds alternate the
# two so that both see the same machine load. The sgemm peak is measured
# first: pkg/internal/gemm's 1024³ product and torch.mm of 1024².
#
# PyTorch is Debian's python3-torch (1.13); as packaged it calls the
# reference BLAS (libblas.so.3), so every round also runs it with OpenBLAS
# (Debian's libopenblas0-pthread, through LD_LIBRARY_PATH: the system's
# BLAS choice is left alone) when that is installed. The reference-BLAS
# run times the query only (its chunks take minutes).
set -eu
ROUNDS=${1:-2}
OUT=$(pwd)/bench/out/encoder
OPENBLAS=/usr/lib/x86_64-linux-gnu/openblas-pthread
mkdir -p "$OUT"
uptime
(cd pkg/internal/gemm && go test -run '^$' -bench 'Mul/1024' -benchtime 10x -count 3 .)
for r in $(seq "$ROUNDS"); do
	echo "== round $r"
	uptime
	(cd pkg/encoder && ENCODER_BENCH_DIR="$OUT" go test -run '^$' -bench 'Shapes/.*/query16' -benchtime 50x . &&
		ENCODER_BENCH_DIR="$OUT" go test -run '^$' -bench 'Shapes/.*/chunk' -benchtime 1x .)
	if [ -e "$OPENBLAS/libblas.so.3" ]; then
		echo "-- torch with OpenBLAS"
		LD_LIBRARY_PATH=$OPENBLAS /usr/bin/python3 tools/encbench/torch_bench.py "$OUT"
	fi
	echo "-- torch with the reference BLAS"
	/usr/bin/python3 tools/encbench/torch_bench.py "$OUT" query
done
