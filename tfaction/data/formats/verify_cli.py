"""`--format=verify`: re-reads a converted folder and checks every shard.

Each shard is read back and compared with `dataset_info.json`
(`output.verify_output`); the result maps subset -> records.

Example:

    python -m tfaction.data.convert --format=verify --input=out/thumos
"""

from tfaction.data.formats import registry


def _convert(options):
    from tfaction.data.formats import output

    return output.verify_output(options["input"])


def _report(result, options):
    del options  # the summary needs only the counts
    return [f"verified {subset}: {count} record(s)"
            for subset, count in result.items()]


registry.register_format(
    "verify",
    summary="re-read an output folder and check every shard against its "
    "dataset_info.json",
    flags=[registry.flag("string", "input", None,
                         "An output folder of this converter.",
                         required=True)],
    convert=_convert, writes_output=False, report=_report)
