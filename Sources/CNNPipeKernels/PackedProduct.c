// See include/CNNPipeKernels.h. The shape is the usual one of BLAS kernels (Goto's): the weights
// are packed into panels of PANEL_ROWS rows once; for each block of DEPTH_BLOCK inner indices
// and WIDTH_BLOCK columns, the columns are packed into strips of STRIP_COLUMNS so a micro-tile of
// PANEL_ROWS x STRIP_COLUMNS outputs reads both operands contiguously, and the tile's 12 vector
// accumulators stay in registers over the whole depth block. The bias seeds the accumulators
// and the residual and Relu are applied before the single store, so each output is written once
// (a bias pass before the GEMM and a Relu pass after it cost 10% of SqueezeNet's run time).
#include "CNNPipeKernels.h"
#include <stdlib.h>
#include <string.h>

enum { PANEL_ROWS = 6, STRIP_COLUMNS = 16, DEPTH_BLOCK = 256, WIDTH_BLOCK = 256 };

static long round_up(long value, long multiple) { return (value + multiple - 1) / multiple * multiple; }
static long minimum(long a, long b) { return a < b ? a : b; }

int nnpipe_packed_panel_rows(void) { return PANEL_ROWS; }

long nnpipe_packed_filter_count(long rows, long depth) { return round_up(rows, PANEL_ROWS) * depth; }

