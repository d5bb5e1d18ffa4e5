// See include/CNNPipeKernels.h. Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2015): each 2x2 block of a 3x3 stride-1 conv's
// output is A^T [ (G g G^T) . (B^T d B) ] A over the 4x4 input patch d around it, so the conv
// becomes 16 independent products of the transformed weights (O x C) with the transformed input
// (C x tiles), 16 x 4 = 64 multiplies per 2x2 block and channel pair where direct convolution
// needs 4 x 9 = 144: 2.25 times fewer. The products are the packed product's (PackedProduct.c);
// these are the transforms, eight tiles at a time.
//
//   B^T = [1  0 -1  0]    G = [ 1    0    0 ]    A^T = [1  1  1  0]
//         [0  1  1  0]        [ 1/2  1/2  1/2]         [0  1 -1 -1]
//         [0 -1  1  0]        [ 1/2 -1/2  1/2]
//         [0  1  0 -1]        [ 0    0    1 ]
#include "CNNPipeKernels.h"
#include <stdlib.h>
#include <string.h>

void nnpipe_winograd_filter(const float *weights, long outputs, long channels, float *transformed) {
    long matrix = outputs * channels;
    for (long output = 0; output < outputs; output++) {
        for (long channel = 0; channel < channels; channel++) {
            const float *g = weights + (output * channels + channel) * 9;
            float rows[4][3];  // G g
            for (int column = 0; column < 3; column++) {
                float top = g[column], middle = g[3 + column], bottom = g[6 + column];
                rows[0][column] = top;
                rows[1][column] = 0.5f * (top + middle + bottom);
                rows[2][column] = 0.5f * (top - middle + bottom);
                rows[3][column] = bottom;
            }
            for (int row = 0; row < 4; row++) {  // (G g) G^T
                float left = rows[row][0], middle = rows[row][1], right = rows[row][2];
                float values[4] = {left, 0.5f * (left + middle + right), 0.5f * (left - middle + right), right};
                for (int column = 0; column < 4; column++)
                    transformed[(row * 4 + column) * matrix + output * channels + channel] = values[column];
            }
        }
    }
}

