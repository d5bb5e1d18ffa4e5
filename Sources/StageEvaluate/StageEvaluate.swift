// StageEvaluate: see its issue.
