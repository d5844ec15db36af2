"""next_token_loss against torch cross_entropy on each unpadded sequence."""

from __future__ import annotations

import pytest
import torch

from repgeom.activations.loss import next_token_loss


def reference(logits, ids, lengths, left: bool) -> tuple[float, int]:
    total, n = 0.0, 0
    t = ids.shape[1]
    for b, length in enumerate(lengths):
        sl = slice(t - length, t) if left else slice(0, length)
        lg, tk = logits[b, sl].double(), ids[b, sl]
        if length >= 2:
            total += float(torch.nn.functional.cross_entropy(lg[:-1], tk[1:], reduction="sum"))
            n += length - 1
    return total, n


@pytest.mark.parametrize("left", [False, True])
def test_matches_cross_entropy_on_unpadded_sequences(left):
    gen = torch.Generator().manual_seed(0)
    b, t, v = 4, 9, 23
    logits = torch.randn(b, t, v, generator=gen) * 3
    ids = torch.randint(0, v, (b, t), generator=gen)
    lengths = [9, 5, 1, 2]
    mask = torch.zeros(b, t, dtype=torch.long)
    for i, n in enumerate(lengths):
        if left:
            mask[i, t - n :] = 1
        else:
            mask[i, :n] = 1
    ids_padded = ids.masked_fill(mask == 0, 0)
    total, n = next_token_loss(logits, ids_padded, mask)
    ref_total, ref_n = reference(logits, ids_padded, lengths, left)
    assert n == ref_n == 8 + 4 + 0 + 1
    assert total == pytest.approx(ref_total, rel=1e-6)


def test_no_mask_and_half_precision_logits():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 6, 11, generator=gen)
    ids = torch.randint(0, 11, (2, 6), generator=gen)
    total, n = next_token_loss(logits.half(), ids)
    ref = torch.nn.functional.cross_entropy(
        logits.half().double()[:, :-1].reshape(-1, 11), ids[:, 1:].reshape(-1), reduction="sum"
    )
    assert n == 10
    assert total == pytest.approx(float(ref), rel=1e-5)


def test_bad_shapes():
    with pytest.raises(ValueError, match="logits"):
        next_token_loss(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="token_ids"):
        next_token_loss(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="outside"):
        next_token_loss(torch.zeros(1, 3, 4), torch.full((1, 3), 7))


@pytest.mark.parametrize("chunk", [1, 23 * 3, 10**6])
def test_head_loss_in_chunks_equals_the_loss_of_all_logits(chunk):
    """Decoding only the predicting positions, a chunk at a time, changes nothing."""
    from repgeom.activations.loss import predicting_nll

    gen = torch.Generator().manual_seed(1)
    b, t, d, v = 3, 7, 5, 23
    hidden = torch.randn(b, t, d, generator=gen)
    head = torch.nn.Linear(d, v)
    ids = torch.randint(0, v, (b, t), generator=gen)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 1:] = 0
    with torch.no_grad():
        expected = next_token_loss(head(hidden), ids, mask)
        nll, top = predicting_nll(head, hidden, ids, mask, v, chunk_elements=chunk)
    got = (float(nll.double().sum()), len(nll))
    assert top is None
    assert got[1] == expected[1] == 6 + 3
    assert got[0] == pytest.approx(expected[0], rel=1e-6)  # float32 logits, other blocking


@pytest.mark.parametrize("passes", ["nll_in_place_numpy", "nll_in_place_torch"])
def test_both_in_place_passes_equal_float64_cross_entropy(passes):
    """The CPU (numpy) and any-device (torch) passes: per-row loss against a float64
    cross-entropy, top-1 tokens of the selected rows, non-finite logits refused."""
    from repgeom.activations import loss

    fn = getattr(loss, passes)
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(9, 301, generator=gen) * 4
    targets = torch.randint(0, 301, (9,), generator=gen)
    ref = torch.nn.functional.cross_entropy(logits.double(), targets, reduction="none")
    mask = torch.tensor([True, False, True, True, False, False, True, False, True])
    for top, expected in (
        (False, None),
        (True, logits.argmax(1)),
        (mask, logits[mask].argmax(1)),
    ):
        z = logits.clone()
        nll, best = fn(z, z.gather(1, targets[:, None]).squeeze(1), top)
        assert nll.dtype == torch.float32
        torch.testing.assert_close(nll.double(), ref, rtol=1e-6, atol=1e-6)
        if expected is None:
            assert best is None
        else:
            assert torch.equal(best, expected)
    for bad in (float("nan"), float("inf")):
        z = logits.clone()
        z[3, 7] = bad
        with pytest.raises(FloatingPointError):
            fn(z, z.gather(1, targets[:, None]).squeeze(1), False)
