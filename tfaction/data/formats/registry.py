"""The converter's formats: each declares its flags and its conversion.

`python -m tfaction.data.convert --format=NAME` looks NAME up here. A format
is one module `tfaction/data/formats/<name>_cli.py` that calls
`register_format` at import; `load_builtin_formats` imports every such
module, so adding a dataset format adds one file and touches nothing else.

Flags:

* The writer flags (`--output_dir`, `--num_shards`, `--skip_corrupt`,
  `--verify`, `--num_workers`, `--runner`, `--beam_options`) are shared by
  every format that writes records (`writes_output=True`) and declared
  once, below.
* Every other flag is declared by the formats that use it. Several formats
  may declare the same name (`--fps`, `--frames_root`) with the same type
  and default; `--help` shows each format's own description.
* A flag given on the command line that the chosen format does not declare
  is an error naming the format(s) it belongs to, never silently ignored.
* `required=True` flags are checked for the chosen format only.

Example:

```python
from tfaction.data.formats import registry

def _convert(options):  # options: flag name -> parsed value
    return my_format.convert(options["input"], options["output_dir"],
                             **registry.writer_options(options))

registry.register_format(
    "my_format", summary="my layout -> frames records",
    flags=[registry.flag("string", "input", None, "a list file",
                         required=True)],
    convert=_convert)
```
"""

import dataclasses
import importlib
import pkgutil
import sys

from tfaction import errors

_KINDS = ("string", "float", "integer", "bool", "enum", "list")


@dataclasses.dataclass(frozen=True)
class Flag:
    """One absl flag declaration: `DEFINE_<kind>(name, default, help, ...)`.

    Attributes:
        kind: one of string, float, integer, bool, enum, list.
        name: the flag name without dashes.
        default: the default value.
        help: what the flag means for the declaring format.
        required: the declaring format fails without it.
        options: further `DEFINE_<kind>` keywords as sorted (key, value)
            pairs (`enum_values`, `lower_bound`, ...).
    """
    kind: str
    name: str
    default: object
    help: str
    required: bool = False
    options: tuple = ()


def flag(kind, name, default, help, required=False, **options):
    """Declares a flag of a format.

    Args:
        kind: string, float, integer, bool, enum or list.
        name: flag name without dashes.
        default: default value.
        help: description (for this format).
        required: whether the format needs a value.
        **options: further `absl.flags.DEFINE_<kind>` keywords, e.g.
            `enum_values=[...]`, `lower_bound=1`.

    Returns:
        A `Flag`.

    Example:

    >>> flag("integer", "frame_step", 1, "keep every n-th frame",
    ...      lower_bound=1).options
    (('lower_bound', 1),)
    """
    if kind not in _KINDS:
        raise ValueError(f"flag --{name}: kind {kind!r} is not one of "
                         f"{', '.join(_KINDS)}")
    options = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                           for k, v in options.items()))
    return Flag(kind, name, default, help, required, options)


WRITER_FLAGS = (
    flag("string", "output_dir", None, "Output folder.", required=True),
    flag("integer", "num_shards", 1, "Shards per subset.", lower_bound=1),
    flag("bool", "skip_corrupt", False,
         "Skip bad videos (counted, printed, listed in dataset_info.json) "
         "instead of stopping."),
    flag("bool", "verify", True,
         "Read every written shard back before committing."),
    flag("integer", "num_workers", 1, "Threads reading/decoding videos.",
         lower_bound=1),
    flag("enum", "runner", "local",
         "Where videos are converted: local (this process, --num_workers "
         "threads) or an Apache Beam runner (pip install 'tfaction[beam]'); "
         "the same records either way.",
         enum_values=["local", "DirectRunner", "FlinkRunner", "SparkRunner",
                      "DataflowRunner"]),
    flag("string", "beam_options", None,
         "Further Beam pipeline options for a Beam --runner, as one string "
         "('--direct_num_workers=2 --direct_running_mode=multi_processing', "
         "'--project=p --region=r --temp_location=gs://b/tmp')."),
)


def writer_options(options):
    """The writer flags' values, as keywords of the format converters.

    Args:
        options: the dict a format's `convert` receives.

    Returns:
        `{num_shards, skip_corrupt, verify, num_workers, runner}`, the
        runner a `runners.Runner` made of `--runner` and `--beam_options`.

    Raises:
        ConfigError: `--beam_options` without a Beam runner.

    Example:

    >>> writer_options({"output_dir": "out", "num_shards": 4,
    ...                 "skip_corrupt": False, "verify": True,
    ...                 "num_workers": 2, "fps": 25.0})["num_shards"]
    4
    """
    from tfaction.data.formats import runners

    kept = {f.name: options[f.name] for f in WRITER_FLAGS
            if f.name not in ("output_dir", "runner", "beam_options")}
    kept["runner"] = runners.from_flags(options.get("runner"),
                                        options.get("beam_options"))
    return kept


@dataclasses.dataclass(frozen=True)
class Format:
    """A registered format.

    Attributes:
        name: the `--format` value.
        summary: one line for `--help`.
        flags: its `Flag`s (the writer flags excluded).
        convert: `convert(options) -> result`, `options` mapping each of
            its flag names (and the writer flags') to the parsed value.
        writes_output: whether it takes the writer flags.
        report: `report(result, options) -> lines` printed after a
            success; None: the converter's dataset summary.
    """
    name: str
    summary: str
    flags: tuple
    convert: object
    writes_output: bool = True
    report: object = None

    def flag_names(self):
        """Names of every flag it accepts, the writer flags included."""
        names = [f.name for f in self.flags]
        if self.writes_output:
            names += [f.name for f in WRITER_FLAGS]
        return names


