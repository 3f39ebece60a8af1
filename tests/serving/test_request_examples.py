"""The README's REST and gRPC request examples are the clients' own.

`python -m export.request_examples` renders, for each family, the command,
the REST body its client writes and the gRPC `PredictRequest` it sends, on
a small fixed video. The README must hold exactly that text between the
markers `request_examples.BEGIN` and `END` (regenerated here and compared).
The examples themselves are checked: each REST body carries the same arrays
as the gRPC request (dtypes included), for the same signature, and each
command's flags are flags of its client.
"""

import json
import shlex

import numpy as np
import pytest
from absl import flags

from export import request_examples
from export import serving_request
from tests.serving import serving_helpers as helpers

README = helpers.REPO_ROOT / "README.md"


@pytest.fixture(scope="module")
def examples():
    return request_examples.examples()


def test_readme_shows_the_generated_examples():
    section = request_examples.readme_section(README.read_text())
    assert section is not None, (
        f"README.md has no request examples between {request_examples.BEGIN}"
        f" and {request_examples.END}: paste the output of `python -m "
        "export.request_examples` there")
    assert section == request_examples.markdown(), (
        "README.md's request examples differ from what the clients make "
        "now: replace them with the output of `python -m "
        "export.request_examples`")


def test_every_family_has_an_example(examples):
    assert [e["model_name"] for e in examples] == [
        "actionformer", "actionvlad", "action_transformer", "carl",
        "adafocus"]
    assert [e["signature_name"] for e in examples] == [
        "serving_default", "serving_default", "serve_jpeg", "serve_jpeg",
        "serve_jpeg"]


def test_rest_body_and_grpc_request_carry_the_same_inputs(examples):
    for example in examples:
        grpc = serving_request.request_arrays(example["grpc"])
        assert example["grpc"].model_spec.name == example["model_name"]
        assert (example["grpc"].model_spec.signature_name ==
                example["rest"]["signature_name"])
        body = json.loads(json.dumps(example["rest"]))
        dtypes = {k: "string" if v.dtype == object else v.dtype.name
                  for k, v in grpc.items()}
        rest = helpers.rest_arrays(body, dtypes)
        assert sorted(rest) == sorted(grpc), example["title"]
        for name, value in grpc.items():
            assert rest[name].shape == value.shape, (example["title"], name)
            np.testing.assert_array_equal(rest[name], value)
    # The frames are the two example JPEGs (a dark and a light frame).
    frames = serving_request.request_arrays(examples[1]["grpc"])["frames"]
    np.testing.assert_array_equal(frames, request_examples.example_frames())
    assert frames[0, 0] != frames[0, 1]


def test_commands_use_their_clients_flags(examples):
    for example in examples:
        words = shlex.split(example["command"])
        assert words[:3] == ["python", "-m", example["client"]]
        argv = [*words[3:], "--rest_body=request.json",
                "--grpc=localhost:8500",
                f"--model_name={example['model_name']}"]
        client = __import__(example["client"], fromlist=["_"])
        if hasattr(client, "define_flags"):
            helpers.command_flags(client, argv)  # unknown flags raise
        else:
            # export.actionformer_request defines its flags on import.
            names = [a[2:].split("=")[0] for a in argv]
            assert all(n in flags.FLAGS for n in names), names


def test_readme_section_is_found_between_the_markers():
    body = request_examples.markdown()
    text = f"# Title\n\nintro\n\n{body}\n## Next\n"
    assert request_examples.readme_section(text) == body
    assert request_examples.readme_section("# no examples\n") is None
