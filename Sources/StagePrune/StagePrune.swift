// StagePrune: see its issue.
