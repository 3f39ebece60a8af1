"""Where a conversion runs: in this process (default) or on Apache Beam.

Every converter turns a list of videos into records through one function of
one video, `convert_one(item) -> VideoRecords`, and hands it with the list to
`write_subset`. That is the only place that decides how the videos are
mapped:

* `LOCAL` (`--runner=local`, the default): threads of this process
  (`--num_workers`), records written round-robin into the staged shards
  (`common.Skipper.map`, `output.StagedOutput.shard_writer`).
* A Beam runner (`--runner=DirectRunner|FlinkRunner|SparkRunner|
  DataflowRunner`, extra `tfaction[beam]`, further options in
  `--beam_options`): one Beam pipeline per subset, one video per element
  (`tfaction.data.beam.subset_pipeline`). It places every record in the shard
  and at the position the local path gives it, so both write byte-identical
  shards, and the same staging, verification, `dataset_info.json` and atomic
  rename follow.

What `convert_one` returns besides its records (`VideoRecords.extra`, e.g. a
video's derived duration) goes through JSON on both paths, so a converter
sees the same values whichever runner ran it.

A check that needs the items before an item (a name already used, a label
already named otherwise) is a `screen`: an object whose `check(extra)` is
called on the converted items' extras in input order and raises a
`DataError` to reject one (its records are not written; the error goes
through the `--skip_corrupt` policy like a conversion error). The local path
calls it as it writes; the Beam path runs a copy of it inside the pipeline to
place the records, and the object itself in the driver, which makes the same
decisions (the check is deterministic) and keeps its state for the next
subset.

Example:

```python
runner = runners.from_flags("DirectRunner", "--direct_num_workers=2")
with output.StagedOutput(output_dir) as out:
    done = runners.write_subset(out, "train", convert_one, items, skipper,
                                num_shards=4, runner=runner)
    out.commit({"format": "videos", "skipped": skipper.summary()})
```
"""

import dataclasses
import json
import shlex

from tfaction import errors

LOCAL_NAME = "local"
BEAM_RUNNERS = ("DirectRunner", "FlinkRunner", "SparkRunner",
                "DataflowRunner")
RUNNER_NAMES = (LOCAL_NAME,) + BEAM_RUNNERS
BEAM_REQUIREMENT = "pip install 'tfaction[beam]'"


@dataclasses.dataclass(frozen=True)
class VideoRecords:
    """What converting one video (or event, list entry) gave.

    Attributes:
        records: the serialized records, in the order they are written:
            a tuple, or an iterable read once (e.g. records assembled from
            a spill file as they are written, so a video's records need not
            all be in memory). Iterating it must not raise a `DataError`:
            every check of the item happens before `convert_one` returns.
        extra: JSON-ready facts the converter's summary needs (None if
            none); returned by `write_subset` after a JSON round trip.
    """
    records: tuple
    extra: object = None


def one_record(record, extra=None):
    """`VideoRecords` of a single serialized record.

    Example:

    >>> one_record(b"abc").records
    (b'abc',)
    """
    return VideoRecords((record,), extra)


@dataclasses.dataclass(frozen=True)
class Runner:
    """A runner choice: `local`, or a Beam runner and its pipeline options.

    Attributes:
        name: one of `RUNNER_NAMES`.
        beam_args: further Beam pipeline options (`--key=value` strings).
    """
    name: str = LOCAL_NAME
    beam_args: tuple = ()

    @property
    def is_local(self):
        """Whether videos are converted in this process."""
        return self.name == LOCAL_NAME


LOCAL = Runner()


