// libprotobuf-c, reached only through the ONNX format module's checked wrapper.
#include <protobuf-c/protobuf-c.h>
