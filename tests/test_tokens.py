"""Token windows: stream and document modes, random control, the Zarr round trip."""

from __future__ import annotations

import numpy as np
import pytest

from repgeom.data import tokens as T


def test_stream_windows_match_brute_force():
    encoded = [[5, 6, 7], [8], [9, 10, 11, 12, 13]]
    w = T.stream_windows(encoded, window=4, sep=0, bos=1)
    stream = [5, 6, 7, 0, 8, 0, 9, 10, 11, 12, 13, 0]
    expected = [[1, *stream[i : i + 3]] for i in range(0, len(stream) - 2, 3)]
    assert w.ids.tolist() == expected and w.ids.dtype == np.int32
    assert w.lengths.tolist() == [4] * 4
    no_bos = T.stream_windows(encoded, window=4, sep=0, bos=None)
    assert no_bos.ids.tolist() == [stream[0:4], stream[4:8], stream[8:12]]


def test_document_windows_are_ragged_and_padded():
    w = T.document_windows([[5, 6, 7, 8, 9], [3], []], window=4, pad=99, bos=1)
    assert w.ids.tolist() == [[1, 5, 6, 7], [1, 3, 99, 99]]
    assert w.lengths.tolist() == [4, 2] and w.n_tokens == 6


def test_random_windows_avoid_special_tokens():
    w = T.random_windows(64, 16, vocab_size=50, exclude=[0, 1, 2], bos=0, seed=1)
    body = w.ids[:, 1:]
    assert (w.ids[:, 0] == 0).all() and body.min() >= 3 and body.max() < 50
    assert len(np.unique(body)) == 47  # every allowed id appears in 960 uniform draws
    same = T.random_windows(64, 16, 50, [0, 1, 2], 0, seed=1)
    assert np.array_equal(w.ids, same.ids)


def test_zarr_round_trip_and_token_budget(tmp_path):
    w = T.Windows(np.arange(40, dtype=np.int32).reshape(10, 4), np.full(10, 4, dtype=np.int32))
    T.write_tokens(tmp_path / "t.zarr", {"train": w, "eval": w}, {"window": 4})
    back = T.read_tokens(tmp_path / "t.zarr", "eval", max_tokens=10)
    assert back.ids.tolist() == w.ids[:2].tolist()
    assert T.read_tokens(tmp_path / "t.zarr", "train").n_tokens == 40
    assert T.tokens_attrs(tmp_path / "t.zarr")["window"] == 4
    with pytest.raises(ValueError, match="shorter than one window"):
        T.read_tokens(tmp_path / "t.zarr", "eval", max_tokens=3)


def test_empty_split_leaves_nothing(tmp_path):
    empty = T.Windows(np.zeros((0, 4), dtype=np.int32), np.zeros(0, dtype=np.int32))
    with pytest.raises(ValueError, match="no token window"):
        T.write_tokens(tmp_path / "t.zarr", {"eval": empty}, {})
    assert list(tmp_path.iterdir()) == []


def test_bos_policy(tokenizer):
    assert T.bos_id(tokenizer) == tokenizer.bos_token_id

    class NoBos:
        bos_token_id = None
        cls_token_id = None

    with pytest.raises(ValueError, match="bos: none"):
        T.bos_id(NoBos())


def test_max_sentences_keeps_whole_rows(tmp_path):
    lengths = np.array([3, 1, 4, 2, 4], dtype=np.int32)
    ids = np.arange(20, dtype=np.int32).reshape(5, 4)
    w = T.Windows(ids, lengths)
    T.write_tokens(tmp_path / "t.zarr", {"train": w, "eval": w}, {})
    back = T.read_tokens(tmp_path / "t.zarr", "eval", max_sentences=3)
    assert back.ids.tolist() == ids[:3].tolist() and back.lengths.tolist() == [3, 1, 4]
    assert T.read_tokens(tmp_path / "t.zarr", "eval", max_sentences=99).n_tokens == 14
    # both limits: the tighter one wins (cumulative tokens 3, 4, 8, 10, 14)
    assert len(T.read_tokens(tmp_path / "t.zarr", "eval", 8, 4).lengths) == 3
    assert len(T.read_tokens(tmp_path / "t.zarr", "eval", 14, 2).lengths) == 2
    with pytest.raises(ValueError, match="max_sentences"):
        T.read_tokens(tmp_path / "t.zarr", "eval", max_sentences=0)


def test_extraction_reads_the_windows_its_options_say(tmp_path):
    """extraction.max_sentences for a corpus of one row per sentence, max_tokens otherwise, of
    extraction.split."""
    import json

    from repgeom.activations.options import ExtractionOptions
    from repgeom.workflow.config import options

    lengths = np.array([3, 1, 4, 2, 4], dtype=np.int32)
    w = T.Windows(np.arange(20, dtype=np.int32).reshape(5, 4), lengths)
    o = options(ExtractionOptions, "extraction", {"max_tokens": 8, "max_sentences": 4})
    for kind, rows in (("document", 4), ("stream", 3)):
        config = json.dumps({"corpus": {"kind": "text", "windows": kind}})
        T.write_tokens(tmp_path / kind, {"train": w, "eval": w}, {"config": config})
        assert o.windows(tmp_path / kind).lengths.tolist() == lengths[:rows].tolist()
    assert o.split == "eval" and o.batch_size >= 1  # the schema's defaults
    no_eval = T.Windows(w.ids[:1], w.lengths[:1])
    T.write_tokens(tmp_path / "t", {"train": no_eval, "eval": w}, {"config": config})
    train = options(ExtractionOptions, "extraction", {"split": "train"}).windows(tmp_path / "t")
    assert train.lengths.tolist() == [3]
