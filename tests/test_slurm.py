"""config/test.yaml through ``--profile profiles/slurm`` on a real one-node SLURM cluster
(profiles/slurm/local-cluster.sh), against a local ``--cores 2`` run of the same config.

Opt-in, as it takes 14 to 22 minutes on the 2-core machine: ``REPGEOM_SLURM_TEST=1 pytest`` or
``pytest -m slurm``. Needs root and apt-get (the script installs and starts the daemons); the
cluster is stopped afterwards unless it was already running.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from repgeom.workflow.footprint import extraction_mem_mb
from tests.compare import differences
from tests.workflow import ROOT, command, planned_jobs, snakemake

pytestmark = pytest.mark.slurm

CLUSTER = ROOT / "profiles" / "slurm" / "local-cluster.sh"
PROFILE = ROOT / "profiles" / "slurm"
CONFIG = ROOT / "config" / "test.yaml"
# rules of config/test.yaml that ask for a GPU: the heads' device is left at auto there, while
# extraction, training and the Birth variants run on cpu
GPU_RULES = {"bottleneck_heads"}
# the rule whose first running job the test makes fail, to see the profile's retry
FAILED_RULE = "extract"
SACCT_FIELDS = ("JobID", "Comment", "Partition", "AllocCPUS", "ReqMem", "Timelimit", "AllocTRES")
SACCT_FIELDS += ("State", "Submit", "Start", "End", "ElapsedRaw")


def unavailable() -> str | None:
    """Why the local cluster cannot be brought up here, or None."""
    if os.geteuid() != 0:
        return "needs root: profiles/slurm/local-cluster.sh installs and starts SLURM daemons"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "needs apt-get (Debian/Ubuntu) to install SLURM, or SLURM already installed"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "needs snakemake-executor-plugin-slurm: pip install -e '.[slurm]'"
    return None


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def partitions() -> dict[str, dict]:
    path = PROFILE / profile()["slurm-partition-config"]
    return yaml.safe_load(path.read_text())["partitions"]


def node_size() -> dict[str, str]:
    """The script's node settings: the machine's CPUs and memory, or more where the profile asks
    more for one job (SLURM then schedules it; the jobs share the real cores)."""
    prof = profile()
    threads = max(prof.get("set-threads", {}).values(), default=1)
    mem = max((r.get("mem_mb", 0) for r in prof.get("set-resources", {}).values()), default=0)
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return {
        "REPGEOM_SLURM_CPUS": str(max(os.cpu_count() or 1, threads)),
        "REPGEOM_SLURM_MEM_MB": str(max(int(total_mb * 0.9), mem)),
    }


@pytest.fixture(scope="module")
def cluster():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    was_up = subprocess.run([CLUSTER, "status"], capture_output=True).returncode == 0
    env = {**os.environ, **node_size()}
    res = subprocess.run([CLUSTER, "up"], capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    yield
    if not was_up:
        subprocess.run([CLUSTER, "down"], capture_output=True, timeout=300)


def slurm_time(minutes: int) -> str:
    """A runtime in minutes as sacct prints a time limit ([D-]HH:MM:SS)."""
    days, rest = divmod(minutes, 24 * 60)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def rule_of(comment: str) -> str:
    """The rule named by the comment the plugin gives a job (rule_NAME[_wildcards_...])."""
    return re.fullmatch(r"rule_(.+?)(_wildcards_.*)?", comment).group(1)


def running_jobs(log: Path, rule: str) -> list[str]:
    """SLURM ids of this run's running jobs of ``rule`` (none before the run has an id)."""
    run_id = re.search(r"SLURM run ID: (\S+)", log.read_text())
    if not run_id:
        return []
    queue = subprocess.run(
        ["squeue", "-h", "-n", run_id.group(1), "-t", "RUNNING", "-o", "%i|%k"],
        capture_output=True,
        text=True,
    ).stdout
    return [
        j
        for j, comment in (line.split("|", 1) for line in queue.splitlines())
        if rule_of(comment) == rule
    ]


def script_pid(jobid: str) -> int | None:
    """The process of a job's Snakemake script (on this machine, the cluster's node), if any."""
    pids = subprocess.run(["scontrol", "listpids", jobid], capture_output=True, text=True).stdout
    for pid in (int(line.split()[0]) for line in pids.splitlines()[1:]):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"/.snakemake/scripts/" in cmd:
            return pid
    return None


def kill_first_script(rule: str, log: Path, proc: subprocess.Popen) -> str:
    """SLURM id of the first job of ``rule`` whose script this test killed with SIGKILL while it
    ran (as the kernel's OOM killer would). Not scancel: plugin 2.8.0 reads the state
    'CANCELLED by <uid>' as still running and waits for that job for ever (README)."""
    deadline = time.monotonic() + 1800
    while proc.poll() is None and time.monotonic() < deadline:
        for jobid in running_jobs(log, rule):
            pid = script_pid(jobid)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                return jobid
        time.sleep(0.2)
    raise AssertionError(f"no {rule} script was seen running; log:\n{log.read_text()[-3000:]}")


def sacct(jobids: list[str]) -> list[dict[str, str]]:
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "-j", ",".join(jobids), "-o", ",".join(SACCT_FIELDS)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [dict(zip(SACCT_FIELDS, line.split("|"), strict=True)) for line in out.splitlines()]


def run_local(local: Path) -> float:
    """Wall seconds of config/test.yaml run with ``--cores 2`` in ``local`` (which must pass)."""
    t0 = time.monotonic()
    res = snakemake(local, CONFIG, "--cores", "2", timeout=3600)
    local_s = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-5000:]
    return local_s


