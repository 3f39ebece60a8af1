"""One subset of a conversion as an Apache Beam pipeline.

The pipeline, one video per element:

```
(index, item) -Convert-> (index, j, record) -Place-> (shard, (pos, record))
                 |                 ^                 -GroupByKey-> WriteShard
                 |                 offsets (records before each index)
                 +-> one JSON outcome line per item -> WriteToText (staging)
```

* `Convert` calls the converter's own `convert_one` (the function the local
  path maps), so both paths build the same records. A `DataError` does not
  fail the pipeline: it becomes the item's outcome, and the driver applies
  the `--skip_corrupt` policy to the outcomes in input order, so it raises the
  same first error the local path raises, or skips the same videos. Skipped
  videos are counted with the Beam counter `tfaction.convert/skipped_videos`;
  the driver checks the count against the outcomes it read back. Any other
  exception fails the pipeline. A video's records are taken from
  `convert_one`'s result one at a time (it may assemble them lazily), and
  its outcome line is emitted after them.
* `Place` numbers the records as the local writer would (input order, the
  skipped items leaving no gap) and sends record `p` to shard
  `p % num_shards`. With a `screen` (a check of each item against the items
  before it, see `runners`), `Offsets` runs a copy of it over the converted
  items' extras in input order and leaves the rejected items out of the
  numbering, and `Place` drops their records; the driver runs the screen
  itself over the outcomes it reads back, so it makes the same decisions
  and reports the same errors as the local path.
* `WriteShard` writes each shard in position order. Beam's `WriteToTFRecord`
  chooses shards at random and keeps no order, which would make the files
  differ from the local path's (and their counts from the round-robin counts
  that verification and dataset_info.json use), so the shard is written here
  with TensorFlow's TFRecord writer, the local path's: a temporary name, then
  a rename, so a retried bundle rewrites the same file. Its records are
  spilled to a local temporary file while they arrive, so a worker holds one
  shard's positions in memory, not its records.

The driver then finds the shards in the staging folder of
`output.StagedOutput`, which verifies and commits them as on the local path.
"""

import copy
import dataclasses
import json
import os
import tempfile

import apache_beam as beam
from apache_beam.metrics import metric
from apache_beam.options import pipeline_options
from apache_beam.runners import runner as beam_runner

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data.formats import common

SKIP_COUNTER = ("tfaction.convert", "skipped_videos")
_OUTCOMES = "outcomes"
_COUNTS = "counts"
_ERROR_FIELDS = ("message", "path", "line", "video_id", "key")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What converting one item gave, as the driver reads it back.

    Attributes:
        num_records: records written for it.
        extra: its `VideoRecords.extra` (after JSON).
        error: the `DataError` it raised, or None.
    """
    num_records: int = 0
    extra: object = None
    error: errors.DataError = None


def _error_fields(error):
    return {"type": type(error).__name__,
            **{name: getattr(error, name) for name in _ERROR_FIELDS}}


def _rebuild_error(fields):
    cls = getattr(errors, fields["type"], None)
    if not (isinstance(cls, type) and issubclass(cls, errors.DataError)):
        cls = errors.DataError
    return cls(fields["message"],
               **{name: fields[name] for name in _ERROR_FIELDS[1:]})


class _Convert(beam.DoFn):
    """(index, item) -> records (main) + outcome line + (index, count,
    extra); the extra only when a screen needs it."""

    def __init__(self, convert_one, skip_corrupt, keep_extra):
        self._convert_one = convert_one
        self._skip_corrupt = skip_corrupt
        self._keep_extra = keep_extra
        self._skipped = metric.Metrics.counter(*SKIP_COUNTER)

    def process(self, element):
        index, item = element
        try:
            result = self._convert_one(item)
        except errors.DataError as e:
            if self._skip_corrupt and common.is_skippable(e):
                self._skipped.inc()
            yield beam.pvalue.TaggedOutput(_OUTCOMES, json.dumps(
                {"index": index, "error": _error_fields(e)}))
            return
        # Through JSON before the screen sees it, as in the driver.
        extra = json.loads(json.dumps(result.extra, allow_nan=False))
        count = 0
        for count, record in enumerate(result.records, 1):
            yield index, count - 1, record
        yield beam.pvalue.TaggedOutput(_OUTCOMES, json.dumps(
            {"index": index, "num_records": count, "extra": extra}))
        yield beam.pvalue.TaggedOutput(_COUNTS, (
            index, count, extra if self._keep_extra else None))


def _offsets(counts, screen):
    """{index: records of all lower indices} of the items `screen` admits,
    from [(index, count, extra)] of the converted items."""
    # A fresh copy each time: a retried bundle starts from the same state.
    screen = copy.deepcopy(screen)
    offsets, total = {}, 0
    for index, count, extra in sorted(counts, key=lambda c: c[0]):
        if screen is not None:
            try:
                screen.check(extra)
            except errors.DataError:
                continue
        offsets[index] = total
        total += count
    return offsets


def _place(element, offsets, num_shards):
    """[(shard, (position, record))], or [] for a screened-out item."""
    index, j, record = element
    if index not in offsets:
        return []
    position = offsets[index] + j
    return [(position % num_shards, (position, record))]


class _WriteShard(beam.DoFn):
    """(shard, [(position, record)]) -> the shard file, records by position."""

    def __init__(self, paths):
        self._paths = list(paths)

    def process(self, element):
        import tensorflow as tf

        shard, placed = element
        path = self._paths[shard]
        with tempfile.TemporaryFile() as spill:
            index = []  # (position, offset, length) of each spilled record
            for position, record in placed:
                index.append((position, spill.tell(), len(record)))
                spill.write(record)
            index.sort()
            temp = filesystems.temp_path_for(path)
            try:
                with tf.io.TFRecordWriter(temp) as writer:
                    for _, offset, length in index:
                        spill.seek(offset)
                        writer.write(spill.read(length))
                filesystems.commit(temp, path)
            except BaseException:
                filesystems.remove_quietly(temp)
                raise
        yield shard, len(index)


def _pipeline(root, items, convert_one, skip_corrupt, shard_paths,
              outcomes_prefix, screen):
    converted = (
        root
        | "Videos" >> beam.Create(list(enumerate(items)))
        | "Convert" >> beam.ParDo(_Convert(convert_one, skip_corrupt,
                                           screen is not None))
        .with_outputs(_OUTCOMES, _COUNTS, main="records"))
    offsets = (converted[_COUNTS]
               | "AllCounts" >> beam.combiners.ToList()
               | "Offsets" >> beam.Map(_offsets, screen))
    _ = (converted.records
         | "Place" >> beam.FlatMap(_place, beam.pvalue.AsSingleton(offsets),
                                   len(shard_paths))
         | "ByShard" >> beam.GroupByKey()
         | "WriteShard" >> beam.ParDo(_WriteShard(shard_paths)))
    _ = (converted[_OUTCOMES]
         | "WriteOutcomes" >> beam.io.WriteToText(
             outcomes_prefix, file_name_suffix=".jsonl"))


def _read_outcomes(outcomes_prefix, num_items):
    lines = {}
    for path in filesystems.glob(outcomes_prefix + "*.jsonl"):
        for text in filesystems.read_text(path).splitlines():
            entry = json.loads(text)
            lines[entry["index"]] = entry
        filesystems.remove_quietly(path)
    if sorted(lines) != list(range(num_items)):
        missing = sorted(set(range(num_items)) - set(lines))
        raise RuntimeError(f"the Beam pipeline reported no outcome for "
                           f"{len(missing)} item(s) (first: {missing[:5]})")
    return [Outcome(error=_rebuild_error(e["error"])) if "error" in e
            else Outcome(e["num_records"], e["extra"])
            for e in (lines[i] for i in range(num_items))]


def _skip_count(result):
    """The skip counter's value: committed, or attempted where the runner
    reports no committed value (`None`). The caller checks it against the
    skips the outcomes list, so a runner that loses the counter fails the
    conversion instead of passing silently."""
    counters = result.metrics().query(
        metric.MetricsFilter().with_namespace(SKIP_COUNTER[0])
        .with_name(SKIP_COUNTER[1]))["counters"]
    return sum((c.committed if c.committed is not None else c.attempted)
               or 0 for c in counters)


def _screened(screen, outcome):
    """`outcome`, or the screen's rejection of it (no records written)."""
    if outcome.error is not None:
        return outcome
    try:
        screen.check(outcome.extra)
    except errors.DataError as e:
        return Outcome(error=e)
    return outcome


