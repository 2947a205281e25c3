#!/bin/sh
# Decode speed of the native engine side by side with llama2.c on the same
# weights, interleaved so that both see the same machine load.
#
#   LLAMA2C=path/to/llama2.c bench/llama2c.sh [rounds]
#
# LLAMA2C is a checkout of github.com/karpathy/llama2.c (MIT) that you
# fetched; its run.c and runq.c are built here with
# gcc -Ofast -march=native -fopenmp and run with OMP_NUM_THREADS. The script
# writes the synthetic 110M model (llmbench gen), converts it to llama2.c's
# checkpoints (llmbench llama2c: fp32 for run.c, int8 groups of 64 for
# runq.c), measures read bandwidth (an OpenMP sum in C and the engine's
# kernel), then for each round and thread count runs, in turn, the engine
# on F32, run.c, the engine on Q8_0 and runq.c: prompt 32 tokens, GEN
# (default 128) generated, greedy, decode tokens/s. It prints every sample and a summary
# with min/median and the ratio of medians.
#
# run.c has no batched prefill (it feeds the prompt one token per step), so
# its prefill rate is its decode rate; the engine's prefill is reported
# beside it. BASE=path/to/another/llmbench adds that build of the engine
# (an earlier commit) to every round. run.c's rate counts every step after the first, prompt steps
# included, which cost the same as decode steps there.
set -eu
: "${LLAMA2C:?set LLAMA2C to a llama2.c checkout}"
ROUNDS=${1:-5}
THREADS=${THREADS:-"2 1"}
GEN=${GEN:-128} # generated tokens per run
OUT=bench/out
BIN=$OUT/llama2c
mkdir -p "$BIN"
gcc -Ofast -march=native -fopenmp "$LLAMA2C/run.c" -o "$BIN/run" -lm
gcc -Ofast -march=native -fopenmp "$LLAMA2C/runq.c" -o "$BIN/runq" -lm
gcc -Ofast -march=native -fopenmp bench/llama2c/bwsum.c -o "$BIN/bwsum"
(cd bench && go build -o ../bin/llmbench ./cmd/llmbench)
[ -f $OUT/llama110m-f32.gguf ] || bin/llmbench gen -out $OUT
[ -f $OUT/llama110m.bin ] || bin/llmbench llama2c -model $OUT/llama110m-f32.gguf -fp32 $OUT/llama110m.bin -q80 $OUT/llama110m-q80.bin

# About 31 tokens with llama2.c's tokenizer, plus BOS: a 32-token prompt.
PROMPT="Once upon a time there was a little girl named Lily who lived in a small house near the big forest with her mother, her father and her dog"
SAMPLES=$(mktemp)
trap 'rm -f "$SAMPLES"' EXIT

ours() { # model threads [llmbench] -> "decode prefill cpu/wall"
	${3:-bin/llmbench} run -model "$1" -threads "$2" -streams 1 -prompt 32 -gen "$GEN" -runs 1 |
		sed -n 's/.*decode \([0-9.]*\) tok\/s.*prefill \([0-9.]*\) tok\/s.*CPU\/wall \([0-9.]*\).*/\1 \2 \3/p'
}
theirs() { # binary checkpoint threads -> "tok/s"
	OMP_NUM_THREADS=$3 "$BIN/$1" "$2" -z "$LLAMA2C/tokenizer.bin" -t 0 -n $((32 + GEN)) -i "$PROMPT" 2>&1 >/dev/null |
		sed -n 's/achieved tok\/s: \([0-9.]*\)/\1/p'
}

for t in $THREADS; do
	OMP_NUM_THREADS=$t "$BIN/bwsum" | sed "s/^/threads $t: C OpenMP /"
	bin/llmbench bound -threads "$t" -quick | sed "s/^/threads $t: /"
done
for r in $(seq "$ROUNDS"); do
	for t in $THREADS; do
		set -- $(ours $OUT/llama110m-f32.gguf "$t")
		echo "round $r threads $t F32 engine $1 prefill $2 cpu/wall $3" | tee -a "$SAMPLES"
		echo "round $r threads $t F32 llama2c $(theirs run $OUT/llama110m.bin "$t")" | tee -a "$SAMPLES"
		if [ -n "${BASE:-}" ]; then
			set -- $(ours $OUT/llama110m-f32.gguf "$t" "$BASE")
			echo "round $r threads $t F32 base $1 prefill $2 cpu/wall $3" | tee -a "$SAMPLES"
		fi
		set -- $(ours $OUT/llama110m-q8_0.gguf "$t")
		echo "round $r threads $t Q8_0 engine $1 prefill $2 cpu/wall $3" | tee -a "$SAMPLES"
		echo "round $r threads $t Q8_0 llama2c $(theirs runq $OUT/llama110m-q80.bin "$t")" | tee -a "$SAMPLES"
		if [ -n "${BASE:-}" ]; then
			set -- $(ours $OUT/llama110m-q8_0.gguf "$t" "$BASE")
			echo "round $r threads $t Q8_0 base $1 prefill $2 cpu/wall $3" | tee -a "$SAMPLES"
		fi
	done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "summary: decode tok/s, min / median over $ROUNDS rounds"
for t in $THREADS; do
	for ty in F32 Q8_0; do
		e=$(awk -v t="$t" -v ty="$ty" '$4==t && $5==ty && $6=="engine" {print $7}' "$SAMPLES" | sort -g)
		c=$(awk -v t="$t" -v ty="$ty" '$4==t && $5==ty && $6=="llama2c" {print $7}' "$SAMPLES" | sort -g)
		p=$(awk -v t="$t" -v ty="$ty" '$4==t && $5==ty && $6=="engine" {print $9}' "$SAMPLES" | sort -g)
		med() { echo "$1" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
		emin=$(echo "$e" | head -1) emed=$(med "$e") cmin=$(echo "$c" | head -1) cmed=$(med "$c")
		if [ -n "${BASE:-}" ]; then
			b=$(awk -v t="$t" -v ty="$ty" '$4==t && $5==ty && $6=="base" {print $7}' "$SAMPLES" | sort -g)
			echo "$ty, $t threads: base engine $(echo "$b" | head -1) / $(med "$b")"
		fi
		# Each round's two runs saw the same machine: the median of the
		# per-round ratios is steadier than the ratio of medians when the
		# host's memory bandwidth moves between rounds.
		rr=$(awk -v t="$t" -v ty="$ty" '$4==t && $5==ty && $6=="engine" {e[$2]=$7} $4==t && $5==ty && $6=="llama2c" {c[$2]=$7} END {for (r in e) if (c[r] > 0) print e[r]/c[r]}' "$SAMPLES" | sort -g)
		echo "$ty, $t threads: engine $emin / $emed, llama2.c $cmin / $cmed, ratio of medians $(awk -v a="$emed" -v b="$cmed" 'BEGIN {printf "%.2f", a/b}')x, median of per-round ratios $(med "$rr" | awk '{printf "%.2f", $1}')x (min $(echo "$rr" | head -1 | awk '{printf "%.2f", $1}')x); engine prefill median $(med "$p") tok/s"
	done
done
