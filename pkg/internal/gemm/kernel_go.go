package gemm

// kernelGo is the portable 6×16 tile: the sums of the assembly in the
// same order, rounded after each multiply (the assembly fuses them).
func kernelGo(k int, a []float32, lda int, b, c []float32, ldc int) {
	var acc [mr][nr]float32
	a, b = a[:5*lda+k], b[:k*nr]
	for q := range k {
		bq := (*[nr]float32)(b[q*nr:])
		for r := range mr {
			ar := a[r*lda+q]
			row := &acc[r]
			for j, v := range bq {
				row[j] += ar * v
			}
		}
	}
	for r := range mr {
		row := c[r*ldc : r*ldc+nr]
		for j := range row {
			row[j] += acc[r][j]
		}
	}
}
