"""Where every file of a run lives: the one owner of paths, shared by the rules and the plans.

Rules write ``PATHS.results("...")``, ``PATHS.logs("...")`` and ``PATHS.benchmarks("...")`` (the
pattern of pypsa-eur's ``resources()``/``logs()``/``benchmarks()``) and use the named locations
below for the files that more than one rule or plan refers to. A wildcard is passed as its
pattern, e.g. ``PATHS.activations("{model}", "{step}", "{corpus}")``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paths:
    """The run's three roots, relative to its working directory, and its named files."""

    results_dir: str = "results"
    logs_dir: str = "logs"
    benchmarks_dir: str = "benchmarks/runs"

    def results(self, path: str) -> str:
        return f"{self.results_dir}/{path}"

    def logs(self, path: str) -> str:
        return f"{self.logs_dir}/{path}"

    def benchmarks(self, path: str) -> str:
        return f"{self.benchmarks_dir}/{path}"

    def corpus(self, corpus: str, file: str = "") -> str:
        """A prepared corpus's directory, or one of its files (train.jsonl, eval.jsonl, …)."""
        return self.results(f"corpora/{corpus}" + (f"/{file}" if file else ""))

    def tokenizer(self, tokenizer: str) -> str:
        """A trained tokenizer's directory."""
        return self.results(f"tokenizers/{tokenizer}")

    def tokens(self, tokenizer: str, corpus: str) -> str:
        return self.results(f"tokens/{tokenizer}/{corpus}.zarr")

    def checkpoint(self, model: str, step: str) -> str:
        """A checkpoint of a model the workflow trains."""
        return self.results(f"models/{model}/{step}")

    def hub_release(self, model: str, step: str) -> str:
        """What the release of a hub revision recorded."""
        return self.results(f"hub/{model}/{step}.json")

    def fingerprint(self, model: str, step: str) -> str:
        """The fingerprints of one checkpoint's stored weights (JSON)."""
        return self.results(f"weights/{model}/{step}.json")

    def integrity(self, model: str) -> str:
        """A model's fingerprints and duplicates over its checkpoints: the gate's dataset."""
        return self.results(f"weights/{model}/integrity.nc")

    def activations(self, model: str, step: str, corpus: str) -> str:
        return self.results(f"activations/{model}/{step}/{corpus}.zarr")

    def metric(self, metric: str, model: str, *where: str) -> str:
        """A metric's dataset: of one model gathered, or of one checkpoint (and corpus)."""
        return self.results("/".join(("metrics", metric, model, *where)) + ".nc")

    def heads(self, model: str, step: str) -> str:
        """The rank-restricted heads of one checkpoint."""
        return self.results(f"heads/{model}/{step}.nc")

    def ngram(self, tokenizer: str, corpus: str) -> str:
        return self.results(f"ngram/{tokenizer}/{corpus}.nc")

    def figure(self, study: str, stem: str, ext: str = "png") -> str:
        return self.results(f"figures/{study}/{stem}.{ext}")

    def table(self, study: str, stem: str, ext: str = "csv") -> str:
        return self.results(f"tables/{study}/{stem}.{ext}")


PATHS = Paths()  # the layout every run uses, relative to its working directory
