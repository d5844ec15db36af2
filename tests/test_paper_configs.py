"""Every paper config validates and plans its jobs offline with a dry run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from repgeom.config import check_schema
from tests.workflow import ROOT, planned_jobs, snakemake

PAPERS = sorted((ROOT / "config" / "paper").glob("*.yaml"))


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.stem)
def test_paper_config_validates(path: Path):
    check_schema(yaml.safe_load(path.read_text()), ROOT / "config" / "schema.yaml")


def local_inputs(config: dict, root: Path) -> None:
    """Small stand-ins for the local files a config reads that no rule downloads (FLORES,
    minimal pairs): the dry run plans from the config and these files, never from a network."""
    for corpus in config["corpora"].values():
        if corpus["kind"] == "flores":
            for code in corpus["languages"]:
                path = root / corpus["path"] / corpus.get("split", "dev") / code
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("One sentence.\nTwo sentences here.\n")
        elif corpus["kind"] == "minimal_pairs":
            path = root / corpus["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text('{"sentence_good": "Cats sleep.", "sentence_bad": "Cats sleeps."}\n')


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.stem)
def test_paper_config_dry_run_offline(path: Path, tmp_path):
    local_inputs(yaml.safe_load(path.read_text()), tmp_path)
    res = snakemake(tmp_path, path, "-n", env={"HF_HUB_OFFLINE": "1"}, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = planned_jobs(res)
    assert jobs.get("all") == 1 and sum(jobs.values()) > 5
    assert not (tmp_path / "results").exists()
    assert "a real run stops here" in res.stderr  # the models are not in this machine's cache
