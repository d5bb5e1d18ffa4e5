// See include/CNNPipeKernels.h. Direct convolution over a zero-padded, phase-split copy of the
// input, for AVX-512 CPUs. Why: a conv with a shallow product (SqueezeNet's first layer has 27
// taps, its 3x3 expands 144-576) spends more on im2col, on packing the columns and on loading and
// storing the tile's accumulators than on multiplying; Winograd cuts the multiplies but its 16
// products are only 16-64 deep. onnxruntime runs these as direct NCHWc kernels at 1.5-3x our speed.
//
// The layout: the input, padded, is split into stride_h x stride_w phases (phase (a, b) holds the
// padded rows a, a + s, ... and columns b, b + s, ...), each a plane of phase_height x phase_width.
// Output (oh, ow) at tap (kh, kw) then reads phase ((kh·dh) mod sh, (kw·dw) mod sw) at row
// oh + (kh·dh) div sh, column ow + (kw·dw) div sw: every tap is a stride-1 read at a fixed offset
// from position p = oh·phase_width + ow. So a vector of 16 consecutive p is one unaligned load per
// tap, whatever the stride, dilation or padding, and the rows of a map run on into each other
// (lanes whose ow >= output_width are computed and dropped). With stride 1 the rows share their
// padding: the zeros after row r's data are also the zeros before row r + 1's, so a 13-wide map
// with pads of 1 runs 14 lanes a row, not 15.
#include "CNNPipeKernels.h"
#include <stdlib.h>
#include <string.h>

enum { DIRECT_ROWS = 8, DIRECT_LANES = 16, DIRECT_VECTORS = 3 };

static long round_up(long value, long multiple) { return (value + multiple - 1) / multiple * multiple; }

int nnpipe_direct_block_rows(void) { return DIRECT_ROWS; }

int nnpipe_direct_tile_positions(void) { return DIRECT_LANES * DIRECT_VECTORS; }

long nnpipe_direct_filter_count(long outputs, long taps) { return round_up(outputs, DIRECT_ROWS) * taps; }

// Blocks of DIRECT_ROWS output channels, each `taps` groups of DIRECT_ROWS weights (one per
// channel, the same tap); channels past `outputs` are zero.
void nnpipe_direct_pack_filter(const float *weights, long outputs, long taps, float *packed) {
    long blocks = round_up(outputs, DIRECT_ROWS) / DIRECT_ROWS;
    for (long block = 0; block < blocks; block++) {
        for (long tap = 0; tap < taps; tap++) {
            for (long lane = 0; lane < DIRECT_ROWS; lane++) {
                long output = block * DIRECT_ROWS + lane;
                packed[(block * taps + tap) * DIRECT_ROWS + lane] = output < outputs ? weights[output * taps + tap] : 0.0f;
            }
        }
    }
}

static int every_other_row(const float *input, long width, long offset, float *line, long count);

void nnpipe_direct_layout(const float *image, long channels, long height, long width, long stride_height, long stride_width,
                          long pad_top, long pad_left, long phase_height, long phase_width, float *buffer) {
    long phases = stride_height * stride_width, plane = phase_height * phase_width;
    for (long channel = 0; channel < channels; channel++) {
        const float *source = image + channel * height * width;
        for (long phase_row = 0; phase_row < stride_height; phase_row++) {
            for (long phase_column = 0; phase_column < stride_width; phase_column++) {
                float *destination = buffer + (channel * phases + phase_row * stride_width + phase_column) * plane;
                for (long row = 0; row < phase_height; row++) {
                    float *line = destination + row * phase_width;
                    long input_row = row * stride_height + phase_row - pad_top;
                    if (input_row < 0 || input_row >= height) {
                        memset(line, 0, sizeof(float) * (size_t)phase_width);
                        continue;
                    }
                    const float *input = source + input_row * width;
                    if (stride_width == 1) {
                        // Columns pad_left ..< pad_left + width hold the row; the rest are zero.
                        long first = pad_left < phase_width ? pad_left : phase_width;
                        long count = width < phase_width - first ? width : phase_width - first;
                        memset(line, 0, sizeof(float) * (size_t)first);
                        memcpy(line + first, input, sizeof(float) * (size_t)count);
                        memset(line + first + count, 0, sizeof(float) * (size_t)(phase_width - first - count));
                        continue;
                    }
                    long offset = phase_column - pad_left;
                    if (stride_width == 2 && every_other_row(input, width, offset, line, phase_width)) continue;
                    for (long column = 0; column < phase_width; column++) {
                        long input_column = column * stride_width + offset;
                        line[column] = input_column >= 0 && input_column < width ? input[input_column] : 0.0f;
                    }
                }
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define DIRECT_CODE __attribute__((target("avx512f,avx2,fma")))

// line[j] = input[2j + offset] where that is inside the row, else 0, for j < count, sixteen at a
// time: the stride-2 layout one value at a time took a quarter of SqueezeNet's first conv.
// Returns 0 (nothing done) where the CPU lacks AVX-512.
DIRECT_CODE static int every_other_row(const float *input, long width, long offset, float *line, long count) {
    if (!nnpipe_packed_product_uses_avx512()) return 0;
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    // Columns first ..< end read inside the row.
    long first = offset >= 0 ? 0 : (-offset + 1) / 2;
    long end = width - 1 - offset >= 0 ? (width - 1 - offset) / 2 + 1 : 0;
    if (end > count) end = count;
    if (first > end) first = end;
    memset(line, 0, sizeof(float) * (size_t)first);
    for (long column = first; column < end; column += 16) {
        long outputs = end - column < 16 ? end - column : 16;
        long needed = 2 * (outputs - 1) + 1;
        __mmask16 low = needed >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << needed) - 1);
        __mmask16 high = needed > 16 ? (__mmask16)((1u << (needed - 16)) - 1) : (__mmask16)0;
        const float *source = input + 2 * column + offset;
        __m512 values = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(low, source), evens, _mm512_maskz_loadu_ps(high, source + 16));
        _mm512_mask_storeu_ps(line + column, outputs >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << outputs) - 1), values);
    }
    memset(line + end, 0, sizeof(float) * (size_t)(count - end));
    return 1;
}

