// Float matrix product for convolutions, with the weights packed once (at plan time) and the bias,
// residual and Relu applied as each output tile is stored. AVX2 + FMA where the CPU has them
// (checked at run time); the Swift side (NNPipeRuntime's PackedFilter) only calls in when
// nnpipe_packed_product_available() says so, and checks every argument first.
#ifndef CNNPIPE_KERNELS_H
#define CNNPIPE_KERNELS_H

/// 1 when this CPU runs the kernels (x86-64 with AVX2 and FMA), else 0.
int nnpipe_packed_product_available(void);

/// Rows of the weight matrix per packed panel: output rows a micro-tile computes at once.
int nnpipe_packed_panel_rows(void);

/// Floats needed to pack a rows x depth weight matrix (rows rounded up to whole panels).
long nnpipe_packed_filter_count(long rows, long depth);

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

#endif
