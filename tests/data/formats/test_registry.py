"""The converter's format registry: flags per format, clear flag errors.

Every test defines flags on its own `FlagValues` (never absl's global
`FLAGS`), so nothing here leaks into other tests.
"""

import pytest
from absl import flags

from tfaction import errors
from tfaction.data.formats import registry
from tfaction.data.formats import runners


def _toy_registry():
    """Two formats sharing `--size`, as a format module would declare them."""
    formats = registry.Registry()

    def convert_lines(options):
        return {"lines": options["input"], "size": options["size"],
                "output_dir": options["output_dir"],
                "num_shards": options["num_shards"]}

    formats.register(
        "toy_lines", summary="a text file -> toy records",
        flags=[registry.flag("string", "input", None, "a text file",
                             required=True),
               registry.flag("integer", "size", 3, "line length",
                             lower_bound=1),
               registry.flag("bool", "upper", False, "upper-case lines")],
        convert=convert_lines)
    formats.register(
        "toy_check", summary="checks a toy output",
        flags=[registry.flag("string", "input", None, "a toy output",
                             required=True),
               registry.flag("integer", "size", 3, "expected length",
                             lower_bound=1)],
        convert=lambda options: options, writes_output=False)
    return formats


def _parse(formats, *argv):
    flag_values = flags.FlagValues()
    formats.define_flags(flag_values)
    flag_values(["convert", *argv])
    return flag_values


def test_a_format_registered_here_converts_with_its_flags():
    formats = _toy_registry()
    flag_values = _parse(formats, "--input=a.txt", "--size=5",
                         "--output_dir=out", "--num_shards=2")
    options = formats.options("toy_lines", flag_values)
    assert formats.get("toy_lines").convert(options) == {
        "lines": "a.txt", "size": 5, "output_dir": "out", "num_shards": 2}
    assert registry.writer_options(options) == {
        "num_shards": 2, "skip_corrupt": False, "verify": True,
        "num_workers": 1, "runner": runners.LOCAL}
    # the shared flag's help names each format's meaning
    assert flag_values["size"].help == (
        "[toy_lines] line length [toy_check] expected length")
    assert flag_values["upper"].help == "[toy_lines] upper-case lines"


def test_unknown_or_missing_format_lists_the_registered_ones():
    formats = _toy_registry()
    flag_values = _parse(formats, "--input=a.txt")
    with pytest.raises(errors.ConfigError,
                       match="unknown --format=nope; registered formats: "
                             "toy_check, toy_lines"):
        formats.options("nope", flag_values)
    with pytest.raises(errors.ConfigError, match="--format is required"):
        formats.get(None)


def test_a_flag_of_another_format_is_an_error():
    formats = _toy_registry()
    flag_values = _parse(formats, "--input=out", "--upper")
    with pytest.raises(errors.ConfigError) as info:
        formats.options("toy_check", flag_values)
    assert str(info.value) == (
        "--upper is not a flag of --format=toy_check (it belongs to "
        "toy_lines); --format=toy_check takes --input, --size")
    # a writer flag given to a format that writes nothing
    flag_values = _parse(formats, "--input=out", "--output_dir=x")
    with pytest.raises(errors.ConfigError, match="--output_dir is not a "
                       "flag of --format=toy_check"):
        formats.options("toy_check", flag_values)
    # a shared flag is fine for both formats
    flag_values = _parse(formats, "--input=out", "--size=4")
    assert formats.options("toy_check", flag_values)["size"] == 4


def test_required_flags_are_checked_for_the_chosen_format_only():
    formats = _toy_registry()
    with pytest.raises(errors.ConfigError,
                       match="--input is required for --format=toy_lines"):
        formats.options("toy_lines", _parse(formats, "--output_dir=out"))
    with pytest.raises(errors.ConfigError,
                       match="--output_dir is required for "
                             "--format=toy_lines"):
        formats.options("toy_lines", _parse(formats, "--input=a.txt"))
    assert formats.options("toy_check", _parse(formats, "--input=out")) == {
        "input": "out", "size": 3}


def test_registration_mistakes_are_caught_early():
    formats = _toy_registry()
    with pytest.raises(ValueError, match="already registered"):
        formats.register("toy_lines", summary="", convert=print)
    with pytest.raises(ValueError, match="same kind, default and options"):
        formats.register("toy_other", summary="", convert=print,
                         flags=[registry.flag("integer", "size", 8, "x")])
    with pytest.raises(ValueError, match="a writer flag"):
        formats.register("toy_other", summary="", convert=print,
                         flags=[registry.flag("string", "output_dir", None,
                                              "x")])
    with pytest.raises(ValueError, match="kind 'text' is not one of"):
        registry.flag("text", "name", None, "x")
    formats.define_flags(flags.FlagValues())
    with pytest.raises(ValueError, match="register formats first"):
        formats.register("toy_late", summary="", convert=print)


def test_builtin_formats_and_their_flags():
    formats = registry.load_builtin_formats()
    assert formats.names() == ["activitynet_features", "actnet_frames",
                               "ava", "charades_frames",
                               "ego4d_mq", "fcvid_frames", "finegym",
                               "hmdb51_frames",
                               "minik_frames", "tcc", "verify", "videos"]
    assert formats.get("verify").flag_names() == ["input"]
    videos = formats.get("videos").flag_names()
    assert "flow" in videos and "output_dir" in videos
    assert "feature_stride" not in videos