// Where vector `vector` of the tile at `first` puts its lanes: the mask of lanes that are real
// outputs of this call (p < end and p mod phase_width < output_width) and the index of the first
// of them in the output plane (real outputs before it, in order).
typedef struct {
    __mmask16 lanes[DIRECT_VECTORS];
    long index[DIRECT_VECTORS];
} tile_places;

static tile_places places_of(long first, long end, long phase_width, long output_width) {
    tile_places places;
    for (int vector = 0; vector < DIRECT_VECTORS; vector++) {
        long start = first + vector * DIRECT_LANES;
        long row = start / phase_width, column = start % phase_width;
        places.index[vector] = row * output_width + (column < output_width ? column : output_width);
        unsigned mask = 0;
        for (int lane = 0; lane < DIRECT_LANES; lane++) {
            if (start + lane < end && column < output_width) mask |= 1u << lane;
            if (++column == phase_width) column = 0;
        }
        places.lanes[vector] = (__mmask16)mask;
    }
    return places;
}

// One tile: DIRECT_ROWS output channels of block `weights` by VECTORS vectors of 16 positions from
// `input` (the buffer at the tile's first position). The bias seeds the accumulators and each tap
// is one fused multiply-add per output, in tap order: the same operations, in the same order, as
// the packed product (PackedProduct.c) on an im2col matrix, so the results are equal bit for bit.
DIRECT_CODE static inline __attribute__((always_inline)) void direct_tile(
        const int VECTORS, const int MASKED, const float *weights, long taps, const long *offsets, const float *input, long rows,
        const tile_places *places, float *output, long output_plane, const float *bias, const float *residual,
        long residual_plane, int relu, long readable) {
    // MASKED: the last tile of a buffer read in place, whose loads stop at `readable` positions.
    __mmask16 loads[DIRECT_VECTORS];
    for (int vector = 0; vector < VECTORS; vector++) {
        long left = readable - DIRECT_LANES * vector;
        loads[vector] = !MASKED || left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
    }
    __m512 sums[DIRECT_ROWS][DIRECT_VECTORS];
    for (int row = 0; row < DIRECT_ROWS; row++) {
        __m512 seed = _mm512_set1_ps(bias != NULL && row < rows ? bias[row] : 0.0f);
        for (int vector = 0; vector < VECTORS; vector++) sums[row][vector] = seed;
    }
    for (long tap = 0; tap < taps; tap++) {
        const float *source = input + offsets[tap];
        __m512 values[DIRECT_VECTORS];
        for (int vector = 0; vector < VECTORS; vector++)
            values[vector] = MASKED ? _mm512_maskz_loadu_ps(loads[vector], source + DIRECT_LANES * vector)
                                    : _mm512_loadu_ps(source + DIRECT_LANES * vector);
        for (int row = 0; row < DIRECT_ROWS; row++) {
            __m512 weight = _mm512_set1_ps(weights[row]);
            for (int vector = 0; vector < VECTORS; vector++) sums[row][vector] = _mm512_fmadd_ps(weight, values[vector], sums[row][vector]);
        }
        weights += DIRECT_ROWS;
    }
    __m512 zero = _mm512_setzero_ps();
    // A constant trip count, so that the loops unroll and `sums` stays in registers (indexed by
    // `rows`, the compiler kept it in memory and stored every accumulator after each FMA).
#pragma clang loop unroll(full)
    for (int row = 0; row < DIRECT_ROWS; row++) {
#pragma clang loop unroll(full)
        for (int vector = 0; vector < VECTORS; vector++) {
            __mmask16 lanes = row < rows ? places->lanes[vector] : 0;
            if (lanes == 0) continue;
            long index = places->index[vector];
            __m512 value = sums[row][vector];
            // The residual is laid out as the output: its values for these lanes lie side by side.
            if (residual != NULL) value = _mm512_add_ps(value, _mm512_maskz_expandloadu_ps(lanes, residual + row * residual_plane + index));
            // max(0, x) returns x when x is NaN (the second operand), as the packed product.
            if (relu) value = _mm512_max_ps(zero, value);
            int count = __builtin_popcount((unsigned)lanes);
            _mm512_mask_storeu_ps(output + row * output_plane + index, (__mmask16)((1u << count) - 1),
                                  _mm512_maskz_compress_ps(lanes, value));
        }
    }
}

