// NNPipeRuntime: see its issue.
