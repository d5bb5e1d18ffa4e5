// Calibration's histogram count (StageCalibrate's Histogram.countFinite), eight values a step with
// AVX2: bin = floor((x - lower) * scale) clamped to [0, bins - 1] exactly as the scalar rule
// (a position that is not >= 0, NaN included, goes to bin 0), and the batch's finite extremes.
// Even lanes count into table[0 ..< bins], odd lanes into table[bins ..< 2 bins], so runs of one
// bin (the zeros after a Relu) do not wait on each other's stores.
#include "CNNPipeKernels.h"
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define VECTOR_CODE __attribute__((target("avx2,fma")))

static long scalar_bin(float value, float lower, float scale, float last) {
    float position = (value - lower) * scale;
    return position >= 0 ? (long)(position < last ? position : last) : 0;
}

VECTOR_CODE int nnpipe_histogram_count(const float *values, long count, unsigned *table, long bins, float lower, float scale,
                                       float *minimum, float *maximum) {
    const __m256 infinity = _mm256_set1_ps(__builtin_inff()), negative_infinity = _mm256_set1_ps(-__builtin_inff());
    const __m256 zero = _mm256_setzero_ps(), last = _mm256_set1_ps((float)(bins - 1));
    const __m256 lowers = _mm256_set1_ps(lower), scales = _mm256_set1_ps(scale);
    const __m256i offsets = _mm256_setr_epi32(0, (int)bins, 0, (int)bins, 0, (int)bins, 0, (int)bins);
    __m256 low = infinity, high = negative_infinity, non_finite = zero;
    int slots[8] __attribute__((aligned(32)));
    long index = 0;
    for (; index + 8 <= count; index += 8) {
        __m256 vector = _mm256_loadu_ps(values + index);
        // Ordered comparisons: false for NaN, so NaN is neither an extreme nor finite.
        __m256 finite = _mm256_and_ps(_mm256_cmp_ps(vector, negative_infinity, _CMP_GT_OQ), _mm256_cmp_ps(vector, infinity, _CMP_LT_OQ));
        low = _mm256_min_ps(low, _mm256_blendv_ps(infinity, vector, finite));
        high = _mm256_max_ps(high, _mm256_blendv_ps(negative_infinity, vector, finite));
        non_finite = _mm256_or_ps(non_finite, _mm256_andnot_ps(finite, _mm256_castsi256_ps(_mm256_set1_epi32(-1))));
        __m256 position = _mm256_mul_ps(_mm256_sub_ps(vector, lowers), scales);
        position = _mm256_max_ps(position, zero);   // zero where position < 0 or NaN (max returns the second operand)
        position = _mm256_min_ps(position, last);
        __m256i slot = _mm256_add_epi32(_mm256_cvttps_epi32(_mm256_floor_ps(position)), offsets);
        _mm256_store_si256((__m256i *)slots, slot);
        for (int lane = 0; lane < 8; lane++) table[slots[lane]]++;
    }
    float lanes[8] __attribute__((aligned(32)));
    _mm256_store_ps(lanes, low);
    float smallest = lanes[0];
    for (int lane = 1; lane < 8; lane++) if (lanes[lane] < smallest) smallest = lanes[lane];
    _mm256_store_ps(lanes, high);
    float largest = lanes[0];
    for (int lane = 1; lane < 8; lane++) if (lanes[lane] > largest) largest = lanes[lane];
    int has_non_finite = _mm256_movemask_ps(non_finite) != 0;
    float last_bin = (float)(bins - 1);
    for (; index < count; index++) {
        float value = values[index];
        table[scalar_bin(value, lower, scale, last_bin)]++;
        if (!(value > -__builtin_inff() && value < __builtin_inff())) { has_non_finite = 1; continue; }
        if (value < smallest) smallest = value;
        if (value > largest) largest = value;
    }
    *minimum = smallest;
    *maximum = largest;
    return has_non_finite;
}

#else

int nnpipe_histogram_count(const float *values, long count, unsigned *table, long bins, float lower, float scale,
                           float *minimum, float *maximum) {
    abort();
}

#endif
