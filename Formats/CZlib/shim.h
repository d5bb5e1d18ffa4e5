// zlib for Swift. deflateInit2 is a macro (it passes ZLIB_VERSION and sizeof(z_stream)), so it
// does not import into Swift; it is wrapped here as an inline function.
#include <zlib.h>

/// A gzip stream (window bits 15 + 16) at `level`, memory level 8: what `gzip -9` and Python's
/// `gzip.compress(data, 9)` use, so sizes match theirs byte for byte.
static inline int nnpipe_deflate_init_gzip(z_streamp stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
