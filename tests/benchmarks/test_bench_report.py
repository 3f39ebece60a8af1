"""`make bench`: the results' schema, the table, and the runner."""

import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import bench, report  # noqa: E402


def _row(**change):
    row = {"family": "CARL", "measure": "training step", "ours": 2.0,
           "reference": 4.0, "unit": "s", "ratio": 0.5,
           "reference_name": "authors' code", "target": "<= 0.8x",
           "met": True}
    row.update(change)
    return row


def _result(rows, date="2026-12-06"):
    return {"rows": rows, "cpu": "AMD EPYC", "cpu_count": 2,
            "machine": "x86_64", "tensorflow": "2.17.1", "date": date,
            "load_average": [0.1, 0.4], "command": "python b.py --bench"}


@pytest.mark.parametrize("change, message", [
    ({"ratio": 0.6}, "not ours / reference"),
    ({"ours": float("nan")}, "finite"),
    ({"ours": None}, "finite"),
    ({"met": "yes"}, "'met'"),
])
def test_rows_that_cannot_go_into_the_table(change, message):
    with pytest.raises(report.ResultError, match=message):
        report.check_rows(_result([_row(**change)]), "carl")


def test_a_row_with_a_missing_key_is_named():
    row = _row()
    del row["target"]
    with pytest.raises(report.ResultError, match=r"carl: rows\[0\]"):
        report.check_rows(_result([row]), "carl")
    with pytest.raises(report.ResultError, match="non-empty list"):
        report.check_rows({"cases": {}}, "carl")


def test_table_orders_families_and_cites_each_run():
    text = report.render({
        "z_eval": _result([_row(family="Evaluation", measure="CLI",
                                ours=1.5, reference=60.0, ratio=0.03)]),
        "a_carl": _result([_row(), _row(measure="memory", ours=3.0,
                                        reference=None, ratio=None,
                                        reference_name=None, target=None,
                                        met=None, unit="GB")],
                          date="2026-12-05"),
    })
    lines = text.splitlines()
    assert lines[2] == ("| CARL | training step | 2.00 s | 4.00 s | 0.50× | "
                        "<= 0.8x | yes | [1] |")
    assert lines[3] == "| CARL | memory | 3.00 GB | – | – | – | – | [1] |"
    assert lines[4].startswith("| Evaluation | CLI | 1.50 s | 60.0 s | "
                               "0.03× |")
    assert lines[4].endswith("| [2] |")
    assert "[1] a_carl: `python b.py --bench`, 2-core AMD EPYC (x86_64), " \
           "TensorFlow 2.17.1, 2026-12-05, load average 0.10–0.40, " \
           "reference: authors' code." in text
    assert "2026-12-06" in lines[-1]


def test_committed_table_is_the_rendering_of_the_committed_results():
    """benchmarks/README.md's table is generated, never edited by hand."""
    results = report.load_results(ROOT / "benchmarks" / "results")
    assert results, "benchmarks/results/ holds no result"
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    table = report.render(results)
    assert report.replace_table(readme, table) == readme


def test_every_benchmark_of_make_bench_exists_and_has_a_preset():
    for name, spec in bench.BENCHMARKS.items():
        script = (ROOT / spec.script).read_text()
        assert "--bench" in spec.args and '"--bench"' in script, name
        for _, repo_flag, python_flag in spec.references:
            assert f'"{repo_flag}"' in script, (name, repo_flag)
            assert f'"{python_flag}"' in script, (name, python_flag)


def test_reference_flags(tmp_path):
    with pytest.raises(SystemExit, match="unknown name 'torch'"):
        bench.parse_references([f"torch={tmp_path}"])
    with pytest.raises(SystemExit, match="does not exist"):
        bench.parse_references([f"carl={tmp_path / 'missing'}"])
    with pytest.raises(SystemExit, match="NAME=REPO"):
        bench.parse_references(["carl"])
    refs = bench.parse_references([f"carl={tmp_path}:{sys.executable}"])
    assert refs == {"carl": (str(tmp_path), sys.executable)}
    argv, shown = bench.command("carl", refs)
    assert argv[-4:] == ["--reference_repo", str(tmp_path),
                         "--reference_python", sys.executable]
    assert str(tmp_path) not in shown and "<carl repo>" in shown


def _fake_benchmark(tmp_path, monkeypatch, body):
    script = tmp_path / "fake.py"
    script.write_text(
        "import json, sys\n"
        "out = sys.argv[sys.argv.index('--output') + 1]\n" + body)
    monkeypatch.setitem(bench.BENCHMARKS, "fake",
                        bench.Benchmark(str(script), ("--bench",)))


def test_a_failed_benchmark_keeps_the_previous_result(tmp_path,
                                                      monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    previous = json.dumps(_result([_row()]))
    (results / "fake.json").write_text(previous)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Benchmarks\n{report.BEGIN}\nold\n{report.END}\n")

    _fake_benchmark(tmp_path, monkeypatch, "sys.exit(3)\n")
    with pytest.raises(SystemExit, match="failed: fake"):
        bench.main(["--only", "fake", "--results_dir", str(results),
                    "--readme", str(readme)])
    assert (results / "fake.json").read_text() == previous
    assert "| CARL | training step |" in readme.read_text()
    assert not list(results.glob("*.tmp"))

    # A result whose rows break the schema is refused as well.
    bad = _result([_row(ratio=0.9)])
    _fake_benchmark(tmp_path, monkeypatch,
                    f"open(out, 'w').write({json.dumps(bad)!r})\n")
    with pytest.raises(SystemExit, match="failed: fake"):
        bench.main(["--only", "fake", "--results_dir", str(results),
                    "--readme", str(readme)])
    assert (results / "fake.json").read_text() == previous


def test_a_new_result_replaces_the_old_and_the_table(tmp_path, monkeypatch):
    results = tmp_path / "results"
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.BEGIN}\n{report.END}\nend\n")
    new = _result([_row(ours=1.0, ratio=0.25)])
    _fake_benchmark(tmp_path, monkeypatch,
                    f"open(out, 'w').write({json.dumps(new)!r})\n")
    bench.main(["--only", "fake", "--results_dir", str(results),
                "--readme", str(readme)])
    saved = json.loads((results / "fake.json").read_text())
    assert saved["rows"][0]["ours"] == 1.0
    assert saved["command"].endswith("fake.py --bench")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("end\n")
    assert "| CARL | training step | 1.00 s | 4.00 s | 0.25× |" in text
