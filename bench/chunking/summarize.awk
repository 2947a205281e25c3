# Summarizes `go test -bench Split -count N` output of this package:
# per corpus and splitter, the best (min ns/op) and median MB/s, chunk count
# and longest chunk, then each splitter's ratio to langchaingo.
# Usage: go test -run '^$' -bench Split -count 5 ./chunking | awk -f chunking/summarize.awk
/^BenchmarkSplit\// {
	name = $1; sub(/^BenchmarkSplit\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "MB/s") mbs[name] = mbs[name] " " $i
		if ($(i+1) == "cpuMB/s") cpu[name] = cpu[name] " " $i
		if ($(i+1) == "chunks") chunks[name] = $i
		if ($(i+1) == "maxrunes") maxr[name] = $i
	}
	names[name] = 1
}
function sortnums(s, a,   n, i, j, t) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n
}
END {
	printf "| corpus/splitter | runs | best MB/s | median MB/s | median CPU MB/s | chunks | longest (runes) |\n|---|---|---|---|---|---|---|\n"
	for (k in names) {
		n = sortnums(mbs[k], a)
		best[k] = a[n]; med[k] = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		m = sortnums(cpu[k], c)
		cmed[k] = (m % 2) ? c[(m + 1) / 2] : (c[m / 2] + c[m / 2 + 1]) / 2
		printf "| %s | %d | %.1f | %.1f | %.1f | %d | %d |\n", k, n, best[k], med[k], cmed[k], chunks[k], maxr[k]
	}
	printf "\n| corpus/splitter | best ÷ langchaingo best | median ÷ langchaingo median | CPU median ÷ langchaingo CPU median |\n|---|---|---|---|\n"
	for (k in names) {
		split(k, p, "/")
		peer = p[1] "/langchaingo"
		if (k == peer || !(peer in names)) continue
		printf "| %s | %.2f× | %.2f× | %.2f× |\n", k, best[k] / best[peer], med[k] / med[peer], cmed[k] / cmed[peer]
	}
}
