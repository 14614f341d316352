"""Run and job folders and their processes: the folder contract, status.json, starting, watching and
stopping processes, the run queue, the training-health rules and the terminal follower."""