def from_flags(runner, beam_options=None):
    """The `Runner` of `--runner` and `--beam_options`.

    Args:
        runner: `local` or a Beam runner name (None: local).
        beam_options: Beam pipeline options as one command-line string,
            e.g. "--direct_num_workers=2 --direct_running_mode=
            multi_processing"; only with a Beam runner.

    Returns:
        A `Runner`.

    Raises:
        ConfigError: unknown runner, Beam options with the local runner, or
            a `--runner` among the Beam options.

    Example:

    >>> from_flags("DirectRunner", "--direct_num_workers=2").beam_args
    ('--direct_num_workers=2',)
    """
    name = runner or LOCAL_NAME
    if name not in RUNNER_NAMES:
        raise errors.ConfigError(f"--runner={name} is not one of "
                                 f"{', '.join(RUNNER_NAMES)}")
    args = tuple(shlex.split(beam_options or ""))
    if args and name == LOCAL_NAME:
        raise errors.ConfigError(
            "--beam_options needs a Beam --runner (one of "
            f"{', '.join(BEAM_RUNNERS)}); the local runner takes none")
    if any(a == "--runner" or a.startswith("--runner=") for a in args):
        raise errors.ConfigError("--beam_options must not set --runner; "
                                 "use tfaction's --runner flag")
    return Runner(name, args)


def json_roundtrip(value):
    """`value` as it reads back from JSON (tuples become lists).

    Raises:
        TypeError: `value` holds something JSON cannot represent.
    """
    return json.loads(json.dumps(value, allow_nan=False))


def write_subset(out, subset, convert_one, items, skipper, *, num_shards,
                 num_workers=1, runner=None, on_skip=None, screen=None):
    """Converts `items` and writes their records as the staged shards of
    `subset`, under the `--skip_corrupt` policy of `skipper`.

    Records go round-robin over the shards in input order (the skipped
    items leave no gap) on every runner.

    Args:
        out: an open `output.StagedOutput`.
        subset: shard prefix.
        convert_one: `fn(item) -> VideoRecords`; a `DataError` naming a
            video is skipped under `--skip_corrupt`. With a Beam runner it
            is serialized to the workers with everything it refers to.
        items: list of inputs.
        skipper: a `common.Skipper` (it records the skipped items).
        num_shards: shards of this subset.
        num_workers: local threads (the local runner only; a Beam runner's
            parallelism comes from its options).
        runner: a `Runner` (None: local).
        on_skip: optional `fn(item, error)` after each skip.
        screen: optional object whose `check(extra)` rejects a converted
            item by raising a `DataError` (see the module doc); called in
            input order on the items `convert_one` converted. With a Beam
            runner it is serialized to the pipeline too.

    Returns:
        `[(item, extra)]` of the converted items, in input order.

    Raises:
        The first error of `convert_one` in input order that may not be
        skipped; ConfigError: `num_workers` > 1 with a Beam runner;
        MissingDependencyError: apache-beam is not installed.
    """
    runner = runner or LOCAL
    items = list(items)
    if runner.is_local:
        done = []
        with out.shard_writer(subset, num_shards) as writer:
            for item, result in skipper.map(convert_one, items, subset,
                                            num_workers, on_skip=on_skip):
                extra = json_roundtrip(result.extra)
                if screen is not None:
                    try:
                        screen.check(extra)
                    except errors.DataError as e:
                        _skip(skipper, subset, on_skip, item, e)
                        continue
                for record in result.records:
                    writer.write(record)
                done.append((item, extra))
        return done
    if num_workers > 1:
        raise errors.ConfigError(
            f"--num_workers={num_workers} sets local threads; with "
            f"--runner={runner.name} set the parallelism in --beam_options "
            "(e.g. --direct_num_workers=2)")
    from tfaction.data import beam
    beam.require_beam(runner.name)
    from tfaction.data.beam import subset_pipeline
    outcomes = subset_pipeline.run(out, subset, convert_one, items,
                                   num_shards=num_shards,
                                   skip_corrupt=skipper.skip_corrupt,
                                   runner=runner, screen=screen)
    done = []
    for item, outcome in zip(items, outcomes):
        if outcome.error is None:
            done.append((item, outcome.extra))
        else:
            _skip(skipper, subset, on_skip, item, outcome.error)
    return done


def _skip(skipper, subset, on_skip, item, error):
    skipper.skip_or_raise(error, subset)
    if on_skip is not None:
        on_skip(item, error)
