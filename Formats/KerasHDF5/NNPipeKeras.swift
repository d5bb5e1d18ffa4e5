// NNPipeKeras: see its issue.
