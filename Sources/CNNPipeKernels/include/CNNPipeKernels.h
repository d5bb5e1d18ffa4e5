// The runtime's own kernels in C, for x86-64 CPUs with AVX2 + FMA (checked at run time): a float
// matrix product for convolutions, with the weights packed once (at plan time) and the bias,
// residual and Relu applied as each output tile is stored; the inner loops of 2-D pooling; and
// calibration's histogram count. Also, in plain C for any CPU, the pool of worker threads that the
// runtime's parallel steps run on.
// The Swift side (NNPipeRuntime's NativeKernels.swift) only calls in when
// nnpipe_native_kernels_available() says so, and checks every argument first.
#ifndef CNNPIPE_KERNELS_H
#define CNNPIPE_KERNELS_H

/// 1 when this CPU runs these kernels (x86-64 with AVX2 and FMA), else 0.
int nnpipe_native_kernels_available(void);

/// Rows of the weight matrix per packed panel: output rows a micro-tile computes at once.
int nnpipe_packed_panel_rows(void);

/// Floats needed to pack a rows x depth weight matrix (rows rounded up to whole panels).
long nnpipe_packed_filter_count(long rows, long depth);

/// 1 when nnpipe_packed_product runs its AVX-512 tiles (the CPU has AVX-512F and NNPIPE_AVX512
/// is not 0), 0 when its AVX2 ones.
int nnpipe_packed_product_uses_avx512(void);

/// Packs the row-major rows x depth matrix `filter` into `packed`
/// (nnpipe_packed_filter_count(rows, depth) floats, 32-byte aligned).
void nnpipe_pack_filter(const float *filter, long rows, long depth, float *packed);

/// output[r][j] = relu?(bias[r] + sum_k filter[first + r][k] * column(k, j) + residual[r][j])
/// for r in 0..<rows, j in 0..<width, where `packed` holds a matrix of `packed_rows` rows
/// (nnpipe_pack_filter's `rows`) and `first` is a multiple of nnpipe_packed_panel_rows().
/// `columns` is depth x width, rows `columns_stride` apart; `output` and `residual` rows are
/// `output_stride` and `residual_stride` apart. `bias` (rows values, already offset to row
/// `first`) and `residual` may be NULL. Single-threaded; callers split rows or columns across
/// threads. Relu keeps NaN, like the runtime's Relu. column(k, j) is columns[k][j], or with
/// `column_scale` (and `column_shift`, depth values each) column_relu?(columns[k][j] *
/// column_scale[k] + column_shift[k]): a per-channel affine and Relu before a pointwise conv,
/// applied while the columns are packed instead of in a pass of its own.
void nnpipe_packed_product(const float *packed, long packed_rows, long first, long rows, long depth,
                           const float *columns, long columns_stride, long width,
                           float *output, long output_stride,
                           const float *bias, const float *residual, long residual_stride, int relu,
                           const float *column_scale, const float *column_shift, int column_relu);

/// Floats nnpipe_pack_columns needs for a depth x width column matrix.
long nnpipe_packed_columns_count(long depth, long width);

/// Packs rows first_depth ..< first_depth + depth_count (a multiple of 256 apart from the end,
/// first_depth a multiple of 256) of the depth x width matrix `columns` (rows `columns_stride`
/// apart; with `column_scale`, mapped as nnpipe_packed_product maps them) into `prepacked`
/// (nnpipe_packed_columns_count(depth, width) floats, 64-byte aligned), as nnpipe_packed_product
/// packs them for itself: so that blocks of rows sharing one column matrix pack it once.
void nnpipe_pack_columns(const float *columns, long columns_stride, long first_depth, long depth_count, long depth, long width,
                         const float *column_scale, const float *column_shift, int column_relu, float *prepacked);

/// nnpipe_packed_product on columns nnpipe_pack_columns packed (all `depth` rows).
void nnpipe_packed_product_prepacked(const float *packed, long packed_rows, long first, long rows, long depth, const float *prepacked,
                                     long width, float *output, long output_stride, const float *bias, const float *residual,
                                     long residual_stride, int relu);

