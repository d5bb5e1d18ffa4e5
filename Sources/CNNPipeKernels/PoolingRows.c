// The inner loops of 2-D pooling (NNPipeRuntime's PoolingKernels.poolPlane2D), eight lanes at a
// time with AVX2: combining a window's input rows into one row, and the windows along that row.
// Comparisons keep what the Swift loops keep: a NaN already held stays and a NaN arriving is
// skipped. Callers check nnpipe_native_kernels_available() first (AVX2).
#include "CNNPipeKernels.h"

static void combine_scalar(float *scratch, const float *row, long count, int maximum) {
    for (long index = 0; index < count; index++) {
        float held = scratch[index], next = row[index];
        scratch[index] = maximum ? (next > held ? next : held) : held + next;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define VECTOR_CODE __attribute__((target("avx2,fma")))

VECTOR_CODE void nnpipe_pool_combine_rows(float *scratch, const float *row, long count, int maximum) {
    long index = 0;
    for (; index + 8 <= count; index += 8) {
        __m256 held = _mm256_loadu_ps(scratch + index), next = _mm256_loadu_ps(row + index);
        // max_ps(next, held) is next > held ? next : held, and held when either is NaN.
        __m256 combined = maximum ? _mm256_max_ps(next, held) : _mm256_add_ps(held, next);
        _mm256_storeu_ps(scratch + index, combined);
    }
    combine_scalar(scratch + index, row + index, count - index, maximum);
}

// Eight windows of stride 2 starting at window[0]: tap t of output i is window[2i + t]. Reads
// window[0 ..< 16 + kernel - 1].
VECTOR_CODE static __m256 strided_taps(const float *window, int tap) {
    __m256 low = _mm256_loadu_ps(window + tap), high = _mm256_loadu_ps(window + tap + 8);
    __m256 evens = _mm256_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(evens), _MM_SHUFFLE(3, 1, 2, 0)));
}

VECTOR_CODE long nnpipe_pool_row(const float *window, float *output, long count, int kernel, int stride, int maximum, float divisor) {
    if (stride != 1 && stride != 2) return 0;
    long done = 0;
    __m256 scale = _mm256_set1_ps(divisor);
    for (; done + 8 <= count; done += 8) {
        const float *start = window + done * stride;
        // As the Swift loop: from -inf (or 0), so a NaN in any tap is skipped.
        __m256 result = maximum ? _mm256_set1_ps(-__builtin_inff()) : _mm256_setzero_ps();
        for (int tap = 0; tap < kernel; tap++) {
            __m256 taps = stride == 1 ? _mm256_loadu_ps(start + tap) : strided_taps(start, tap);
            result = maximum ? _mm256_max_ps(taps, result) : _mm256_add_ps(result, taps);
        }
        if (!maximum) result = _mm256_div_ps(result, scale);
        _mm256_storeu_ps(output + done, result);
    }
    return done;
}

#else

void nnpipe_pool_combine_rows(float *scratch, const float *row, long count, int maximum) {
    combine_scalar(scratch, row, count, maximum);
}

long nnpipe_pool_row(const float *window, float *output, long count, int kernel, int stride, int maximum, float divisor) {
    return 0;
}

#endif
