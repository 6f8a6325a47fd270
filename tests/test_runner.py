"""scicurate.runner: the default local runner and how a local run shares this machine's CPUs."""

from __future__ import annotations

import os

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from scicurate.runner import local_cpu_share, pipeline_options, workers_are_local


@pytest.mark.parametrize(("flags", "cpus", "expected"), [
    ([], 2, 2), ([], 16, 8), ([], 1, 1),
    (["--direct_num_workers=2"], 2, 1), (["--direct_num_workers=2"], 16, 8), (["--direct_num_workers=4"], 16, 4),
    (["--direct_num_workers=0"], 16, 1), (["--direct_num_workers=3"], 2, 1),
])
def test_local_cpu_share_divides_the_cpus_among_local_workers(monkeypatch, flags, cpus, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert local_cpu_share(PipelineOptions(flags)) == expected


def test_local_cpu_share_survives_an_unknown_cpu_count(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert local_cpu_share(PipelineOptions([])) == 1


def test_the_default_runner_is_local_and_dataflow_is_not():
    assert workers_are_local(pipeline_options([]))
    assert not workers_are_local(pipeline_options(["--runner=DataflowRunner"]))
    assert workers_are_local(pipeline_options(["--runner=PortableRunner", "--job_endpoint=embed",
                                               "--environment_type=LOOPBACK"]))


def test_files_beams_glob_cannot_match_are_named(tmp_path, capsys):
    from scicurate.runner import match_inputs

    for name in ("a.pdf", "b\\c.pdf"):
        (tmp_path / name).write_bytes(b"%PDF-")
    matched = [m.path for m in match_inputs(str(tmp_path / "*.pdf"))]
    assert matched == [str(tmp_path / "a.pdf")]
    err = capsys.readouterr().err
    assert "1 files match" in err and "b\\\\c.pdf" in err
    match_inputs(str(tmp_path / "a.pdf"))
    assert capsys.readouterr().err == ""