/// nnpipe_packed_product on its AVX2 tiles whatever the CPU has: what the AVX-512 tiles must equal
/// bit for bit (every output is the same fused multiply-adds in the same order), for tests.
void nnpipe_packed_product_avx2(const float *packed, long packed_rows, long first, long rows, long depth,
                                const float *columns, long columns_stride, long width,
                                float *output, long output_stride,
                                const float *bias, const float *residual, long residual_stride, int relu,
                                const float *column_scale, const float *column_shift, int column_relu);

/// scratch[i] = max(scratch[i], row[i]) (the new value where it is greater; NaN held stays) or
/// scratch[i] + row[i], for i in 0..<count: one more input row of a pooling window.
void nnpipe_pool_combine_rows(float *scratch, const float *row, long count, int maximum);

/// Pooling windows along one combined row: output[i] = max or sum / divisor of
/// window[i * stride + t] for t in 0..<kernel, for the first multiple of 8 outputs of `count`;
/// returns how many it made (0 unless this CPU has AVX2 and stride is 1 or 2). With stride 2 it
/// reads up to window[(made - 1) * 2 + kernel] (one float past the last window).
long nnpipe_pool_row(const float *window, float *output, long count, int kernel, int stride, int maximum, float divisor);

/// Winograd F(2x2, 3x3) for 3x3 stride-1 convs (Winograd.c): the weights (outputs x channels x
/// 3 x 3) transformed into 16 matrices of outputs x channels, `transformed` holding 16 x outputs x
/// channels floats (matrix i at i * outputs * channels). Plain C; run once per plan.
void nnpipe_winograd_filter(const float *weights, long outputs, long channels, float *transformed);

/// The input transform of `channels` planes (height x width, row-major, one after another) for
/// tile rows first_tile_row ..< first_tile_row + tile_rows of tile_columns tiles: tile (r, c) is the
/// 4x4 patch at rows 2r - pad_top and columns 2c - pad_left (zero outside the plane). Value i of
/// that tile of channel k goes to transformed[i * position_stride + k * channel_stride +
/// (r - first_tile_row) * tile_columns + c]. AVX2 only.
void nnpipe_winograd_input(const float *image, long channels, long height, long width, long pad_top, long pad_left,
                           long first_tile_row, long tile_rows, long tile_columns, float *transformed, long channel_stride,
                           long position_stride);

/// The output transform for tile rows first_tile_row ..< first_tile_row + tile_rows: from the 16
/// products (value i of output channel k, tile (r, c) at products[i * position_stride +
/// k * channel_stride + (r - first_tile_row) * tile_columns + c]) to each tile's 2x2 outputs, plus
/// bias[k] (NULL: none) and residual (NULL: none; channel k's plane at k * residual_plane_stride,
/// rows output_width apart) and Relu (keeping NaN), written to output (channel k's plane at
/// k * output_plane_stride) for the output_height x output_width positions that exist. AVX2 only.
void nnpipe_winograd_output(const float *products, long outputs, long position_stride, long channel_stride,
                            long first_tile_row, long tile_rows, long tile_columns, float *output, long output_height, long output_width,
                            long output_plane_stride, const float *bias, const float *residual, long residual_plane_stride,
                            int relu);

/// One plane of a 2-D MaxPool without dilation: output[oh][ow] is the maximum of input over rows
/// oh * stride_height - pad_top + (0..<kernel_height) and columns ow * stride_width - pad_left +
/// (0..<kernel_width), clipped to the plane (-inf when nothing is left); a NaN held stays, a NaN
/// arriving is skipped, as nnpipe_pool_combine_rows and nnpipe_pool_row. `scratch` holds width + 8
/// floats. AVX2 only (callers check nnpipe_native_kernels_available()); the whole plane in C, as
/// row by row from Swift the calls and checks cost three times the pooling (SqueezeNet's 3x3/2
/// MaxPool on 64 x 111 x 111: 0.63 ms on one thread, onnxruntime 0.34-0.39).
void nnpipe_max_pool_plane(const float *input, long height, long width, float *output, long output_height, long output_width,
                           long kernel_height, long kernel_width, long stride_height, long stride_width, long pad_top,
                           long pad_left, float *scratch);

