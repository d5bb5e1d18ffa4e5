// NNPipeKeras: Keras HDF5 reader/writer.