// The four input rows a row of tiles reads, zero-padded: entry x of each is column x - pad_left.
static void fill_rows(const float *plane, long height, long width, long pad_top, long pad_left, long tile_row, float *rows, long padded) {
    for (int row = 0; row < 4; row++) {
        float *line = rows + row * padded;
        memset(line, 0, sizeof(float) * (size_t)padded);
        long source_row = 2 * tile_row - pad_top + row;
        if (source_row < 0 || source_row >= height) continue;
        long first = pad_left, count = width;
        if (first + count > padded) count = padded - first;
        if (count > 0) memcpy(line + first, plane + source_row * width, sizeof(float) * (size_t)count);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define VECTOR_CODE __attribute__((target("avx2,fma")))

// Lanes 0 ..< count set (a partial group of tiles at the end of a row).
VECTOR_CODE static inline __m256i lanes_below(long count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Eight values two apart from row[0]: row[0], row[2], ..., row[14].
VECTOR_CODE static inline __m256 every_other(const float *row) {
    __m256 low = _mm256_loadu_ps(row), high = _mm256_loadu_ps(row + 8);
    __m256 evens = _mm256_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(evens), _MM_SHUFFLE(3, 1, 2, 0)));
}

VECTOR_CODE static void winograd_input256(const float *image, long channels, long height, long width, long pad_top, long pad_left,
                                       long first_tile_row, long tile_rows, long tile_columns, float *transformed, long channel_stride,
                                       long position_stride) {
    // Four zero-padded input rows: entry x is column x - pad_left, with room for the last group's
    // eight tiles (16 columns and the 2 more a 4-wide patch reaches, read 16 at a time).
    long padded = 2 * ((tile_columns + 7) / 8 * 8) + 24;
    float *rows = aligned_alloc(32, sizeof(float) * 4 * (size_t)((padded + 7) / 8 * 8));
    if (rows == NULL) abort();
    for (long channel = 0; channel < channels; channel++) {
        const float *plane = image + channel * height * width;
        float *destination = transformed + channel * channel_stride;
        for (long tile_row = first_tile_row; tile_row < first_tile_row + tile_rows; tile_row++) {
            fill_rows(plane, height, width, pad_top, pad_left, tile_row, rows, padded);
            for (long tile = 0; tile < tile_columns; tile += 8) {
                __m256 d[4][4], t[4][4];
                for (int row = 0; row < 4; row++)
                    for (int column = 0; column < 4; column++) d[row][column] = every_other(rows + row * padded + 2 * tile + column);
                for (int column = 0; column < 4; column++) {  // B^T d
                    t[0][column] = _mm256_sub_ps(d[0][column], d[2][column]);
                    t[1][column] = _mm256_add_ps(d[1][column], d[2][column]);
                    t[2][column] = _mm256_sub_ps(d[2][column], d[1][column]);
                    t[3][column] = _mm256_sub_ps(d[1][column], d[3][column]);
                }
                long count = tile_columns - tile < 8 ? tile_columns - tile : 8;
                __m256i mask = lanes_below(count);
                float *at = destination + (tile_row - first_tile_row) * tile_columns + tile;
                for (int row = 0; row < 4; row++) {  // (B^T d) B
                    __m256 values[4] = {_mm256_sub_ps(t[row][0], t[row][2]), _mm256_add_ps(t[row][1], t[row][2]),
                                        _mm256_sub_ps(t[row][2], t[row][1]), _mm256_sub_ps(t[row][1], t[row][3])};
                    for (int column = 0; column < 4; column++) {
                        float *slot = at + (row * 4 + column) * position_stride;
                        if (count == 8) _mm256_storeu_ps(slot, values[column]);
                        else _mm256_maskstore_ps(slot, mask, values[column]);
                    }
                }
            }
        }
    }
    free(rows);
}

VECTOR_CODE static void winograd_output256(const float *products, long outputs, long position_stride, long channel_stride,
                                        long first_tile_row, long tile_rows, long tile_columns, float *output, long output_height, long output_width,
                                        long output_plane_stride, const float *bias, const float *residual, long residual_plane_stride,
                                        int relu) {
    // Two output rows per tile row, built whole (2 x tile_columns rounded up to 16) and then
    // copied out with the bias, residual and Relu over the columns that exist.
    long span = (tile_columns + 7) / 8 * 16;
    float *lines = aligned_alloc(32, sizeof(float) * 2 * (size_t)span);
    if (lines == NULL) abort();
    __m256 zero = _mm256_setzero_ps();
    for (long channel = 0; channel < outputs; channel++) {
        const float *source = products + channel * channel_stride;
        float *plane = output + channel * output_plane_stride;
        const float *addend_plane = residual != NULL ? residual + channel * residual_plane_stride : NULL;
        __m256 shift = _mm256_set1_ps(bias != NULL ? bias[channel] : 0.0f);
        for (long tile_row = first_tile_row; tile_row < first_tile_row + tile_rows; tile_row++) {
            for (long tile = 0; tile < tile_columns; tile += 8) {
                long count = tile_columns - tile < 8 ? tile_columns - tile : 8;
                __m256 m[4][4];
                const float *at = source + (tile_row - first_tile_row) * tile_columns + tile;
                __m256i mask = lanes_below(count);
                for (int slot = 0; slot < 16; slot++) {
                    const float *from = at + slot * position_stride;
                    m[slot / 4][slot % 4] = count == 8 ? _mm256_loadu_ps(from) : _mm256_maskload_ps(from, mask);
                }
                __m256 s[2][4];
                for (int column = 0; column < 4; column++) {  // A^T m
                    s[0][column] = _mm256_add_ps(_mm256_add_ps(m[0][column], m[1][column]), m[2][column]);
                    s[1][column] = _mm256_sub_ps(_mm256_sub_ps(m[1][column], m[2][column]), m[3][column]);
                }
                for (int row = 0; row < 2; row++) {  // (A^T m) A, then the two columns interleaved
                    __m256 left = _mm256_add_ps(_mm256_add_ps(s[row][0], s[row][1]), s[row][2]);
                    __m256 right = _mm256_sub_ps(_mm256_sub_ps(s[row][1], s[row][2]), s[row][3]);
                    __m256 low = _mm256_unpacklo_ps(left, right), high = _mm256_unpackhi_ps(left, right);
                    float *line = lines + row * span + 2 * tile;
                    _mm256_storeu_ps(line, _mm256_permute2f128_ps(low, high, 0x20));
                    _mm256_storeu_ps(line + 8, _mm256_permute2f128_ps(low, high, 0x31));
                }
            }
            for (int row = 0; row < 2; row++) {
                long output_row = 2 * tile_row + row;
                if (output_row >= output_height) break;
                const float *line = lines + row * span;
                float *destination = plane + output_row * output_width;
                const float *addend = addend_plane != NULL ? addend_plane + output_row * output_width : NULL;
                long column = 0;
                for (; column + 8 <= output_width; column += 8) {
                    __m256 value = _mm256_add_ps(_mm256_loadu_ps(line + column), shift);
                    if (addend != NULL) value = _mm256_add_ps(value, _mm256_loadu_ps(addend + column));
                    // max(0, x) keeps NaN (the second operand), like the runtime's Relu.
                    if (relu) value = _mm256_max_ps(zero, value);
                    _mm256_storeu_ps(destination + column, value);
                }
                if (column < output_width) {
                    // The last 1-7 columns under a mask (the line has room for 8).
                    __m256i mask = lanes_below(output_width - column);
                    __m256 value = _mm256_add_ps(_mm256_loadu_ps(line + column), shift);
                    if (addend != NULL) value = _mm256_add_ps(value, _mm256_maskload_ps(addend + column, mask));
                    if (relu) value = _mm256_max_ps(zero, value);
                    _mm256_maskstore_ps(destination + column, mask, value);
                }
            }
        }
    }
    free(lines);
}

// AVX-512: the same transforms sixteen tiles at a time, under the same choice as the packed
// product (nnpipe_packed_product_uses_avx512). With the products on AVX-512 the AVX2 transforms
// became the larger half of SqueezeNet's 3x3 convs.
#define VECTOR512_CODE __attribute__((target("avx512f,avx2,fma")))

static __mmask16 tiles_below(long count) { return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1); }