def run_slurm(work: Path) -> tuple[dict[str, int], str, str, float]:
    """config/test.yaml through the SLURM profile in ``work``, the first extract job's script
    killed: the jobs planned by rule, the run's log (it must pass), the killed job's SLURM id
    and the wall seconds."""
    plan = planned_jobs(snakemake(work, CONFIG, "-n", "--profile", str(PROFILE)))
    jobs = {rule: n for rule, n in plan.items() if rule != "all"}  # `all` runs no job
    log = work / "snakemake.out"
    t0 = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command(work, CONFIG, "--profile", str(PROFILE)),
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            failed = kill_first_script(FAILED_RULE, log, proc)
            proc.wait(timeout=3600)
        finally:
            if proc.poll() is None:
                proc.kill()
    slurm_s = time.monotonic() - t0
    text = log.read_text()
    assert proc.returncode == 0, text[-5000:]
    return jobs, text, failed, slurm_s


def check_submissions(text: str, jobs: dict[str, int]) -> tuple[dict[str, str], list[str]]:
    """Every job went through sbatch (the retried one twice), none ran on this host; returns
    the SLURM id by Snakemake job id and every submission's SLURM id."""
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text))
    submissions = re.findall(r"has been submitted with SLURM jobid (\d+)", text)
    assert len(submitted) == sum(jobs.values())
    assert len(submissions) == sum(jobs.values()) + 1
    assert re.findall(r"^localrule (\S+):", text, re.M) == ["all"]
    return submitted, submissions


def accounted_jobs(
    submissions: list[str], jobs: dict[str, int], failed: str
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """sacct's rows of the submissions (each with its ``rule``) and those completed: all but
    the killed one, as many of each rule as were planned."""
    rows = sacct(submissions)
    assert sorted(r["JobID"] for r in rows) == sorted(submissions)
    for row in rows:
        row["rule"] = rule_of(row["Comment"])
    done = [r for r in rows if r["State"] == "COMPLETED"]
    assert [r["JobID"] for r in rows if r["State"] != "COMPLETED"] == [failed]
    counts = {rule: sum(r["rule"] == rule for r in done) for rule in jobs}
    assert counts == jobs
    return rows, done


def check_retry(
    text: str, rows: list[dict[str, str]], failed: str, work: Path, submitted: dict[str, str]
) -> None:
    """The failed job was reported, retried (retries in the profile) and completed."""
    assert profile()["retries"] >= 1
    comment = next(r["Comment"] for r in rows if r["JobID"] == failed)
    again = sorted((r for r in rows if r["Comment"] == comment), key=lambda r: int(r["JobID"]))
    assert [r["State"] for r in again] == ["FAILED", "COMPLETED"]
    assert f"SLURM-job '{failed}' failed, SLURM status is: 'FAILED'" in text
    assert list((work / ".snakemake" / "slurm_logs").rglob(f"{failed}.log"))  # kept on failure
    snakemake_id = next(k for k, v in submitted.items() if v == again[-1]["JobID"])
    assert f"Trying to restart job {snakemake_id}." in text


def check_resources(done: list[dict[str, str]]) -> None:
    """Resources reached SLURM: the profile's values for extract, GPUs only where rules ask."""
    prof, parts = profile(), partitions()
    cpu_partition = next(name for name, limits in parts.items() if not limits.get("max_gpu"))
    gpu_partitions = {name for name, limits in parts.items() if limits.get("max_gpu")}
    want = prof["set-resources"]["extract"]
    for row in done:
        if row["rule"] == "extract":
            assert row["Partition"] == cpu_partition  # extraction.device is cpu in the config
            assert int(row["AllocCPUS"]) == prof["set-threads"]["extract"]
            # the rule's own memory (trained models: its default), not a profile value
            default = extraction_mem_mb({"source": "train"}, "", {}, 0, False, False)
            assert row["ReqMem"] == f"{want.get('mem_mb', default)}M"
            assert row["Timelimit"] == slurm_time(want["runtime"])
        if row["rule"] in GPU_RULES:
            assert row["Partition"] in gpu_partitions and "gres/gpu=1" in row["AllocTRES"]
        else:
            assert row["Partition"] == cpu_partition and "gres/gpu" not in row["AllocTRES"]
            if row["rule"] not in prof["set-resources"]:
                assert row["Timelimit"] == slurm_time(prof["default-resources"]["runtime"])
    assert {r["rule"] for r in done} & GPU_RULES == GPU_RULES


def print_timings(work: Path, done: list[dict[str, str]], local_s: float, slurm_s: float) -> None:
    """Figures for the README: wall times, and the time a SLURM job spends around its script
    (Snakemake starting twice inside the allocation, srun)."""
    bench = [
        float(f.read_text().splitlines()[1].split("\t")[0])
        for f in (work / "benchmarks" / "runs").rglob("*.tsv")
    ]
    elapsed = [int(r["ElapsedRaw"]) for r in done]
    print(
        f"\nlocal --cores 2: {local_s:.0f} s; SLURM: {slurm_s:.0f} s for {len(done)} jobs; "
        f"per job: {(sum(elapsed) - sum(bench)) / len(done):.1f} s in the allocation around "
        f"the script (median job {sorted(elapsed)[len(elapsed) // 2]} s)"
    )


def test_slurm_run_matches_local_run(cluster, tmp_path):
    local, work = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    work.mkdir()
    local_s = run_local(local)
    jobs, text, failed, slurm_s = run_slurm(work)
    submitted, submissions = check_submissions(text, jobs)
    rows, done = accounted_jobs(submissions, jobs, failed)
    check_retry(text, rows, failed, work, submitted)
    check_resources(done)
    assert differences(local / "results", work / "results") == []
    print_timings(work, done, local_s, slurm_s)
