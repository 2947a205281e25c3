// Read bandwidth the way an OpenMP program reads: every thread sums its
// share of a 1 GiB float array with AVX (gcc -Ofast -march=native -fopenmp
// -Ofast vectorizes the loop). Best of 5, in GB/s. Part of Tributary's llama2.c
// comparison (bench/llama2c.sh); not llama2.c code.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    const long n = 1L << 28; // 1 GiB of float
    float *a = malloc(n * sizeof(float));
    if (!a) return 1;
    #pragma omp parallel for
    for (long i = 0; i < n; i++) a[i] = (float)(i & 7);
    double best = 0, sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        float s = 0;
        #pragma omp parallel for reduction(+:s)
        for (long i = 0; i < n; i++) s += a[i];
        double gbs = n * sizeof(float) / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
        sink += s;
    }
    printf("bwsum %.2f GB/s (checksum %.0f)\n", best, sink / 1e9);
    return 0;
}
