"""Bigram-trigger language and batches of the "Birth of a Transformer" study."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import MISSING

import numpy as np
import pytest
from scipy import stats

from repgeom.birth.config import BirthConfig
from repgeom.birth.data import make_language
from repgeom.birth.plan import VARIANT, study_variants
from repgeom.birth.train import output_pools, sample_batch
from repgeom.workflow.config import ConfigError, options, schema_defaults, schema_node
from tests.conftest import stdlib_docstrings


@pytest.fixture(scope="module")
def docs() -> list[str]:
    return stdlib_docstrings()


@pytest.fixture(scope="module")
def lang(docs):
    return make_language(docs, 40)


def cfg(**kw) -> BirthConfig:
    base = {"n_vocab": 40, "seq_len": 128, "n_triggers": 4, "batch_size": 64}
    return options(BirthConfig, VARIANT, {**base, **kw})


# ---------------------------------------------------------------- language


def test_language_analytic_case():
    # a:3, b:2, q:1 ; pairs within documents: aa ab | ab bq ; q never followed → unigram row
    lang = make_language(["aab", "abq"], 3)
    assert lang.chars == "abq"
    np.testing.assert_allclose(lang.unigram, [3 / 6, 2 / 6, 1 / 6])
    np.testing.assert_allclose(lang.bigram[0], [1 / 3, 2 / 3, 0])
    np.testing.assert_allclose(lang.bigram[1], [0, 0, 1])
    np.testing.assert_allclose(lang.bigram[2], lang.unigram)
    assert lang.unigram_fallback_rows.tolist() == [False, False, True]


def test_language_skips_pairs_across_oov_and_documents():
    # vocabulary {a, b}: "a x b" must not count (a, b); "a" | "b" across documents neither
    lang = make_language(["axb", "a", "b", "ab", "ba", "aabb"], 2)
    index = {c: i for i, c in enumerate(lang.chars)}
    expect = np.zeros((2, 2), dtype=int)
    for doc in ["ab", "ba", "aabb"]:
        for x, y in zip(doc, doc[1:], strict=False):
            expect[index[x], index[y]] += 1
    np.testing.assert_array_equal(lang.bigram_counts, expect)


def test_language_matches_brute_force_counts(docs, lang):
    counts = Counter("".join(docs))
    top = [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:40]]
    assert list(lang.chars) == top
    np.testing.assert_array_equal(lang.unigram_counts, [counts[c] for c in top])
    index = {c: i for i, c in enumerate(top)}
    big = np.zeros((40, 40), dtype=np.int64)
    for doc in docs:
        for x, y in zip(doc, doc[1:], strict=False):
            if x in index and y in index:
                big[index[x], index[y]] += 1
    np.testing.assert_array_equal(lang.bigram_counts, big)
    np.testing.assert_allclose(lang.bigram.sum(axis=1), 1.0)
    assert lang.decode(lang.encode("the")) == "the"


def test_language_errors():
    with pytest.raises(ValueError, match="n_vocab"):
        make_language(["abc"], 5)
    with pytest.raises(ValueError, match="non-empty list"):
        make_language([], 2)
    with pytest.raises(ValueError, match="non-empty list"):
        make_language("abc", 2)


# ---------------------------------------------------------------- batches


def _check_trigger_rule(batch) -> None:
    x, occ = batch.tokens, batch.occurrence
    for b in range(x.shape[0]):
        trig, outs = list(batch.triggers[b]), batch.outputs[b]
        seen: Counter[int] = Counter()
        for t in range(x.shape[1] - 1):
            tok = int(x[b, t])
            if tok in trig:
                k = trig.index(tok)
                assert x[b, t + 1] == outs[k]
                seen[tok] += 1
                assert occ[b, t] == seen[tok]
            else:
                assert occ[b, t] == 0


@pytest.mark.parametrize("fixed", [True, False])
def test_trigger_followed_by_its_output_and_counter(lang, fixed):
    batch = sample_batch(lang, cfg(fixed_triggers=fixed), 0, 0, "train", batch_size=16)
    assert batch.tokens.shape == (16, 129)
    assert batch.occurrence.shape == (16, 128)
    _check_trigger_rule(batch)
    assert (batch.occurrence >= 2).any()


def test_fixed_triggers_are_most_frequent(docs, lang):
    counts = Counter("".join(docs))
    top4 = {c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4]}
    batch = sample_batch(lang, cfg(), 3, 1, "train", batch_size=8)
    for row in batch.triggers:
        assert {lang.chars[i] for i in row} == top4


def test_random_triggers_distinct_and_unigram_distributed(lang):
    batch = sample_batch(lang, cfg(fixed_triggers=False), 0, 0, "train", batch_size=32)
    assert all(len(set(r)) == 4 for r in batch.triggers)
    # K = 1: the trigger is one draw from the unigram
    c = cfg(fixed_triggers=False, n_triggers=1, seq_len=2)
    trig = sample_batch(lang, c, 0, 0, "train", batch_size=20000).triggers[:, 0]
    s, d = _grouped_chisquare(np.bincount(trig, minlength=40), lang.unigram)
    assert stats.chi2.sf(s, d) > 1e-3


def _grouped_chisquare(obs: np.ndarray, probs: np.ndarray) -> tuple[float, int]:
    """Chi-square statistic and dof of counts against probabilities, small cells pooled."""
    n = obs.sum()
    exp = probs * n
    keep = exp >= 5
    f_obs, f_exp = obs[keep], exp[keep]
    if (~keep).any() and exp[~keep].sum() > 0:
        f_obs = np.append(f_obs, obs[~keep].sum())
        f_exp = np.append(f_exp, exp[~keep].sum())
    return float(((f_obs - f_exp) ** 2 / f_exp).sum()), f_obs.size - 1


@pytest.mark.parametrize("fixed", [True, False])
def test_non_trigger_transitions_follow_bigram(lang, fixed):
    c = cfg(fixed_triggers=fixed, seq_len=256)
    batch = sample_batch(lang, c, 7, 0, "train", batch_size=400)
    a = batch.inputs[batch.occurrence == 0]
    b = batch.targets[batch.occurrence == 0]
    counts = np.zeros((40, 40), dtype=np.int64)
    np.add.at(counts, (a, b), 1)
    assert (counts[lang.bigram == 0] == 0).all(), "a zero-probability transition was sampled"
    chi2, dof = 0.0, 0
    for i in range(40):
        if counts[i].sum() >= 200:
            s, d = _grouped_chisquare(counts[i], lang.bigram[i])
            chi2, dof = chi2 + s, dof + d
    assert dof > 100
    assert stats.chi2.sf(chi2, dof) > 1e-3
    # the first token is a unigram draw
    first = sample_batch(lang, c.__class__(**{**c.to_dict(), "seq_len": 2}), 1, 0, "train", 20000)
    s, d = _grouped_chisquare(np.bincount(first.tokens[:, 0], minlength=40), lang.unigram)
    assert stats.chi2.sf(s, d) > 1e-3


def test_bigram_outputs_follow_trigger_row_on_pool(lang):
    c = cfg(n_triggers=1, bigram_outputs=True, seq_len=2)
    pool, _ = output_pools(c)
    outs = sample_batch(lang, c, 0, 0, "train", batch_size=20000).outputs[:, 0]
    assert np.isin(outs, pool).all()
    assert 0 in pool and not (outs == 0).any()  # no_repeat: trigger 0 is not its own output
    p = np.zeros(40)
    p[pool] = lang.bigram[0, pool]
    p[0] = 0.0
    s, d = _grouped_chisquare(np.bincount(outs, minlength=40), p / p.sum())
    assert stats.chi2.sf(s, d) > 1e-3


@pytest.mark.parametrize("no_repeat", [True, False])
def test_uniform_outputs_and_no_repeat(lang, no_repeat):
    c = cfg(n_triggers=1, seq_len=2, no_repeat=no_repeat)
    pool, _ = output_pools(c)
    outs = sample_batch(lang, c, 0, 0, "train", batch_size=20000).outputs[:, 0]
    p = np.zeros(40)
    p[pool] = 1.0
    if no_repeat:
        p[0] = 0.0
    s, d = _grouped_chisquare(np.bincount(outs, minlength=40), p / p.sum())
    assert stats.chi2.sf(s, d) > 1e-3
    if no_repeat:
        # random triggers too: no sequence has a trigger that outputs itself
        batch = sample_batch(lang, cfg(fixed_triggers=False), 0, 0, "train", batch_size=500)
        assert not (batch.triggers == batch.outputs).any()


def test_batches_deterministic_per_seed_step_split(lang):
    c = cfg(fixed_triggers=False)
    a = sample_batch(lang, c, 5, 3, "train")
    b = sample_batch(lang, c, 5, 3, "train")
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    for other in (
        sample_batch(lang, c, 5, 4, "train"),
        sample_batch(lang, c, 6, 3, "train"),
        sample_batch(lang, c, 5, 3, "test"),
    ):
        assert not np.array_equal(a.tokens, other.tokens)


def test_ood_outputs_never_training_outputs(lang):
    c = cfg(fixed_triggers=False)
    train_pool, ood_pool = output_pools(c)
    assert np.intersect1d(train_pool, ood_pool).size == 0
    assert np.union1d(train_pool, ood_pool).tolist() == list(range(40))
    assert ood_pool.size == round(0.25 * 40)
    for step in range(3):
        for split in ("train", "test"):
            outs = sample_batch(lang, c, 0, step, split).outputs
            assert not np.isin(outs, ood_pool).any()
        ood = sample_batch(lang, c, 0, step, "ood")
        assert np.isin(ood.outputs, ood_pool).all()
        _check_trigger_rule(ood)
    with pytest.raises(ValueError, match="ood_fraction"):
        sample_batch(lang, cfg(ood_fraction=0.0), 0, 0, "ood")


def test_sample_batch_errors(lang):
    with pytest.raises(ValueError, match="n_vocab"):
        sample_batch(lang, cfg(n_vocab=30), 0, 0)
    with pytest.raises(ValueError, match="split"):
        sample_batch(lang, cfg(), 0, 0, "validation")
    with pytest.raises(ValueError, match="step"):
        sample_batch(lang, cfg(), 0, -1)


# ---------------------------------------------------------------- config


def study(**birth) -> dict[str, dict]:
    """The resolved variants of a ``birth`` section (the schema's defaults under it)."""
    return study_variants(schema_defaults("birth", birth), {"python_docs": {}})


def test_schema_defaults_and_built_config_agree():
    """Every setting of BirthConfig has its type and its default in the schema, and nowhere
    else: the built config is the schema's defaults (name, its key in birth.variants, is not
    a setting)."""
    fields = {f.name: f for f in dataclasses.fields(BirthConfig) if f.name != "name"}
    defaults = schema_defaults(VARIANT)
    assert list(defaults) == list(fields)
    assert list(schema_node("birth.$defs.settings")["properties"]) == list(fields)
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields.values())
    built = options(BirthConfig, VARIANT, {}).to_dict()
    assert built == {"name": "", **defaults}
    for key, value in defaults.items():  # and of the same type (0.0001, not "1e-4")
        assert type(built[key]) is type(value), key


