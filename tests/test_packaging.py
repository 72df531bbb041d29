"""The installed package finds its templates and sample data without the source checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO_ROOT)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {done.stderr[-300:]}")
    return next(out.glob("octreport-*.whl"))


def test_wheel_ships_templates_and_sample_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "octreport/templates/base.html" in names and "octreport/templates/report.css" in names
    assert any(n.startswith("octreport/templates/partials/") for n in names)
    assert sum(n.startswith("octreport/sample_data/train/") for n in names) >= 200


def test_resources_resolve_inside_an_unpacked_wheel(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = (
        "from octreport.resources import templates_dir, sample_data_dir; "
        "print(templates_dir()); print(sample_data_dir())"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    templates, samples = done.stdout.split()
    assert templates == str(tmp_path / "octreport" / "templates")
    assert samples == str(tmp_path / "octreport" / "sample_data")