/// Counts `count` values into `table` (2 x bins counters: even lanes in the first half, odd lanes
/// in the second) at bin = floor((x - lower) * scale) clamped to [0, bins - 1] (not >= 0, NaN
/// included, is bin 0; callers count batches with NaN or infinities again), and stores the finite
/// extremes (+inf / -inf when there are none). Returns 1 when a value was NaN or infinite.
int nnpipe_histogram_count(const float *values, long count, unsigned *table, long bins, float lower, float scale,
                           float *minimum, float *maximum);

/// A task of nnpipe_pool_run: `worker` is 0 (the calling thread) to `workers` - 1, one thread at
/// a time per worker number, for per-worker scratch memory.
typedef void (*nnpipe_pool_function)(void *context, long worker, long task);

/// Runs function(context, worker, task) for every task in 0..<count on the calling thread and up
/// to workers - 1 helper threads of the process's pool (started on first use, kept; they spin
/// briefly after a job, then sleep), and returns 1 when every task has finished. Returns 0 and
/// runs nothing when the pool is busy with another job (another thread's, or a task calling back
/// in), or for fewer than 2 tasks or workers: the caller then runs them another way.
int nnpipe_pool_run(long count, long workers, nnpipe_pool_function function, void *context);

/// Direct convolution (DirectConvolution.c), AVX-512 only (callers check
/// nnpipe_packed_product_uses_avx512()). Output channels per block of the packed filter: a call's
/// first channel must be a multiple of this.
int nnpipe_direct_block_rows(void);

/// Positions a tile computes at once: a call's first position must be a multiple of this.
int nnpipe_direct_tile_positions(void);

/// Floats needed to pack an outputs x taps weight matrix (outputs rounded up to whole blocks).
long nnpipe_direct_filter_count(long outputs, long taps);

/// Packs the row-major outputs x taps matrix `weights` (a conv's weights, taps in the order
/// channel, kernel row, kernel column) for nnpipe_direct_convolution.
void nnpipe_direct_pack_filter(const float *weights, long outputs, long taps, float *packed);

/// Writes the zero-padded, phase-split copy of `channels` planes (height x width each) that
/// nnpipe_direct_convolution reads: for channel c and phase (a, b) (a < stride_height,
/// b < stride_width), the plane at buffer + ((c * stride_height + a) * stride_width + b) *
/// phase_height * phase_width holds at (i, j) the input at row i * stride_height + a - pad_top and
/// column j * stride_width + b - pad_left, or 0 outside the input. Plain C.
void nnpipe_direct_layout(const float *image, long channels, long height, long width, long stride_height, long stride_width,
                          long pad_top, long pad_left, long phase_height, long phase_width, float *buffer);

/// output[k][index(p)] = relu?(bias[k] + sum_t packed(k, t) * buffer[offsets[t] + p] +
/// residual[k][index(p)]) for output channels k in first_channel ..< first_channel + channels and
/// positions p in first_position ..< min(end_position, output_height * phase_width) with
/// p mod phase_width < output_width, where index(p) = (p div phase_width) * output_width +
/// p mod phase_width; output channel k's plane is at output + k * output_plane (the residual's at
/// residual + k * residual_plane), bias (NULL: none) holds channel 0's value first, and residual
/// may be NULL. Reads buffer up to offsets[t] + (first_position rounded up past end_position to a
/// whole tile) for every t; with `masked_tail`, only up to offsets[t] + the end (a buffer read in
/// place, such as a pointwise conv's input). `blocks_outer` runs every tile of one block of
/// channels before the next block (else every block of one tile before the next tile).
/// Single-threaded.
void nnpipe_direct_convolution(const float *packed, long taps, const long *offsets, const float *buffer,
                               long first_position, long end_position, long phase_width, long output_height,
                               long output_width, long first_channel, long channels, float *output, long output_plane,
                               const float *bias, const float *residual, long residual_plane, int relu, int masked_tail,
                               int blocks_outer);

#endif
