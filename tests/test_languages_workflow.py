"""The languages study in the workflow: corpus expansion, aligned corpora, the study plan, and
Snakemake runs with FLORES directories (both layouts, a missing language, a wrong length)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from repgeom.data.corpus import read_documents
from repgeom.languages import plan as LP
from repgeom.languages.corpora import member_sentences, write_aligned_corpus
from repgeom.languages.pairs import docstring_sentences, first_sentence
from repgeom.languages.plan import derived_inputs, expand_corpora
from repgeom.languages.readers import read_scores
from repgeom.languages.transliteration import untransliterate
from repgeom.workflow.config import ConfigError, load_schema, with_defaults
from repgeom.workflow.paths import Paths
from tests.workflow import ROOT, check_figure, planned_jobs, snakemake, table_rows

CODES = ["eng_Latn", "fra_Latn", "zho_Hans", "zho_Hant"]
SCHEMA = ROOT / "config" / "schema.yaml"


def flores_dir(root: Path, layout: str, n: int = 4, short: str | None = None) -> Path:
    """A FLORES-200 ('{code}.dev') or FLORES+ ('dev.{code}') dev split; ``short`` has n − 1."""
    (root / "dev").mkdir(parents=True)
    for code in CODES:
        name = f"{code}.dev" if layout == "flores200" else f"dev.{code}"
        k = n - 1 if code == short else n
        (root / "dev" / name).write_text("".join(f"{code} sentence {i}.\n" for i in range(k)))
    return root


def test_expand_flores_in_both_layouts(tmp_path):
    for layout in ("flores200", "flores_plus"):
        root = flores_dir(tmp_path / layout, layout)
        out = expand_corpora(
            {
                "docs": {"kind": "python_docs"},
                "flores": {"kind": "flores", "path": str(root), "languages": CODES},
            }
        )
        assert list(out) == ["docs", *(f"flores-{c}" for c in CODES)]
        fra = out["flores-fra_Latn"]
        assert fra["kind"] == "aligned" and fra["windows"] == "document"
        assert fra["group"] == "flores" and fra["member"] == "fra_Latn" and fra["split"] == "dev"
        assert fra["members"] == CODES and not fra["synthetic"]
        suffix = "fra_Latn.dev" if layout == "flores200" else "dev.fra_Latn"
        assert fra["file"] == str(root / "dev" / suffix)
        assert derived_inputs(fra) == [fra["file"], out["flores-eng_Latn"]["file"]]
        assert derived_inputs(out["docs"]) is None
        assert member_sentences(fra) == [f"fra_Latn sentence {i}." for i in range(4)]


def test_expand_flores_missing_language_names_every_path(tmp_path):
    root = flores_dir(tmp_path / "f", "flores200")
    cfg = {"flores": {"kind": "flores", "path": str(root), "languages": ["eng_Latn", "xxx_Xxxx"]}}
    with pytest.raises(ConfigError) as err:
        expand_corpora(cfg)
    msg = str(err.value)
    assert "corpora.flores.languages[1]" in msg and "'xxx_Xxxx'" in msg
    assert str(root / "dev" / "xxx_Xxxx.dev") in msg and str(root / "dev" / "dev.xxx_Xxxx") in msg


def test_flores_member_of_the_wrong_length_stops(tmp_path):
    root = flores_dir(tmp_path / "f", "flores_plus", short="zho_Hant")
    out = expand_corpora({"flores": {"kind": "flores", "path": str(root), "languages": CODES}})
    assert len(member_sentences(out["flores-zho_Hans"])) == 4
    with pytest.raises(ValueError, match=r"has 3 sentences but 'eng_Latn' .* has 4"):
        member_sentences(out["flores-zho_Hant"])


def test_expand_pairs_scripts_and_errors(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("ok\tnot\nThe cat sleeps.\tThe cat sleep.\nDogs bark.\tDogs barks.\n")
    corpora = {
        "docs": {"kind": "python_docs"},
        "blimp": {
            "kind": "minimal_pairs",
            "path": str(pairs),
            "good_column": "ok",
            "bad_column": "not",
        },
        "scripts": {"kind": "synthetic_scripts", "source": "docs", "scripts": ["Grek"]},
        "swaps": {"kind": "synthetic_pairs", "source": "docs", "n_sentences": 5},
    }
    out = expand_corpora(corpora)
    assert list(out) == [
        "docs", "blimp-good", "blimp-bad", "scripts-Latn", "scripts-Grek", "swaps-good", "swaps-bad"
    ]  # fmt: skip
    assert member_sentences(out["blimp-bad"]) == ["The cat sleep.", "Dogs barks."]
    assert out["scripts-Grek"]["n_sentences"] == 256 and out["swaps-bad"]["seed"] == 0
    assert out["scripts-Grek"]["synthetic"] and "SYNTHETIC" in out["swaps-good"]["description"]
    assert derived_inputs(out["scripts-Grek"], Paths("res")) == ["res/corpora/docs/eval.jsonl"]
    assert derived_inputs(out["blimp-good"]) == [str(pairs)]
    bad = copy.deepcopy(corpora)
    bad["scripts"]["source"] = "blimp"
    bad["swaps"]["source"] = "nope"
    bad["blimp"]["path"] = str(tmp_path / "absent.csv")
    with pytest.raises(ConfigError) as err:
        expand_corpora(bad)
    msg = str(err.value)
    assert "corpora.scripts.source': 'blimp' must name a python_docs or text corpus" in msg
    assert "corpora.swaps.source': 'nope'" in msg and "absent.csv does not exist" in msg
    clash = {"docs": corpora["docs"], "swaps": corpora["swaps"], "swaps-bad": {"kind": "text"}}
    with pytest.raises(ConfigError, match="'corpora.swaps-bad': the name is also made by"):
        expand_corpora(clash)


DOCS = [
    "Return the absolute value of the argument.\n\nMore text here.",
    "Open a file\nand return a stream.  Raise OSError on failure.",
    "x = f(a) + 1",  # code, not prose
    "Return the absolute value of the argument.",  # duplicate first sentence
    "Ünïcode text is skipped.",
    "Two words.",  # fewer than three words
    "Compute the mean, median and mode (of data).",
]


def test_docstring_sentences_are_plain_first_sentences():
    assert first_sentence(DOCS[1]) == "Open a file and return a stream."
    sentences = docstring_sentences(DOCS)
    assert sentences == [
        "Return the absolute value of the argument.",
        "Open a file and return a stream.",
        "Compute the mean, median and mode (of data).",
    ]
    assert docstring_sentences(DOCS, n=2) == sentences[:2]


def test_synthetic_members_are_aligned_by_index(tmp_path):
    out = expand_corpora(
        {
            "docs": {"kind": "python_docs"},
            "scripts": {"kind": "synthetic_scripts", "source": "docs", "n_sentences": 2},
            "swaps": {"kind": "synthetic_pairs", "source": "docs", "seed": 1},
        }
    )
    latn = member_sentences(out["scripts-Latn"], DOCS)
    cyrl = member_sentences(out["scripts-Cyrl"], DOCS)
    grek = member_sentences(out["scripts-Grek"], DOCS)
    assert latn == docstring_sentences(DOCS, 2) and len(cyrl) == len(grek) == 2
    assert [untransliterate(s, "Cyrl") for s in cyrl] == latn
    assert [untransliterate(s, "Grek") for s in grek] == latn
    assert not any(c.isascii() and c.isalpha() for c in "".join(cyrl))
    good = member_sentences(out["swaps-good"], DOCS)
    bad = member_sentences(out["swaps-bad"], DOCS)
    assert good == docstring_sentences(DOCS) and len(bad) == len(good)
    for g, b in zip(good, bad, strict=True):
        gw, bw = g.split(), b.split()
        diff = [i for i in range(len(gw)) if gw[i] != bw[i]]
        assert len(diff) == 2 and diff[1] == diff[0] + 1 and sorted(gw) == sorted(bw)
    with pytest.raises(ValueError, match="needs at least 2"):
        member_sentences(out["scripts-Cyrl"], DOCS[2:6])


def test_write_aligned_corpus_keeps_every_sentence_in_order(tmp_path):
    sentences = ["b second.", "a first.", "b second."]
    stats = write_aligned_corpus(sentences, tmp_path / "c", {"name": "x-good"})
    assert read_documents(tmp_path / "c" / "eval.jsonl") == sentences
    assert read_documents(tmp_path / "c" / "train.jsonl") == sentences
    on_disk = json.loads((tmp_path / "c" / "stats.json").read_text())
    assert on_disk == stats and stats["n_eval"] == stats["n_train"] == stats["n_documents"] == 3
    assert stats["name"] == "x-good" and len(stats["sha256"]) == 64
    with pytest.raises(ValueError, match="no sentences"):
        write_aligned_corpus([], tmp_path / "d", {})
    with pytest.raises(ValueError, match="empty"):
        write_aligned_corpus(["a", " "], tmp_path / "d", {})


def languages_defaults(section: dict) -> dict:
    return with_defaults(section, load_schema(SCHEMA)["properties"]["languages"])


def test_schema_defaults_and_study_plan(tmp_path):
    root = flores_dir(tmp_path / "f", "flores200")
    corpora = expand_corpora(
        {
            "docs": {"kind": "python_docs"},
            "flores": {"kind": "flores", "path": str(root), "languages": CODES},
            "pairs": {"kind": "synthetic_pairs", "source": "docs"},
        }
    )
    section = languages_defaults(
        {"groups": [{"name": "fl", "corpora": "flores"}], "grammaticality": ["pairs"]}
    )
    assert section["id_estimator"] == "skdim_twonn" and section["n_boot"] == 200
    assert section["groups"][0]["reference"] is None and section["steps"] == "last"
    groups, pairs = LP.study_groups(section, corpora)
    (g,) = groups
    assert g["reference"] == "flores-eng_Latn" and g["members"] == CODES
    assert g["script_panels"] == {"flores-zho_Hans": "zho", "flores-zho_Hant": "zho"}
    assert pairs[0]["corpora"] == ["pairs-good", "pairs-bad"]
    assert LP.study_corpora(groups, pairs) == [
        *(f"flores-{c}" for c in CODES),
        *pairs[0]["corpora"],
    ]
    names = LP.figure_names(groups, pairs)
    assert names["scripts"] == ["fl_scripts"] and names["grammaticality"] == [
        "pairs_grammaticality"
    ]
    assert names["divergence"] == ["fl_divergence", "pairs_divergence"]
    assert names["id_by_scale"] == ["fl_id_by_scale", "pairs_id_by_scale"]
    steps = {"a": ["step0", "step8"], "b": ["main"]}
    assert LP.study_checkpoints(section, steps) == [("a", "step8"), ("b", "main")]
    assert LP.study_checkpoints({"models": ["a"], "steps": "all"}, steps) == [
        ("a", "step0"),
        ("a", "step8"),
    ]
    with pytest.raises(ConfigError, match="languages.models"):
        LP.study_checkpoints({"models": ["c"]}, steps)
    bad = {
        "groups": [
            {"name": "x", "corpora": "docs"},
            {"name": "y", "corpora": "flores", "reference": "deu_Latn"},
        ],
        "grammaticality": ["flores"],
    }
    with pytest.raises(ConfigError) as err:
        LP.study_groups(bad, corpora)
    msg = str(err.value)
    assert "languages.groups[0].corpora': 'docs' is not a flores" in msg
    assert "languages.groups[1].reference': 'deu_Latn' is not a member" in msg
    assert "languages.grammaticality[0]': 'flores' is not a minimal_pairs" in msg
    # the GRIDE scale drawn in the figures must be one of the scales computed
    config = {"languages": {**section, "gride_scales": 3, "gride_scale": 8}, "corpora": corpora}
    with pytest.raises(ConfigError, match=r"languages.gride_scale 8 .* n1 = \[1, 2, 4\]"):
        LP.study_plan(config, steps)
    config["languages"]["gride_scale"] = 4
    assert LP.study_plan(config, steps)["figure_files"]["id_by_scale"]


def test_read_scores(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("language,score\neng_Latn,0.9\nfra_Latn,0.7\n")
    assert read_scores(path) == {"eng_Latn": 0.9, "fra_Latn": 0.7}
    path.write_text("lang,score\neng_Latn,0.9\n")
    with pytest.raises(ValueError, match="columns 'language' and 'score'"):
        read_scores(path)
    path.write_text("language,score\neng_Latn,high\n")
    with pytest.raises(ValueError, match="line 2"):
        read_scores(path)


# --------------------------------------------------------------------- through Snakemake


def study_config(tmp_path: Path, root: Path, languages: list[str]) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["corpora"]["flores"] = {"kind": "flores", "path": str(root), "languages": languages}
    cfg["languages"]["groups"].append({"name": "fl", "corpora": "flores", "reference": "eng_Latn"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("layout", ["flores200", "flores_plus"])
def test_dry_run_with_flores(tmp_path, layout):
    root = flores_dir(tmp_path / "flores", layout)
    res = snakemake(tmp_path, study_config(tmp_path, root, CODES), "-n", timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = planned_jobs(res)
    # aligned corpora: 2 scripts, 2 pairs, 4 FLORES languages (their own rule; docs is the
    # spine's); tokens of those, docs and random; extractions: 10 of the spine + 8 study
    # corpora at the last step of the decoder (test.yaml)
    assert jobs["corpus"] == 1 and jobs["languages_corpus"] == 8 and jobs["tokens"] == 10
    assert jobs["extract"] == 10 + 8
    assert jobs["languages_metrics"] == 1 and jobs["languages_figures"] == 1
    out = res.stdout + res.stderr
    name = "zho_Hant.dev" if layout == "flores200" else "dev.zho_Hant"
    assert str(root / "dev" / name) in out and "results/corpora/flores-zho_Hant" in out
    assert "fl_scripts.png" in out and "anisotropy/decoder/step8/flores" not in out


def test_missing_flores_language_stops_before_any_job(tmp_path):
    """A real run stops before any job, naming the key and every path looked at; a dry run
    plans the study from the config and only warns."""
    root = flores_dir(tmp_path / "flores", "flores200")
    config = study_config(tmp_path, root, ["eng_Latn", "yyy_Latn"])
    res = snakemake(tmp_path, config, "--cores", "1")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "corpora.flores.languages[1]" in out and str(root / "dev" / "yyy_Latn.dev") in out
    assert not (tmp_path / "results").exists()
    dry = snakemake(tmp_path, config, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "a real run stops here" in dry.stderr and "corpora.flores.languages[1]" in dry.stderr
    assert planned_jobs(dry)["languages_corpus"] >= 2


def test_corpus_job_of_the_wrong_length_fails_clearly(tmp_path):
    root = flores_dir(tmp_path / "flores", "flores200", short="fra_Latn")
    config = study_config(tmp_path, root, CODES)
    ok = snakemake(tmp_path, config, "--cores", "1", "results/corpora/flores-zho_Hans/stats.json")
    assert ok.returncode == 0, ok.stderr[-3000:]
    lines = read_documents(tmp_path / "results/corpora/flores-zho_Hans/eval.jsonl")
    assert lines == [f"zho_Hans sentence {i}." for i in range(4)]  # sentence i stays row i
    res = snakemake(tmp_path, config, "--cores", "1", "results/corpora/flores-fra_Latn/stats.json")
    assert res.returncode != 0
    log = (tmp_path / "logs" / "corpus" / "flores-fra_Latn.log").read_text()
    assert "has 3 sentences but 'eng_Latn'" in log and "has 4" in log
    assert not (tmp_path / "results/corpora/flores-fra_Latn/stats.json").exists()


@pytest.mark.slow
def test_scores_give_a_table_and_scatters(run_dir, tmp_path):
    """Scores added to the finished test run (with the pair set as a second group, so that
    three languages have a score): the per-language dataset already holds the pair set as a
    group (the planned dataset groups are the same), so only the table is made."""
    import shutil

    work = tmp_path / "run"
    shutil.copytree(run_dir, work, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    (work / "scores.csv").write_text("language,score\nLatn,0.9\nCyrl,0.5\ngood,0.6\nXyz,1\n")
    cfg["languages"]["scores"] = "scores.csv"
    cfg["languages"]["groups"].append({"name": "pairs", "corpora": "pairs", "reference": "good"})
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    plan = planned_jobs(snakemake(work, work / "config.yaml", "-n", "languages"))
    assert plan == {"languages_scores": 1, "languages": 1}
    res = snakemake(work, work / "config.yaml", "--cores", "2", "languages")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = table_rows(work / "results/tables/languages/score_correlation.csv")
    # Xyz is no language of a group: n = 3
    assert [(r["model"], r["step"], r["n"]) for r in rows] == [("decoder", "step8", "3")]
    assert all(-1 <= float(r["pearson_r"]) <= 1 and 0 <= float(r["spearman_p"]) <= 1 for r in rows)
    assert r"\toprule" in (work / "results/tables/languages/score_correlation.tex").read_text()
    png = work / "results/figures/languages/decoder/step8/score_correlation.png"
    inputs = ["scores.csv", "results/metrics/languages/decoder/step8.nc"]
    check_figure(work, png, "languages_scores", inputs, data_pixels=3 * 50)  # three markers