// Sixteen values two apart from row[0]: row[0], row[2], ..., row[30].
VECTOR512_CODE static inline __m512 every_other16(const float *row) {
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(row), evens, _mm512_loadu_ps(row + 16));
}

VECTOR512_CODE static void winograd_input512(const float *image, long channels, long height, long width, long pad_top, long pad_left,
                                             long first_tile_row, long tile_rows, long tile_columns, float *transformed, long channel_stride,
                                             long position_stride) {
    // As winograd_input256, with room for the last group's sixteen tiles (32 columns and the 2
    // more a 4-wide patch reaches, read 32 at a time).
    long padded = 2 * ((tile_columns + 15) / 16 * 16) + 40;
    float *rows = aligned_alloc(64, sizeof(float) * 4 * (size_t)((padded + 15) / 16 * 16));
    if (rows == NULL) abort();
    for (long channel = 0; channel < channels; channel++) {
        const float *plane = image + channel * height * width;
        float *destination = transformed + channel * channel_stride;
        for (long tile_row = first_tile_row; tile_row < first_tile_row + tile_rows; tile_row++) {
            fill_rows(plane, height, width, pad_top, pad_left, tile_row, rows, padded);
            for (long tile = 0; tile < tile_columns; tile += 16) {
                __m512 d[4][4], t[4][4];
                for (int row = 0; row < 4; row++)
                    for (int column = 0; column < 4; column++) d[row][column] = every_other16(rows + row * padded + 2 * tile + column);
                for (int column = 0; column < 4; column++) {  // B^T d
                    t[0][column] = _mm512_sub_ps(d[0][column], d[2][column]);
                    t[1][column] = _mm512_add_ps(d[1][column], d[2][column]);
                    t[2][column] = _mm512_sub_ps(d[2][column], d[1][column]);
                    t[3][column] = _mm512_sub_ps(d[1][column], d[3][column]);
                }
                __mmask16 mask = tiles_below(tile_columns - tile);
                float *at = destination + (tile_row - first_tile_row) * tile_columns + tile;
                for (int row = 0; row < 4; row++) {  // (B^T d) B
                    __m512 values[4] = {_mm512_sub_ps(t[row][0], t[row][2]), _mm512_add_ps(t[row][1], t[row][2]),
                                        _mm512_sub_ps(t[row][2], t[row][1]), _mm512_sub_ps(t[row][1], t[row][3])};
                    for (int column = 0; column < 4; column++) _mm512_mask_storeu_ps(at + (row * 4 + column) * position_stride, mask, values[column]);
                }
            }
        }
    }
    free(rows);
}

