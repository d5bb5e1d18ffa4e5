// The inner loops of 2-D pooling (NNPipeRuntime's PoolingKernels.poolPlane2D), eight lanes at a
// time with AVX2: combining a window's input rows into one row, and the windows along that row.
// Comparisons keep what the Swift loops keep: a NaN already held stays and a NaN arriving is
// skipped. Callers check nnpipe_native_kernels_available() first (AVX2).
#include "CNNPipeKernels.h"
#include <stdlib.h>
#include <string.h>

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

// A window's maximum along the combined row, one tap at a time, as the Swift edge loop takes it:
// from -inf, next >= best ? next : best (a NaN tap is skipped).
static float window_maximum(const float *row, long first, long last) {
    float best = -__builtin_inff();
    for (long index = first; index < last; index++) best = row[index] >= best ? row[index] : best;
    return best;
}

VECTOR_CODE void nnpipe_max_pool_plane(const float *input, long height, long width, float *output, long output_height, long output_width,
                                       long kernel_height, long kernel_width, long stride_height, long stride_width, long pad_top,
                                       long pad_left, float *scratch) {
    // Output columns whose window lies inside the row (the rest clip it at the row's ends).
    long first = (pad_left + stride_width - 1) / stride_width;
    if (first > output_width) first = output_width;
    long end = width + pad_left >= kernel_width ? (width + pad_left - kernel_width) / stride_width + 1 : first;
    if (end > output_width) end = output_width;
    if (end < first) end = first;
    for (long oh = 0; oh < output_height; oh++) {
        long origin = oh * stride_height - pad_top;
        long top = origin > 0 ? origin : 0, bottom = origin + kernel_height < height ? origin + kernel_height : height;
        float *destination = output + oh * output_width;
        if (top >= bottom) {
            // A window entirely in the padding: MaxPool's identity.
            for (long ow = 0; ow < output_width; ow++) destination[ow] = -__builtin_inff();
            continue;
        }
        memcpy(scratch, input + top * width, (size_t)width * sizeof(float));
        for (long row = top + 1; row < bottom; row++) nnpipe_pool_combine_rows(scratch, input + row * width, width, 1);
        long ow = first;
        if (end > first) ow += nnpipe_pool_row(scratch + (first * stride_width - pad_left), destination + first, end - first, (int)kernel_width,
                                               (int)stride_width, 1, 1.0f);
        for (; ow < end; ow++) {
            long start = ow * stride_width - pad_left;
            destination[ow] = window_maximum(scratch, start, start + kernel_width);
        }
        for (ow = 0; ow < output_width; ow++) {
            if (ow == first) ow = end;
            if (ow >= output_width) break;
            long start = ow * stride_width - pad_left, stop = start + kernel_width;
            destination[ow] = window_maximum(scratch, start > 0 ? start : 0, stop < width ? stop : width);
        }
    }
}

#else

void nnpipe_max_pool_plane(const float *input, long height, long width, float *output, long output_height, long output_width,
                           long kernel_height, long kernel_width, long stride_height, long stride_width, long pad_top,
                           long pad_left, float *scratch) {
    abort();
}

void nnpipe_pool_combine_rows(float *scratch, const float *row, long count, int maximum) {
    combine_scalar(scratch, row, count, maximum);
}

long nnpipe_pool_row(const float *window, float *output, long count, int kernel, int stride, int maximum, float divisor) {
    return 0;
}

#endif
