"""Snakemake adapter: remove one hub revision from the HF cache after its last job."""

from repgeom.io import write_json
from repgeom.runtime import log_to
from repgeom.workflow.locate import release_revision

log_to(snakemake.log[0])
p = snakemake.params
source = p.source
record = {
    "model": p.model,
    "step": p.step,
    "repo_id": source["path"],
    "revision": source["revision"],
    "commit": source["commit"],
    "downloaded": bool(p.downloaded),
}
if p.downloaded:
    record["freed_bytes"] = release_revision(source["path"], source["commit"])
    record["action"] = "removed from the HF cache"
else:
    record["freed_bytes"] = 0
    record["action"] = "kept: its weights were in the HF cache before this run"
print(record)
write_json(record, snakemake.output[0])
