"""tfaction: video action understanding for TensorFlow 2 / Keras 3."""

import pathlib
import re

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"',
                    (HERE / "tfaction" / "__init__.py").read_text()).group(1)

# One pinned, tested set (DESIGN.md §1). TF 2.17 is the newest TensorFlow whose
# ABI tensorflow-io's native file-system plugins load against; it needs NumPy 1.x,
# and OpenCV wheels from 4.12 on need NumPy 2.
INSTALL_REQUIRES = [
    "tensorflow==2.17.1",
    "keras==3.10.0",
    "tensorflow-io==0.37.1",
    "numpy>=1.26,<2",
    "scikit-learn>=1.5",
    "absl-py>=2.1",
    "ml-collections>=1.0",
    "opencv-contrib-python-headless==4.11.0.86",
    "av>=14,<17",
]

# `python -m tfaction.data.convert --runner=DirectRunner|FlinkRunner|
# SparkRunner|DataflowRunner`. 2.77 resolves next to TF 2.17: it accepts
# TensorFlow's protobuf < 5 and NumPy 1.26 (pip keeps both when tensorflow is
# in the same resolution, as it is here).
BEAM = "apache-beam==2.77.0"

EXTRAS_REQUIRE = {
    # Writing TF-Serving warm-up records (PredictionLog) and gRPC examples.
    "serving": ["tensorflow-serving-api==2.17.1"],
    # Converting datasets on Apache Beam runners.
    "beam": [BEAM],
    # moto[server]: the S3 server of tests/integration/test_remote_storage.py.
    # pytest-xdist: `make test` runs the suite in two processes (most of a
    # test's time is single-threaded Keras building and tf.function tracing).
    # apache-beam: the converters' DirectRunner tests.
    "test": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist==3.8.0",
             "moto[server]==5.2.6", BEAM],
}

# The repository's data/ (class lists, split lists, label maps of the public
# benchmarks) ships inside the wheel as tfaction/public_data/, where
# tfaction.data.public_metadata finds it outside a source checkout. The
# patterns stop at the metadata's own depth: converted records that recipes
# write under data/<dataset>/records/ never match.
PUBLIC_DATA = "tfaction.public_data"
PUBLIC_DATA_FILES = ["README.md", "*/README.md", "*/*.txt", "*/*.csv",
                     "*/*.json", "*/*.tsv", "hmdb51/train_test_lists/*.txt"]

setup(
    name="tfaction",
    version=VERSION,
    description=("Video action understanding for TensorFlow 2 / Keras 3: "
                 "reusable layers, distributed training recipes and "
                 "TF-Serving exports."),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tfaction", "tfaction.*"]) + [PUBLIC_DATA],
    package_dir={PUBLIC_DATA: "data"},
    package_data={PUBLIC_DATA: PUBLIC_DATA_FILES},
    python_requires=">=3.10,<3.13",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
