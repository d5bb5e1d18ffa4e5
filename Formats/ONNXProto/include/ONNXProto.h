// Generated protobuf-c declarations land here (Formats/ONNXProto/generate.sh).
