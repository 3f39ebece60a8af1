"""`check_docstring_examples`: a module's docstring examples run as written."""

import doctest
import io


def check_docstring_examples(module):
    """Runs every `>>>` example in `module`'s docstrings; raises on failure.

    Args:
        module: an imported module.

    Raises:
        AssertionError: the module has no example, or an example's output
            differs from the one written (the doctest report is the
            message).

    Example:

    >>> from tfaction.layers import fused_batch_normalization
    >>> check_docstring_examples(fused_batch_normalization)
    """
    tests = doctest.DocTestFinder().find(module)
    if not any(t.examples for t in tests):
        raise AssertionError(f"{module.__name__}: no docstring examples")
    report = io.StringIO()
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test, out=report.write)
    failed = runner.summarize(verbose=False).failed
    if failed:
        raise AssertionError(f"{module.__name__}: {failed} docstring "
                             f"example(s) failed:\n{report.getvalue()}")