def test_default_study():
    variants = study(common={"seed": 3})
    assert list(variants) == [
        "simplified_fixed",
        "simplified_random",
        "simplified_frozen",
        "one_layer",
        "full",
    ]
    assert all(v["seed"] == 3 and v["name"] == k for k, v in variants.items())
    assert not variants["simplified_random"]["fixed_triggers"]
    assert variants["full"]["arch"] == "full" and variants["one_layer"]["n_layers"] == 1
    assert options(BirthConfig, VARIANT, {"lr": 1}).lr == 1.0
    assert isinstance(options(BirthConfig, VARIANT, {"d_model": 32.0}).d_model, int)
    with pytest.raises(ConfigError, match="'birth.corpus': 'enwik8' is not a corpus"):
        study(corpus="enwik8")  # a config that names the study names a corpus it has


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"dim": 3}, "dim"),
        ({"lr": float("nan")}, "lr"),
        ({"weight_decay": float("inf")}, "weight_decay"),
        ({"fixed_triggers": 1}, "fixed_triggers"),
        ({"n_layers": 3}, "n_layers"),
        ({"n_heads": 2}, "n_heads"),
        ({"arch": "full", "n_heads": 3}, "n_heads"),
        ({"arch": "transformer"}, "arch"),
        ({"n_triggers": 65}, "n_triggers"),
        ({"ood_fraction": 1.0}, "ood_fraction"),
        ({"freeze_until": {"layers.1.wk.weight": -1}}, "freeze_until.layers.1.wk.weight"),
    ],
)
def test_bad_settings_name_the_key(overrides, key):
    """options names the schema path and the key; the plan names the variant and the key."""
    with pytest.raises(ValueError, match=re.escape(key)):  # ConfigError or SettingsError
        options(BirthConfig, VARIANT, overrides)
    where = (
        "'birth.variants.bad': unknown key(s) 'dim'"
        if key == "dim"
        else f"'birth.variants.bad.{key}'"
    )
    with pytest.raises(ConfigError, match=re.escape(where)):
        study(variants={"good": {}, "bad": overrides})


def test_cross_field_error_from_common_names_common():
    with pytest.raises(
        ConfigError, match=r"'birth.common.n_layers': 3 must be 1 or 2.*variant 'one'"
    ):
        study(common={"n_layers": 3}, variants={"one": {}})


def test_a_variants_own_setting_wins_over_common():
    """The paper config sets fixed_triggers in common and false in simplified_random: the
    variant runs with random triggers (it would silently equal simplified_fixed otherwise)."""
    variants = study(
        common={"fixed_triggers": True, "seed": 3},
        variants={"r": {"fixed_triggers": False}, "f": {}},
    )
    assert variants["r"]["fixed_triggers"] is False and variants["r"]["seed"] == 3
    assert variants["f"]["fixed_triggers"] is True
