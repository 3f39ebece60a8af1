"""Apache Beam execution of the converters (extra `tfaction[beam]`).

`subset_pipeline` runs the conversion of one subset as a Beam pipeline;
`tfaction.data.formats.runners.write_subset` chooses it for
`--runner=DirectRunner|FlinkRunner|SparkRunner|DataflowRunner`.
"""

import importlib

from tfaction import errors


def require_beam(runner_name):
    """Imports apache_beam, or says how to install it.

    Args:
        runner_name: the `--runner` asked for (named in the error).

    Returns:
        The `apache_beam` module.

    Raises:
        MissingDependencyError: apache-beam is not installed.

    Example:

    >>> require_beam("DirectRunner").__name__  # doctest: +SKIP
    'apache_beam'
    """
    try:
        return importlib.import_module("apache_beam")
    except ImportError as e:
        raise errors.MissingDependencyError(
            f"--runner={runner_name} needs apache-beam, which is not "
            f"installed: pip install 'tfaction[beam]' ({e})") from e
