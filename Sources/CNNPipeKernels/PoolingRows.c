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

// Output columns first ..< end have their whole window inside the row; the rest clip it.
static void interior_columns(long width, long output_width, long kernel_width, long stride_width, long pad_left, long *first, long *end) {
    *first = (pad_left + stride_width - 1) / stride_width;
    if (*first > output_width) *first = output_width;
    *end = width + pad_left >= kernel_width ? (width + pad_left - kernel_width) / stride_width + 1 : *first;
    if (*end > output_width) *end = output_width;
    if (*end < *first) *end = *first;
}

// AVX-512, stride 1 or 2 along the row: sixteen outputs at a time straight from the input rows,
// with no combined row in scratch. Each tap's input columns are combined down the window's rows
// (first row first, then max(next, held)) and the taps from the left (from -inf, max(tap, held)),
// the order of the AVX2 path, so NaN and signed zeros come out the same. On SqueezeNet's
// 256 x 27 x 27 pool the AVX2 path (copy, combine, then a row of 13 windows of which 5 go
// scalar) took 0.16 ms on one thread, onnxruntime 0.02.
#define VECTOR512_CODE __attribute__((target("avx512f,avx2,fma")))

static __mmask16 lanes_below16(long count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

// The maximum of a window clipped to the row, as window_maximum over rows combined top-down.
static float clipped_window(const float *input, long width, long top, long bottom, long start, long stop) {
    float best = -__builtin_inff();
    for (long column = start > 0 ? start : 0; column < stop && column < width; column++) {
        float held = input[top * width + column];
        for (long row = top + 1; row < bottom; row++) {
            float next = input[row * width + column];
            held = next > held ? next : held;
        }
        best = held >= best ? held : best;
    }
    return best;
}

// Sixteen outputs (the first `count` kept) of windows `TAPS` columns wide, `STRIDE` (1 or 2) apart,
// over `rows` rows `width` apart from `window`. TAPS and STRIDE are constants after inlining:
// with loops of run-time length the same work ran three times slower.
VECTOR512_CODE static inline __attribute__((always_inline)) __m512 pooled_vector(const long TAPS, const int STRIDE, const float *window,
                                                                                 long rows, long width, long count) {
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    // Columns tap + STRIDE * i for i < count: one vector at stride 1, the even lanes of two at 2.
    long needed = STRIDE * (count - 1) + 1;
    __mmask16 low = lanes_below16(needed), high = lanes_below16(needed - 16);
    __m512 result = _mm512_set1_ps(-__builtin_inff());
    for (long tap = 0; tap < TAPS; tap++) {
        __m512 left = _mm512_maskz_loadu_ps(low, window + tap), right = _mm512_setzero_ps();
        if (STRIDE == 2) right = _mm512_maskz_loadu_ps(high, window + tap + 16);
        for (long row = 1; row < rows; row++) {
            left = _mm512_max_ps(_mm512_maskz_loadu_ps(low, window + row * width + tap), left);
            if (STRIDE == 2) right = _mm512_max_ps(_mm512_maskz_loadu_ps(high, window + row * width + tap + 16), right);
        }
        result = _mm512_max_ps(STRIDE == 2 ? _mm512_permutex2var_ps(left, evens, right) : left, result);
    }
    return result;
}

// The windows of one output row outside first ..< end, clipped at the row's ends.
static __attribute__((noinline)) void clipped_edges(const float *input, long width, long top, long bottom, float *destination,
                                                    long output_width, long kernel_width, long stride_width, long pad_left, long first,
                                                    long end) {
    for (long ow = 0; ow < output_width; ow++) {
        if (ow == first) ow = end;
        if (ow >= output_width) break;
        long start = ow * stride_width - pad_left;
        destination[ow] = clipped_window(input, width, top, bottom, start, start + kernel_width);
    }
}

// The windows first ..< end of one output row over `rows` rows from `top`, any window.
#define POOLED_ROW(NAME, STRIDE) \
    VECTOR512_CODE __attribute__((noinline)) static void NAME(const float *top, long rows, long width, long taps, long pad_left, \
                                                              long first, long end, float *destination) { \
        for (long ow = first; ow < end; ow += 16) { \
            long count = end - ow < 16 ? end - ow : 16; \
            __m512 result = pooled_vector(taps, STRIDE, top + ow * STRIDE - pad_left, rows, width, count); \
            _mm512_mask_storeu_ps(destination + ow, lanes_below16(count), result); \
        } \
    }
POOLED_ROW(pooled_row_2, 2)
POOLED_ROW(pooled_row_1, 1)
#undef POOLED_ROW

// A plane, the interior of rows whose window is whole by pooled_vector with TAPS, STRIDE and
// ROWS constant (a common window; the general function passes run-time values). One function per
// window, each with one inlined copy of the loop: with every case inlined into one function, or
// the rows a run-time count, the same work ran 1.5-2 times slower.
#define POOLED_PLANE(NAME, TAPS, STRIDE, ROWS) \
    VECTOR512_CODE __attribute__((noinline)) static void NAME( \
            const float *input, long height, long width, float *output, long output_height, long output_width, long kernel_height, \
            long kernel_width, long stride_height, long pad_top, long pad_left, long first, long end) { \
        for (long oh = 0; oh < output_height; oh++) { \
            long origin = oh * stride_height - pad_top; \
            long top = origin > 0 ? origin : 0, bottom = origin + kernel_height < height ? origin + kernel_height : height; \
            float *destination = output + oh * output_width; \
            if (top >= bottom) { \
                for (long ow = 0; ow < output_width; ow++) destination[ow] = -__builtin_inff(); \
                continue; \
            } \
            if (bottom - top == kernel_height) { \
                for (long ow = first; ow < end; ow += 16) { \
                    long count = end - ow < 16 ? end - ow : 16; \
                    __m512 result = pooled_vector(TAPS, STRIDE, input + top * width + ow * STRIDE - pad_left, ROWS, width, count); \
                    _mm512_mask_storeu_ps(destination + ow, lanes_below16(count), result); \
                } \
            } else { \
                (STRIDE == 2 ? pooled_row_2 : pooled_row_1)(input + top * width, bottom - top, width, kernel_width, pad_left, first, \
                                                            end, destination); \
            } \
            if (first > 0 || end < output_width) \
                clipped_edges(input, width, top, bottom, destination, output_width, kernel_width, STRIDE, pad_left, first, end); \
        } \
    }
POOLED_PLANE(pooled_plane_3x3_2, 3, 2, 3)
POOLED_PLANE(pooled_plane_2x2_2, 2, 2, 2)
POOLED_PLANE(pooled_plane_3x3_1, 3, 1, 3)
POOLED_PLANE(pooled_plane_any_2, kernel_width, 2, kernel_height)
POOLED_PLANE(pooled_plane_any_1, kernel_width, 1, kernel_height)
#undef POOLED_PLANE

VECTOR512_CODE static void max_pool_plane512(const float *input, long height, long width, float *output, long output_height,
                                             long output_width, long kernel_height, long kernel_width, long stride_height,
                                             long stride_width, long pad_top, long pad_left) {
    long first, end;
    interior_columns(width, output_width, kernel_width, stride_width, pad_left, &first, &end);
    typedef void (*plane_function)(const float *, long, long, float *, long, long, long, long, long, long, long, long, long);
    plane_function plane = stride_width == 2 ? pooled_plane_any_2 : pooled_plane_any_1;
    if (stride_width == 2 && kernel_width == 3 && kernel_height == 3) plane = pooled_plane_3x3_2;
    if (stride_width == 2 && kernel_width == 2 && kernel_height == 2) plane = pooled_plane_2x2_2;
    if (stride_width == 1 && kernel_width == 3 && kernel_height == 3) plane = pooled_plane_3x3_1;
    plane(input, height, width, output, output_height, output_width, kernel_height, kernel_width, stride_height, pad_top, pad_left, first,
          end);
}

VECTOR_CODE void nnpipe_max_pool_plane(const float *input, long height, long width, float *output, long output_height, long output_width,
                                       long kernel_height, long kernel_width, long stride_height, long stride_width, long pad_top,
                                       long pad_left, float *scratch) {
    if ((stride_width == 1 || stride_width == 2) && nnpipe_packed_product_uses_avx512()) {
        max_pool_plane512(input, height, width, output, output_height, output_width, kernel_height, kernel_width, stride_height,
                          stride_width, pad_top, pad_left);
        return;
    }
    long first, end;
    interior_columns(width, output_width, kernel_width, stride_width, pad_left, &first, &end);
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
