// NNPipeData: see its issue.