// Layout: depth blocks one after another; in each, the panels of PANEL_ROWS rows, each panel
// `block_depth` groups of PANEL_ROWS values (one per row, the same inner index). Rows past
// `rows` are zero, so edge panels compute like full ones.
void nnpipe_pack_filter(const float *filter, long rows, long depth, float *packed) {
    long padded = round_up(rows, PANEL_ROWS);
    for (long start = 0; start < depth; start += DEPTH_BLOCK) {
        long block_depth = minimum(DEPTH_BLOCK, depth - start);
        for (long panel = 0; panel < padded / PANEL_ROWS; panel++) {
            float *destination = packed + start * padded + panel * PANEL_ROWS * block_depth;
            for (long inner = 0; inner < block_depth; inner++) {
                for (long lane = 0; lane < PANEL_ROWS; lane++) {
                    long row = panel * PANEL_ROWS + lane;
                    destination[inner * PANEL_ROWS + lane] = row < rows ? filter[row * depth + start + inner] : 0.0f;
                }
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define VECTOR_CODE __attribute__((target("avx2,fma")))

int nnpipe_native_kernels_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// Strips of STRIP_COLUMNS columns, each `block_depth` rows of STRIP_COLUMNS values; a short last
// strip is padded with zeros. With `scale`, row r of the columns becomes columns·scale[r] +
// shift[r], then max(0, ·) with `relu`, as it is packed (mul then add, as the runtime's
// BatchNormalization kernel rounds).
VECTOR_CODE static void pack_columns(const float *columns, long stride, long block_depth, long width, float *strips,
                                     const float *scale, const float *shift, int relu) {
    __m256 zero = _mm256_setzero_ps();
    for (long first = 0; first < width; first += STRIP_COLUMNS) {
        long count = minimum(STRIP_COLUMNS, width - first);
        float *strip = strips + first * block_depth;
        for (long inner = 0; inner < block_depth; inner++) {
            const float *source = columns + inner * stride + first;
            float *destination = strip + inner * STRIP_COLUMNS;
            __m256 left, right;
            if (count == STRIP_COLUMNS) {
                left = _mm256_loadu_ps(source);
                right = _mm256_loadu_ps(source + 8);
            } else {
                float padded[STRIP_COLUMNS] __attribute__((aligned(32))) = {0};
                memcpy(padded, source, count * sizeof(float));
                left = _mm256_load_ps(padded);
                right = _mm256_load_ps(padded + 8);
            }
            if (scale != NULL) {
                __m256 multiplier = _mm256_set1_ps(scale[inner]), offset = _mm256_set1_ps(shift[inner]);
                left = _mm256_add_ps(_mm256_mul_ps(left, multiplier), offset);
                right = _mm256_add_ps(_mm256_mul_ps(right, multiplier), offset);
                if (relu) {
                    left = _mm256_max_ps(zero, left);
                    right = _mm256_max_ps(zero, right);
                }
                if (count < STRIP_COLUMNS) {
                    // Padding columns must stay zero whatever the shift.
                    float kept[STRIP_COLUMNS] __attribute__((aligned(32)));
                    _mm256_store_ps(kept, left);
                    _mm256_store_ps(kept + 8, right);
                    for (long column = count; column < STRIP_COLUMNS; column++) kept[column] = 0.0f;
                    left = _mm256_load_ps(kept);
                    right = _mm256_load_ps(kept + 8);
                }
            }
            _mm256_store_ps(destination, left);
            _mm256_store_ps(destination + 8, right);
        }
    }
}

// One tile over one depth block: `ROWS` (a constant after inlining: 6, 4 or 2) rows of the
// panel by `VECTORS` (1 or 2) vectors of 8 columns of the strip, of which `rows` x `count` are
// kept. `first_block` seeds it with the bias (else it continues from what `output` holds);
// `last_block` adds the residual and applies Relu. Edge tiles go through a full-size buffer.
// `upcoming` (NULL or the next panel) is prefetched along the way: at batch 1 the weights come
// from memory and each panel is used for only a few strips, so waiting for them would dominate.
VECTOR_CODE static inline __attribute__((always_inline)) void tile_of(
        const int ROWS, const int VECTORS, long block_depth, const float *panel, const float *strip,
        float *output, long output_stride, long rows, long count, int first_block, int last_block,
        const float *bias, const float *residual, long residual_stride, int relu, const float *upcoming) {
    __m256 sums[PANEL_ROWS][2];
    float buffer[PANEL_ROWS * STRIP_COLUMNS] __attribute__((aligned(32)));
    const int full = rows == ROWS && count == 8 * VECTORS;
    if (first_block) {
        for (int row = 0; row < ROWS; row++) {
            __m256 seed = _mm256_set1_ps(bias != NULL && row < rows ? bias[row] : 0.0f);
            for (int vector = 0; vector < VECTORS; vector++) sums[row][vector] = seed;
        }
    } else {
        const float *from = output;
        long stride = output_stride;
        if (!full) {
            memset(buffer, 0, sizeof buffer);
            for (long row = 0; row < rows; row++) memcpy(buffer + row * STRIP_COLUMNS, output + row * output_stride, count * sizeof(float));
            from = buffer;
            stride = STRIP_COLUMNS;
        }
        for (int row = 0; row < ROWS; row++)
            for (int vector = 0; vector < VECTORS; vector++) sums[row][vector] = _mm256_loadu_ps(from + row * stride + 8 * vector);
    }
    for (long inner = 0; inner < block_depth; inner++) {
        if (upcoming != NULL) _mm_prefetch((const char *)(upcoming + inner * PANEL_ROWS), _MM_HINT_T0);
        __m256 columns[2];
        for (int vector = 0; vector < VECTORS; vector++) columns[vector] = _mm256_load_ps(strip + 8 * vector);
        for (int row = 0; row < ROWS; row++) {
            __m256 weight = _mm256_broadcast_ss(panel + row);
            for (int vector = 0; vector < VECTORS; vector++) sums[row][vector] = _mm256_fmadd_ps(weight, columns[vector], sums[row][vector]);
        }
        panel += PANEL_ROWS;
        strip += STRIP_COLUMNS;
    }
    if (last_block && residual != NULL) {
        for (long row = 0; row < ROWS && row < rows; row++) {
            const float *addend = residual + row * residual_stride;
            if (!full) {
                float *padded = buffer + row * STRIP_COLUMNS;
                memset(padded, 0, STRIP_COLUMNS * sizeof(float));
                memcpy(padded, addend, count * sizeof(float));
                addend = padded;
            }
            for (int vector = 0; vector < VECTORS; vector++)
                sums[row][vector] = _mm256_add_ps(sums[row][vector], _mm256_loadu_ps(addend + 8 * vector));
        }
    }
    if (last_block && relu) {
        // max(0, x) returns x when x is NaN (the second operand).
        __m256 zero = _mm256_setzero_ps();
        for (int row = 0; row < ROWS; row++)
            for (int vector = 0; vector < VECTORS; vector++) sums[row][vector] = _mm256_max_ps(zero, sums[row][vector]);
    }
    if (full) {
        for (int row = 0; row < ROWS; row++)
            for (int vector = 0; vector < VECTORS; vector++) _mm256_storeu_ps(output + row * output_stride + 8 * vector, sums[row][vector]);
        return;
    }
    for (int row = 0; row < ROWS; row++)
        for (int vector = 0; vector < VECTORS; vector++) _mm256_store_ps(buffer + row * STRIP_COLUMNS + 8 * vector, sums[row][vector]);
    for (long row = 0; row < rows; row++) memcpy(output + row * output_stride, buffer + row * STRIP_COLUMNS, count * sizeof(float));
}

// The smallest tile that covers `rows` x `count`: a 49-column map (7x7) would otherwise compute
// 64 columns, and 32 output channels 36 rows.
VECTOR_CODE static void tile(long block_depth, const float *panel, const float *strip, float *output, long output_stride,
                             long rows, long count, int first_block, int last_block, const float *bias,
                             const float *residual, long residual_stride, int relu, const float *upcoming) {
#define TILE(ROWS, VECTORS) tile_of(ROWS, VECTORS, block_depth, panel, strip, output, output_stride, rows, count, first_block, \
                                    last_block, bias, residual, residual_stride, relu, upcoming)
    if (count > 8) {
        if (rows > 4) TILE(6, 2); else if (rows > 2) TILE(4, 2); else TILE(2, 2);
    } else {
        if (rows > 4) TILE(6, 1); else if (rows > 2) TILE(4, 1); else TILE(2, 1);
    }
#undef TILE
}

// AVX-512: the same panels, strips of STRIP512 = 32 columns and a tile of 6 rows x 2 vectors of
// 16. onnxruntime's MLAS uses AVX-512 where the CPU has it; on such a host its convs ran 1.5x
// faster than on the previous one while ours stayed on AVX2, and the ratios went from 1.03-1.24x
// to 1.4-2.6x. Partial strips and edge tiles use masks (masked lanes neither read nor fault).
#define VECTOR512_CODE __attribute__((target("avx512f,avx2,fma")))
enum { STRIP512 = 32 };

static int avx512_choice = -1;

// NNPIPE_AVX512=0 keeps the AVX2 kernel (for A/B runs and to rule it out).
static int use_avx512(void) {
    if (avx512_choice < 0) {
        __builtin_cpu_init();
        const char *setting = getenv("NNPIPE_AVX512");
        avx512_choice = __builtin_cpu_supports("avx512f") && !(setting != NULL && strcmp(setting, "0") == 0);
    }
    return avx512_choice;
}

int nnpipe_packed_product_uses_avx512(void) { return use_avx512(); }

static __mmask16 lane_mask(long count) { return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1); }

VECTOR512_CODE static void pack_columns512(const float *columns, long stride, long block_depth, long width, float *strips,
                                           const float *scale, const float *shift, int relu) {
    __m512 zero = _mm512_setzero_ps();
    for (long first = 0; first < width; first += STRIP512) {
        long count = minimum(STRIP512, width - first);
        __mmask16 low = lane_mask(count), high = lane_mask(count - 16);
        float *strip = strips + first * block_depth;
        for (long inner = 0; inner < block_depth; inner++) {
            const float *source = columns + inner * stride + first;
            __m512 left = _mm512_maskz_loadu_ps(low, source), right = _mm512_maskz_loadu_ps(high, source + 16);
            if (scale != NULL) {
                __m512 multiplier = _mm512_set1_ps(scale[inner]), offset = _mm512_set1_ps(shift[inner]);
                left = _mm512_add_ps(_mm512_mul_ps(left, multiplier), offset);
                right = _mm512_add_ps(_mm512_mul_ps(right, multiplier), offset);
                if (relu) {
                    left = _mm512_max_ps(zero, left);
                    right = _mm512_max_ps(zero, right);
                }
                // Padding columns must stay zero whatever the shift.
                left = _mm512_maskz_mov_ps(low, left);
                right = _mm512_maskz_mov_ps(high, right);
            }
            _mm512_store_ps(strip + inner * STRIP512, left);
            _mm512_store_ps(strip + inner * STRIP512 + 16, right);
        }
    }
}

// As tile_of, with `ROWS` (6, 4 or 2) rows by `VECTORS` (1 or 2) vectors of 16 columns; only
// `rows` rows and `count` columns are read or written.
VECTOR512_CODE static inline __attribute__((always_inline)) void tile512_of(
        const int ROWS, const int VECTORS, long block_depth, const float *panel, const float *strip,
        float *output, long output_stride, long rows, long count, int first_block, int last_block,
        const float *bias, const float *residual, long residual_stride, int relu, const float *upcoming) {
    __m512 sums[PANEL_ROWS][2];
    __mmask16 masks[2] = {lane_mask(count), lane_mask(count - 16)};
    for (int row = 0; row < ROWS; row++) {
        for (int vector = 0; vector < VECTORS; vector++) {
            if (first_block) sums[row][vector] = _mm512_set1_ps(bias != NULL && row < rows ? bias[row] : 0.0f);
            else sums[row][vector] = row < rows ? _mm512_maskz_loadu_ps(masks[vector], output + row * output_stride + 16 * vector)
                                                : _mm512_setzero_ps();
        }
    }
    for (long inner = 0; inner < block_depth; inner++) {
        if (upcoming != NULL) _mm_prefetch((const char *)(upcoming + inner * PANEL_ROWS), _MM_HINT_T0);
        __m512 columns[2];
        for (int vector = 0; vector < VECTORS; vector++) columns[vector] = _mm512_load_ps(strip + 16 * vector);
        for (int row = 0; row < ROWS; row++) {
            __m512 weight = _mm512_set1_ps(panel[row]);
            for (int vector = 0; vector < VECTORS; vector++) sums[row][vector] = _mm512_fmadd_ps(weight, columns[vector], sums[row][vector]);
        }
        panel += PANEL_ROWS;
        strip += STRIP512;
    }
    if (last_block && residual != NULL) {
        for (long row = 0; row < ROWS && row < rows; row++)
            for (int vector = 0; vector < VECTORS; vector++)
                sums[row][vector] = _mm512_add_ps(sums[row][vector],
                                                  _mm512_maskz_loadu_ps(masks[vector], residual + row * residual_stride + 16 * vector));
    }
    if (last_block && relu) {
        // max(0, x) returns x when x is NaN (the second operand), as the AVX2 tile.
        __m512 zero = _mm512_setzero_ps();
        for (int row = 0; row < ROWS; row++)
            for (int vector = 0; vector < VECTORS; vector++) sums[row][vector] = _mm512_max_ps(zero, sums[row][vector]);
    }
    for (long row = 0; row < ROWS && row < rows; row++)
        for (int vector = 0; vector < VECTORS; vector++)
            _mm512_mask_storeu_ps(output + row * output_stride + 16 * vector, masks[vector], sums[row][vector]);
}

VECTOR512_CODE static void tile512(long block_depth, const float *panel, const float *strip, float *output, long output_stride,
                                   long rows, long count, int first_block, int last_block, const float *bias,
                                   const float *residual, long residual_stride, int relu, const float *upcoming) {
#define TILE(ROWS, VECTORS) tile512_of(ROWS, VECTORS, block_depth, panel, strip, output, output_stride, rows, count, first_block, \
                                       last_block, bias, residual, residual_stride, relu, upcoming)
    if (count > 16) {
        if (rows > 4) TILE(6, 2); else if (rows > 2) TILE(4, 2); else TILE(2, 2);
    } else {
        if (rows > 4) TILE(6, 1); else if (rows > 2) TILE(4, 1); else TILE(2, 1);
    }
#undef TILE
}

// Each thread packs its columns into its own buffer (kept for the thread's life: a 256 KiB
// allocation per call would be an mmap and page faults every time).
static _Thread_local float *column_strips;

static void packed_product(int wide, const float *packed, long packed_rows, long first, long rows, long depth,
                           const float *columns, long columns_stride, long width,
                           float *output, long output_stride,
                           const float *bias, const float *residual, long residual_stride, int relu,
                           const float *column_scale, const float *column_shift, int column_relu, const float *prepacked);

void nnpipe_packed_product(const float *packed, long packed_rows, long first, long rows, long depth,
                           const float *columns, long columns_stride, long width,
                           float *output, long output_stride,
                           const float *bias, const float *residual, long residual_stride, int relu,
                           const float *column_scale, const float *column_shift, int column_relu) {
    packed_product(use_avx512(), packed, packed_rows, first, rows, depth, columns, columns_stride, width, output, output_stride,
                   bias, residual, residual_stride, relu, column_scale, column_shift, column_relu, NULL);
}

long nnpipe_packed_columns_count(long depth, long width) { return depth * round_up(width, STRIP512); }

void nnpipe_pack_columns(const float *columns, long columns_stride, long first_depth, long depth_count, long depth, long width,
                         const float *column_scale, const float *column_shift, int column_relu, float *prepacked) {
    long padded = round_up(width, STRIP512);
    for (long start = first_depth; start < first_depth + depth_count && start < depth; start += DEPTH_BLOCK) {
        long block_depth = minimum(DEPTH_BLOCK, depth - start);
        const float *scale = column_scale != NULL ? column_scale + start : NULL, *shift = column_shift != NULL ? column_shift + start : NULL;
        for (long column = 0; column < width; column += WIDTH_BLOCK) {
            long block_width = minimum(WIDTH_BLOCK, width - column);
            float *strips = prepacked + start * padded + block_depth * column;
            if (use_avx512()) pack_columns512(columns + start * columns_stride + column, columns_stride, block_depth, block_width, strips, scale, shift, column_relu);
            else pack_columns(columns + start * columns_stride + column, columns_stride, block_depth, block_width, strips, scale, shift, column_relu);
        }
    }
}

void nnpipe_packed_product_prepacked(const float *packed, long packed_rows, long first, long rows, long depth, const float *prepacked,
                                     long width, float *output, long output_stride, const float *bias, const float *residual,
                                     long residual_stride, int relu) {
    packed_product(use_avx512(), packed, packed_rows, first, rows, depth, NULL, 0, width, output, output_stride,
                   bias, residual, residual_stride, relu, NULL, NULL, 0, prepacked);
}

void nnpipe_packed_product_avx2(const float *packed, long packed_rows, long first, long rows, long depth,
                                const float *columns, long columns_stride, long width,
                                float *output, long output_stride,
                                const float *bias, const float *residual, long residual_stride, int relu,
                                const float *column_scale, const float *column_shift, int column_relu) {
    packed_product(0, packed, packed_rows, first, rows, depth, columns, columns_stride, width, output, output_stride,
                   bias, residual, residual_stride, relu, column_scale, column_shift, column_relu, NULL);
}

static void packed_product(int wide, const float *packed, long packed_rows, long first, long rows, long depth,
                           const float *columns, long columns_stride, long width,
                           float *output, long output_stride,
                           const float *bias, const float *residual, long residual_stride, int relu,
                           const float *column_scale, const float *column_shift, int column_relu, const float *prepacked) {
    if (column_strips == NULL) {
        column_strips = aligned_alloc(64, sizeof(float) * DEPTH_BLOCK * WIDTH_BLOCK);
        if (column_strips == NULL) abort();
    }
    long padded = round_up(packed_rows, PANEL_ROWS);
    const long strip_columns = wide ? STRIP512 : STRIP_COLUMNS;
    for (long start = 0; start < depth; start += DEPTH_BLOCK) {
        long block_depth = minimum(DEPTH_BLOCK, depth - start);
        const float *block = packed + start * padded + first * block_depth;
        for (long column = 0; column < width; column += WIDTH_BLOCK) {
            long block_width = minimum(WIDTH_BLOCK, width - column);
            const float *scale = column_scale != NULL ? column_scale + start : NULL, *shift = column_shift != NULL ? column_shift + start : NULL;
            // Strips packed once for every block of rows (nnpipe_pack_columns' layout), or here.
            const float *strips = prepacked != NULL ? prepacked + start * round_up(width, STRIP512) + block_depth * column : column_strips;
            if (prepacked == NULL) {
                if (wide) pack_columns512(columns + start * columns_stride + column, columns_stride, block_depth, block_width, column_strips, scale, shift, column_relu);
                else pack_columns(columns + start * columns_stride + column, columns_stride, block_depth, block_width, column_strips, scale, shift, column_relu);
            }
            for (long row = 0; row < rows; row += PANEL_ROWS) {
                const float *panel = block + row * block_depth;
                for (long strip = 0; strip < block_width; strip += strip_columns) {
                    // The next panel is fetched while the first strip runs; later strips find it in cache.
                    const float *upcoming = strip == 0 && row + PANEL_ROWS < rows ? panel + PANEL_ROWS * block_depth : NULL;
                    float *target = output + row * output_stride + column + strip;
                    long tile_rows = minimum(PANEL_ROWS, rows - row), count = minimum(strip_columns, block_width - strip);
                    const float *tile_bias = bias != NULL ? bias + row : NULL;
                    const float *tile_residual = residual != NULL ? residual + row * residual_stride + column + strip : NULL;
                    if (wide) tile512(block_depth, panel, strips + strip * block_depth, target, output_stride, tile_rows, count,
                                      start == 0, start + block_depth == depth, tile_bias, tile_residual, residual_stride, relu, upcoming);
                    else tile(block_depth, panel, strips + strip * block_depth, target, output_stride, tile_rows, count,
                              start == 0, start + block_depth == depth, tile_bias, tile_residual, residual_stride, relu, upcoming);
                }
            }
        }
    }
}

#else

long nnpipe_packed_columns_count(long depth, long width) { abort(); }

void nnpipe_pack_columns(const float *columns, long columns_stride, long first_depth, long depth_count, long depth, long width,
                         const float *column_scale, const float *column_shift, int column_relu, float *prepacked) {
    abort();
}

void nnpipe_packed_product_prepacked(const float *packed, long packed_rows, long first, long rows, long depth, const float *prepacked,
                                     long width, float *output, long output_stride, const float *bias, const float *residual,
                                     long residual_stride, int relu) {
    abort();
}

// Other CPUs keep OpenBLAS: the runtime checks nnpipe_native_kernels_available() first.
int nnpipe_native_kernels_available(void) { return 0; }

int nnpipe_packed_product_uses_avx512(void) { return 0; }

void nnpipe_packed_product_avx2(const float *packed, long packed_rows, long first, long rows, long depth,
                                const float *columns, long columns_stride, long width,
                                float *output, long output_stride,
                                const float *bias, const float *residual, long residual_stride, int relu,
                                const float *column_scale, const float *column_shift, int column_relu) {
    abort();
}

void nnpipe_packed_product(const float *packed, long packed_rows, long first, long rows, long depth,
                           const float *columns, long columns_stride, long width,
                           float *output, long output_stride,
                           const float *bias, const float *residual, long residual_stride, int relu,
                           const float *column_scale, const float *column_shift, int column_relu) {
    abort();
}

#endif
