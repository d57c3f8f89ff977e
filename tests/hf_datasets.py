"""Files as Hugging Face ``datasets`` writes them, made with pyarrow alone (the tests do not
need ``datasets``): Arrow IPC files and ``save_to_disk`` folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_arrow(path: Path, table: Any, *, stream: bool = True, batch_rows: int = 1000) -> Path:
    """``table`` as an Arrow IPC file: the stream format (as Hugging Face ``datasets`` writes
    it) or the random-access file format, in record batches of ``batch_rows`` rows."""
    import pyarrow as pa

    open_writer = pa.ipc.new_stream if stream else pa.ipc.new_file
    with pa.OSFile(str(path), "wb") as sink, open_writer(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return path


def save_to_disk(folder: Path, table: Any, shards: int = 1) -> list[Path]:
    """A folder as Hugging Face ``datasets``' ``Dataset.save_to_disk`` writes it: Arrow stream
    files ``data-0000k-of-0000n.arrow``, ``dataset_info.json`` and ``state.json`` listing the
    data files (the layout of datasets 2.x-4.x)."""
    folder.mkdir(parents=True)
    per = -(-table.num_rows // shards)
    files = []
    for k in range(shards):
        name = f"data-{k:05d}-of-{shards:05d}.arrow"
        files.append(write_arrow(folder / name, table.slice(k * per, per)))
    (folder / "dataset_info.json").write_text(json.dumps(
        {"citation": "", "description": "", "features": {
            name: {"dtype": "string", "_type": "Value"} for name in table.schema.names}}))
    (folder / "state.json").write_text(json.dumps(
        {"_data_files": [{"filename": f.name} for f in files], "_fingerprint": "0123abcd",
         "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
         "_output_all_columns": False, "_split": None}))
    return files
