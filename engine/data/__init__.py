"""Datasets: the registry (dataset_info.json), loading rows into TRL's conversational format, checks and
previews, and the generators of the shipped samples."""
