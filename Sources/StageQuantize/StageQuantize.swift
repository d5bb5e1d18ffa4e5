// StageQuantize: see its issue.