class Registry:
    """Formats by name, and the flags they declare.

    Example:

    ```python
    formats = Registry()
    formats.register("toy", summary="...", flags=[...], convert=fn)
    formats.define_flags(flag_values)
    flag_values(argv)
    options = formats.options("toy", flag_values)
    result = formats.get("toy").convert(options)
    ```
    """

    def __init__(self):
        self._formats = {}
        self._flags_defined = False

    def register(self, name, *, summary, flags=(), convert,
                 writes_output=True, report=None):
        """Adds a format.

        Args:
            name: the `--format` value.
            summary: one line describing input and output.
            flags: its `Flag`s (without the writer flags).
            convert: `convert(options)`, see `Format`.
            writes_output: whether it takes the writer flags.
            report: see `Format`.

        Returns:
            The `Format`.

        Raises:
            ValueError: the name is taken, flags were already defined, a
                flag is a writer flag, or a flag clashes with another
                format's declaration of the same name (kind, default,
                options).
        """
        if name in self._formats:
            raise ValueError(f"format {name!r} is already registered")
        if self._flags_defined:
            raise ValueError(f"format {name!r} registered after the flags "
                             "were defined; register formats first")
        fmt = Format(name, summary, tuple(flags), convert, writes_output,
                     report)
        writer_names = [f.name for f in WRITER_FLAGS]
        for new in fmt.flags:
            if new.name in writer_names:
                raise ValueError(
                    f"format {name!r} declares --{new.name}, a writer flag "
                    "every writing format shares; use writes_output=True")
            for other_name, old in self._declarations(new.name):
                if dataclasses.replace(old, help=new.help,
                                       required=new.required) != new:
                    raise ValueError(
                        f"format {name!r} declares --{new.name} as {new}, "
                        f"format {other_name!r} as {old}: a shared flag "
                        "needs the same kind, default and options")
        self._formats[name] = fmt
        return fmt

    def names(self):
        """Registered format names, sorted."""
        return sorted(self._formats)

    def get(self, name):
        """The format called `name`.

        Raises:
            ConfigError: `name` is None or not registered; the message
                lists the registered formats.
        """
        if name not in self._formats:
            given = ("--format is required" if name is None
                     else f"unknown --format={name}")
            raise errors.ConfigError(
                f"{given}; registered formats: {', '.join(self.names())}")
        return self._formats[name]

    def _declarations(self, flag_name):
        """(format name, Flag) of every format declaring `flag_name`."""
        return [(fmt.name, f) for fmt in self._formats.values()
                for f in fmt.flags if f.name == flag_name]

    def _owners(self, flag_name):
        return [fmt.name for fmt in self._formats.values()
                if flag_name in fmt.flag_names()]

    def _flag_names(self):
        names = {f.name: None for f in WRITER_FLAGS}
        names.update((f.name, None) for fmt in self._formats.values()
                     for f in fmt.flags)
        return list(names)

    def _help(self, flag_name):
        """Each format's description, formats with the same text joined."""
        texts = {}
        for fmt_name, declared in self._declarations(flag_name):
            texts.setdefault(declared.help, []).append(fmt_name)
        return " ".join(f"[{', '.join(names)}] {text}"
                        for text, names in texts.items())

    def define_flags(self, flag_values):
        """Defines every format's flags and the writer flags once each.

        Args:
            flag_values: an `absl.flags.FlagValues`.

        Returns:
            The defined flag names.
        """
        from absl import flags as absl_flags

        writers = [f.name for f in self._formats.values() if f.writes_output]
        for name in self._flag_names():
            declared = next((f for f in WRITER_FLAGS if f.name == name), None)
            if declared is not None:
                text = f"[{', '.join(writers)}] {declared.help}"
            else:
                declared = self._declarations(name)[0][1]
                text = self._help(name)
            define = getattr(absl_flags, f"DEFINE_{declared.kind}")
            define(name=name, default=declared.default, help=text,
                   flag_values=flag_values, **dict(declared.options))
        self._flags_defined = True
        return self._flag_names()

    def options(self, name, flag_values):
        """Checks the parsed flags for format `name` and collects its values.

        Args:
            name: a registered format name.
            flag_values: parsed flags, defined by `define_flags`.

        Returns:
            Flag name -> value for every flag the format accepts.

        Raises:
            ConfigError: unknown format; a flag of other formats was given
                (the message names them); a required flag is missing.
        """
        fmt = self.get(name)
        accepted = fmt.flag_names()
        for flag_name in self._flag_names():
            if flag_name not in accepted and flag_values[flag_name].present:
                raise errors.ConfigError(
                    f"--{flag_name} is not a flag of --format={name} (it "
                    f"belongs to {', '.join(self._owners(flag_name))}); "
                    f"--format={name} takes "
                    f"{', '.join('--' + n for n in accepted)}")
        required = list(fmt.flags)
        if fmt.writes_output:
            required += WRITER_FLAGS
        for flag_name in (f.name for f in required if f.required):
            if flag_values[flag_name].value is None:
                raise errors.ConfigError(
                    f"--{flag_name} is required for --format={name}")
        return {n: flag_values[n].value for n in accepted}


FORMATS = Registry()


def register_format(name, **kwargs):
    """Registers a format of `python -m tfaction.data.convert`.

    Args:
        name: the `--format` value.
        **kwargs: `summary`, `flags`, `convert`, `writes_output`, `report`
            as for `Registry.register`.

    Returns:
        The `Format`.
    """
    return FORMATS.register(name, **kwargs)


def load_builtin_formats():
    """Imports every `tfaction.data.formats.*_cli` module (each registers
    its format); later calls do nothing.

    Returns:
        `FORMATS`.
    """
    package = sys.modules[__package__]
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_cli"):
            importlib.import_module(f"{__package__}.{module.name}")
    return FORMATS
