// NNPipeHDF5: see its issue.