VECTOR512_CODE static void winograd_output512(const float *products, long outputs, long position_stride, long channel_stride,
                                              long first_tile_row, long tile_rows, long tile_columns, float *output, long output_height,
                                              long output_width, long output_plane_stride, const float *bias, const float *residual,
                                              long residual_plane_stride, int relu) {
    long span = (tile_columns + 15) / 16 * 32;
    float *lines = aligned_alloc(64, sizeof(float) * 2 * (size_t)span);
    if (lines == NULL) abort();
    const __m512i first_half = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second_half = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    __m512 zero = _mm512_setzero_ps();
    for (long channel = 0; channel < outputs; channel++) {
        const float *source = products + channel * channel_stride;
        float *plane = output + channel * output_plane_stride;
        const float *addend_plane = residual != NULL ? residual + channel * residual_plane_stride : NULL;
        __m512 shift = _mm512_set1_ps(bias != NULL ? bias[channel] : 0.0f);
        for (long tile_row = first_tile_row; tile_row < first_tile_row + tile_rows; tile_row++) {
            for (long tile = 0; tile < tile_columns; tile += 16) {
                __mmask16 mask = tiles_below(tile_columns - tile);
                __m512 m[4][4];
                const float *at = source + (tile_row - first_tile_row) * tile_columns + tile;
                for (int slot = 0; slot < 16; slot++) m[slot / 4][slot % 4] = _mm512_maskz_loadu_ps(mask, at + slot * position_stride);
                __m512 s[2][4];
                for (int column = 0; column < 4; column++) {  // A^T m
                    s[0][column] = _mm512_add_ps(_mm512_add_ps(m[0][column], m[1][column]), m[2][column]);
                    s[1][column] = _mm512_sub_ps(_mm512_sub_ps(m[1][column], m[2][column]), m[3][column]);
                }
                for (int row = 0; row < 2; row++) {  // (A^T m) A, then the two columns interleaved
                    __m512 left = _mm512_add_ps(_mm512_add_ps(s[row][0], s[row][1]), s[row][2]);
                    __m512 right = _mm512_sub_ps(_mm512_sub_ps(s[row][1], s[row][2]), s[row][3]);
                    float *line = lines + row * span + 2 * tile;
                    _mm512_storeu_ps(line, _mm512_permutex2var_ps(left, first_half, right));
                    _mm512_storeu_ps(line + 16, _mm512_permutex2var_ps(left, second_half, right));
                }
            }
            for (int row = 0; row < 2; row++) {
                long output_row = 2 * tile_row + row;
                if (output_row >= output_height) break;
                const float *line = lines + row * span;
                float *destination = plane + output_row * output_width;
                const float *addend = addend_plane != NULL ? addend_plane + output_row * output_width : NULL;
                for (long column = 0; column < output_width; column += 16) {
                    __mmask16 mask = tiles_below(output_width - column);
                    __m512 value = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, line + column), shift);
                    if (addend != NULL) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask, addend + column));
                    // max(0, x) keeps NaN (the second operand), like the runtime's Relu.
                    if (relu) value = _mm512_max_ps(zero, value);
                    _mm512_mask_storeu_ps(destination + column, mask, value);
                }
            }
        }
    }
    free(lines);
}

void nnpipe_winograd_input(const float *image, long channels, long height, long width, long pad_top, long pad_left,
                           long first_tile_row, long tile_rows, long tile_columns, float *transformed, long channel_stride,
                           long position_stride) {
    if (nnpipe_packed_product_uses_avx512())
        winograd_input512(image, channels, height, width, pad_top, pad_left, first_tile_row, tile_rows, tile_columns, transformed,
                          channel_stride, position_stride);
    else
        winograd_input256(image, channels, height, width, pad_top, pad_left, first_tile_row, tile_rows, tile_columns, transformed,
                          channel_stride, position_stride);
}

void nnpipe_winograd_output(const float *products, long outputs, long position_stride, long channel_stride,
                            long first_tile_row, long tile_rows, long tile_columns, float *output, long output_height, long output_width,
                            long output_plane_stride, const float *bias, const float *residual, long residual_plane_stride,
                            int relu) {
    if (nnpipe_packed_product_uses_avx512())
        winograd_output512(products, outputs, position_stride, channel_stride, first_tile_row, tile_rows, tile_columns, output,
                           output_height, output_width, output_plane_stride, bias, residual, residual_plane_stride, relu);
    else
        winograd_output256(products, outputs, position_stride, channel_stride, first_tile_row, tile_rows, tile_columns, output,
                           output_height, output_width, output_plane_stride, bias, residual, residual_plane_stride, relu);
}

#else

void nnpipe_winograd_input(const float *image, long channels, long height, long width, long pad_top, long pad_left,
                           long first_tile_row, long tile_rows, long tile_columns, float *transformed, long channel_stride,
                           long position_stride) {
    abort();
}

void nnpipe_winograd_output(const float *products, long outputs, long position_stride, long channel_stride,
                            long first_tile_row, long tile_rows, long tile_columns, float *output, long output_height, long output_width,
                            long output_plane_stride, const float *bias, const float *residual, long residual_plane_stride,
                            int relu) {
    abort();
}

#endif
