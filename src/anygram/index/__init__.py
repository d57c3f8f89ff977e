"""The on-disk index: its format and manifest, opening its shards, building it from a corpus,
and the records of taken-down documents."""