// One tile of block `channel` at position `first`.
DIRECT_CODE static inline __attribute__((always_inline)) void block_tile(
        const float *packed, long taps, const long *offsets, const float *buffer, long first, long end, long channel, long last_channel,
        const tile_places *places, float *output, long output_plane, const float *bias, const float *residual, long residual_plane,
        int relu, int masked_tail) {
    const long tile = DIRECT_LANES * DIRECT_VECTORS;
    long vectors = (end - first + DIRECT_LANES - 1) / DIRECT_LANES;
    const float *weights = packed + channel * taps;
    long rows = last_channel - channel < DIRECT_ROWS ? last_channel - channel : DIRECT_ROWS;
    float *target = output + channel * output_plane;
    const float *tile_bias = bias != NULL ? bias + channel : NULL;
    const float *tile_residual = residual != NULL ? residual + channel * residual_plane : NULL;
#define TILE(VECTORS, MASKED) direct_tile(VECTORS, MASKED, weights, taps, offsets, buffer + first, rows, places, target, output_plane, \
                                          tile_bias, tile_residual, residual_plane, relu, end - first)
    if (masked_tail && first + tile >= end) {
        if (vectors >= 3) TILE(3, 1); else if (vectors == 2) TILE(2, 1); else TILE(1, 1);
    } else {
        if (vectors >= 3) TILE(3, 0); else if (vectors == 2) TILE(2, 0); else TILE(1, 0);
    }
#undef TILE
}

DIRECT_CODE void nnpipe_direct_convolution(const float *packed, long taps, const long *offsets, const float *buffer,
                                           long first_position, long end_position, long phase_width, long output_height,
                                           long output_width, long first_channel, long channels, float *output, long output_plane,
                                           const float *bias, const float *residual, long residual_plane, int relu, int masked_tail,
                                           int blocks_outer) {
    const long tile = DIRECT_LANES * DIRECT_VECTORS;
    long end = end_position < output_height * phase_width ? end_position : output_height * phase_width;
    long last_channel = first_channel + channels;
    // Tiles outer: a tile's input stays in cache across the blocks of channels. Blocks outer
    // (`blocks_outer`, the caller's choice): a block's weights stay in L1 across the tiles.
    if (!blocks_outer) {
        for (long first = first_position; first < end; first += tile) {
            tile_places places = places_of(first, end, phase_width, output_width);
            for (long channel = first_channel; channel < last_channel; channel += DIRECT_ROWS)
                block_tile(packed, taps, offsets, buffer, first, end, channel, last_channel, &places, output, output_plane, bias, residual,
                           residual_plane, relu, masked_tail);
        }
        return;
    }
    for (long channel = first_channel; channel < last_channel; channel += DIRECT_ROWS) {
        for (long first = first_position; first < end; first += tile) {
            tile_places places = places_of(first, end, phase_width, output_width);
            block_tile(packed, taps, offsets, buffer, first, end, channel, last_channel, &places, output, output_plane, bias, residual,
                       residual_plane, relu, masked_tail);
        }
    }
}

#else

static int every_other_row(const float *input, long width, long offset, float *line, long count) { return 0; }

void nnpipe_direct_convolution(const float *packed, long taps, const long *offsets, const float *buffer,
                                           long first_position, long end_position, long phase_width, long output_height,
                                           long output_width, long first_channel, long channels, float *output, long output_plane,
                                           const float *bias, const float *residual, long residual_plane, int relu, int masked_tail,
                                           int blocks_outer) {
    abort();
}

#endif
