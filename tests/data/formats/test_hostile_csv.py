"""CSV annotation and prediction files with hostile content get a clear
`DataError` naming the file (and the line where there is one), never a
crash or a silent value: a NUL byte, a field longer than the csv module
allows, NaN / infinite / out-of-range numbers."""

import pytest

from tfaction import errors
from tfaction.data.formats import ava
from tfaction.data.formats import video_info
from tfaction.evaluation import ava_io
from tfaction.evaluation import charades_map
from tfaction.evaluation import epic_io
from tfaction.evaluation import video_accuracy

HOSTILE = {"nul": "a\x00b", "long_field": "x" * 200000, "nan": "nan",
           "inf": "inf", "huge": "1e999", "huge_int": "9" * 5000}
EPIC_HEADER = ("narration_id,participant_id,video_id,narration_timestamp,"
               "start_timestamp,stop_timestamp,start_frame,stop_frame,"
               "narration,verb,verb_class,noun,noun_class,all_nouns,"
               "all_noun_classes\n")
AVA_IDS = set(range(1, 81))
# reader: (file text with the hostile value, read, the values it rejects)
READERS = {
    "video_info_seconds": (
        "video,seconds,numFrame,fps\nv1,{},100,30\n",
        video_info.read_video_info_csv, HOSTILE),
    "video_info_frames": (
        "video,seconds,numFrame\nv1,10,{}\n",
        video_info.read_video_info_csv, HOSTILE),
    "ava_box": (
        "vid1,0902,{},0.1,0.5,0.5,12,0\n",
        lambda p: ava.read_ava_csv(p, AVA_IDS), HOSTILE),
    "ava_timestamp": (
        "vid1,{},0.1,0.1,0.5,0.5,12,0\n",
        lambda p: ava.read_ava_csv(p, AVA_IDS), HOSTILE),
    "ava_eval_box": (
        "vid1,0902,{},0.1,0.5,0.5,12\n",
        lambda p: ava_io.read_box_csv(p, "groundtruth"), HOSTILE),
    "ava_eval_score": (
        "vid1,0902,0.1,0.1,0.5,0.5,12,{}\n",
        lambda p: ava_io.read_box_csv(p, "detections"), HOSTILE),
    "ava_exclusions": (
        "vid1,{}\n", ava_io.read_exclusions, HOSTILE),
    "video_scores": (
        "video_id,s0,s1\nv1,{},0.2\n", video_accuracy.read_scores, HOSTILE),
    # Infinite scores rank first, as in the official Charades code.
    "charades_submission": (
        "AB12 {} " + " ".join(["0.1"] * 156) + "\n",
        charades_map.read_submission,
        {k: HOSTILE[k] for k in ("nul", "long_field", "nan")}),
    "epic_timestamp": (
        EPIC_HEADER + "P01_01_0,P01,P01_01,00:00:01.089,00:00:{},"
        "00:00:03.370,14,202,open door,open,3,door,3,['door'],[3]\n",
        lambda p: epic_io.read_epic_ground_truth(p, task="verb"), HOSTILE),
}
CASES = [(reader, value) for reader, (_, _, values) in sorted(READERS.items())
         for value in sorted(values)]


@pytest.mark.parametrize("reader,value", CASES)
def test_hostile_csv_is_a_clear_error(tmp_path, reader, value):
    template, read, values = READERS[reader]
    path = tmp_path / f"{reader}.csv"
    path.write_text(template.format(values[value]), newline="")
    with pytest.raises(errors.DataError) as e:
        read(str(path))
    assert str(path) in str(e.value)
