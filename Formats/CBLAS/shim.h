// OpenBLAS's CBLAS interface: float GEMM for the CPU runtime.
#include <cblas.h>