def run(out, subset, convert_one, items, *, num_shards, skip_corrupt,
        runner, screen=None):
    """Converts `items` with a Beam pipeline into the staged shards of
    `subset`.

    Args:
        out: an open `output.StagedOutput`; its staging folder must be
            reachable from the Beam workers (a shared or remote path for a
            distributed runner).
        subset: shard prefix.
        convert_one: `fn(item) -> runners.VideoRecords`.
        items: list of inputs (serialized into the pipeline).
        num_shards: shards of this subset.
        skip_corrupt: whether skippable errors are counted as skips.
        runner: a Beam `runners.Runner`.
        screen: optional `check(extra)` object (see `runners`); the
            pipeline runs a copy of it, and this function the object itself
            over the outcomes in input order (so its state moves on).

    Returns:
        One `Outcome` per item, in input order; an item the screen rejected
        has the screen's error.

    Raises:
        RuntimeError: the pipeline did not finish, or its outcomes or skip
            count are incomplete; any non-`DataError` of `convert_one`
            (as the runner reports it).

    Example:

    ```python
    outcomes = run(out, "train", convert_one, items, num_shards=2,
                   skip_corrupt=True, runner=runners.Runner("DirectRunner"))
    ```
    """
    shards = out.staged_shards(subset, num_shards)
    outcomes_prefix = os.path.join(out.staging, f".outcomes-{subset}")
    if items:
        options = pipeline_options.PipelineOptions(
            [f"--runner={runner.name}", *runner.beam_args])
        pipeline = beam.Pipeline(options=options)
        _pipeline(pipeline, items, convert_one, skip_corrupt, shards.paths,
                  outcomes_prefix, screen)
        result = pipeline.run()
        state = result.wait_until_finish()
        if state != beam_runner.PipelineState.DONE:
            raise RuntimeError(f"the Beam pipeline of subset {subset!r} "
                               f"ended in state {state}")
        outcomes = _read_outcomes(outcomes_prefix, len(items))
        skips = sum(o.error is not None and common.is_skippable(o.error)
                    for o in outcomes) if skip_corrupt else 0
        counted = _skip_count(result)
        if counted != skips:
            raise RuntimeError(
                f"Beam counter {'/'.join(SKIP_COUNTER)} says {counted} "
                f"skipped video(s), the outcomes {skips}")
        if screen is not None:
            outcomes = [_screened(screen, o) for o in outcomes]
    else:
        outcomes = []
    shards.num_written = sum(o.num_records for o in outcomes)
    # GroupByKey makes no group for a shard without records; the local
    # writer leaves such a shard as an empty file.
    for path in shards.paths:
        if not filesystems.exists(path):
            filesystems.atomic_write_bytes(path, b"")
    return outcomes
