// NNPipeONNX: see its issue.
