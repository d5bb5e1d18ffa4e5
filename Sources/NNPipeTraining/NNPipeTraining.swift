// NNPipeTraining: reverse-mode gradients (issue 8).
