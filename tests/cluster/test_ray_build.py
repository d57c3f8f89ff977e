"""The distributed build on a real Ray cluster (tests/cluster/conftest.py): the same index as
a local build, file for file, even when a sort task's worker is killed mid-run."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

from cluster_support import index_files, kill_first, write_corpus

from anygram import Engine
from anygram.index.build import build_index


def _bpe(tmp: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["the cat sat on a mat and then the dog ran"] * 20,
                            trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                                initial_alphabet=pre_tokenizers.ByteLevel
                                                .alphabet()))
    tok.save(str(tmp / "tokenizer.json"))
    return tmp / "tokenizer.json"


def test_a_ray_build_is_the_local_build_file_for_file(ray_cluster, tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", 3000, seed=2)
    tok = _bpe(tmp_path)
    local = build_index(corpus, tmp_path / "local", tokenizer=tok, shard_tokens=6000,
                        workers=1, progress=False)
    remote = build_index(corpus, tmp_path / "ray", tokenizer=tok, shard_tokens=6000,
                         progress=False, ray_address=ray_cluster.address)
    assert len(local.shards) >= 4 and remote.shards == local.shards
    assert index_files(tmp_path / "ray") == index_files(tmp_path / "local")
    assert Engine.open(tmp_path / "ray").count(" the cat").count > 0


def test_a_killed_sort_task_is_run_again(ray_cluster, tmp_path):
    rng = random.Random(4)
    with (tmp_path / "c.jsonl").open("w") as f:
        for _ in range(400):
            f.write(json.dumps({"text": "".join(rng.choice("abcdefgh ") for _ in range(5000))})
                    + "\n")
    build_index(tmp_path / "c.jsonl", tmp_path / "local", shard_tokens=500_000, workers=1,
                progress=False)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=kill_first, args=("ray::finish_shard", stop, killed))
    killer.start()
    try:
        build_index(tmp_path / "c.jsonl", tmp_path / "ray", shard_tokens=500_000,
                    progress=False, ray_address=ray_cluster.address)
    finally:
        stop.set()
        killer.join()
    assert killed, "no sort task was seen running"
    assert index_files(tmp_path / "ray") == index_files(tmp_path / "local")
