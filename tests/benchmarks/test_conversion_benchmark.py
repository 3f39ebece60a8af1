"""The conversion benchmark's table rows (the run itself: `make bench`)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from benchmarks import conversion  # noqa: E402
from benchmarks import report  # noqa: E402


def test_rows_compare_with_the_local_path_on_one_thread():
    result = {"flow": "tvl1", "videos": 16, "frames": 24, "size": [112, 112],
              "workers": 2,
              "cases": {"local_1": {"videos_per_second": 0.1},
                        "local_threads": {"videos_per_second": 0.15},
                        "direct_2": {"videos_per_second": 0.18}}}
    rows = conversion.table_rows(result)
    report.check_rows({"rows": rows}, "conversion")
    beam, threads = rows
    assert "DirectRunner, 2 worker processes" in beam["measure"]
    assert (beam["ours"], beam["reference"], beam["ratio"]) == (0.18, 0.1,
                                                                1.8)
    assert (threads["ratio"], threads["unit"]) == (1.5, "videos/s")
