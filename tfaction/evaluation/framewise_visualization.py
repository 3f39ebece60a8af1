"""Nearest-neighbour alignment of two videos, drawn for a person to check.

The picture behind TCC's and CARL's Kendall's tau (the authors'
`visualize_alignment.py`): every frame of a *query* video is matched to the
nearest frame of a *candidate* video by squared Euclidean distance between
their embeddings (the CARL task stores them L2-normalised), with the rule
of `framewise_alignment.kendalls_tau` (first index on ties). Three files per
pair, drawn with OpenCV and encoded with PyAV (no matplotlib):

* `<query>__<candidate>_plot.png`: query frame index (x) against the
  matched candidate frame index (y), with the diagonal of a uniform-speed
  alignment for reference; with phase labels, colour strips along both axes
  and shaded blocks where query and candidate frames share a phase (a good
  alignment stays inside them);
* `<query>__<candidate>.mp4` (H.264 when PyAV's FFmpeg has an encoder,
  else MPEG-4 part 2): query frame t beside its matched candidate frame,
  with frame numbers, phases and a phase timeline under each;
* `<query>__<candidate>_sheet.png`: the same pairs as a contact sheet.

`alignments.json` in the same folder lists every pair's matches (rows and
source frame numbers), Kendall's tau and phase agreement.

The video and the sheet need the frames: they are read back from the
converted records (`python -m tfaction.data.convert --format=tcc`). The
embeddings hold the labelled frames only (the CARL task drops frames
labelled < 0), so embedding row r of a video is its r-th frame with a label
>= 0 in the record; the labels are checked against the record's.

Command line (after the frame-wise scores):

```
python -m experiments.evaluate --metric=framewise --variant=carl \
    --ground_truth=run/embeddings.npz --predictions=run/embeddings.npz \
    --alignment_dir=run/alignment --alignment_pairs=2 \
    --records='records/*.tfrecord'
```

Video ids come from `embeddings_videos.json` beside the embeddings (written
by the CARL task); without it videos are named by their npz key
(`val_0`, `<dataset>/val_0`) and frames cannot be looked up.

Example:

>>> import numpy as np
>>> q = np.eye(4)
>>> nearest_neighbour_alignment(q, q[[0, 0, 1, 2, 3, 3]]).tolist()
[0, 2, 3, 4]
"""

import dataclasses
import fractions
import os
import re
import tempfile

import av
import cv2
import numpy as np

from tfaction import errors
from tfaction.data import filesystems
from tfaction.data.formats import jpeg
from tfaction.evaluation import framewise_alignment as align
from tfaction.evaluation.framewise_io import SPLITS
from tfaction.evaluation.framewise_io import load_framewise

VIDEOS_FILE = "embeddings_videos.json"  # beside embeddings.npz (CARL task)
DEFAULT_DATASET = "default"
# The authors' animation shows a frame every 50 ms; with a stride the
# playback slows down by the stride so the video keeps its duration.
BASE_FPS = 20
# Encoders tried in order: H.264 where FFmpeg has it, else MPEG-4 part 2
# (always built into PyAV's wheels).
CODECS = ("libx264", "libopenh264", "mpeg4")
DEFAULTS = {"alignment_pairs": "1", "alignment_stride": 1}

# tab10 in BGR: phase k is drawn in PALETTE[k % 10].
PALETTE = np.array([(180, 119, 31), (14, 127, 255), (44, 160, 44),
                    (40, 39, 214), (189, 103, 148), (75, 86, 140),
                    (194, 119, 227), (127, 127, 127), (34, 189, 188),
                    (207, 190, 23)], np.uint8)
UNLABELLED = np.array((215, 215, 215), np.uint8)
_WHITE, _BLACK, _GREY = (255, 255, 255), (0, 0, 0), (150, 150, 150)
_PATH = (150, 50, 10)  # dark blue: the nearest-neighbour path
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE = 0.4
_LINE = 14  # pixel height of one text line at _SCALE


@dataclasses.dataclass(frozen=True, eq=False)
class EmbeddedVideo:
    """One video: its embeddings and, for drawing, labels and frames.

    Args:
        name: video id (shown in captions and file names).
        embs: (T, D) embeddings, one row per scored frame.
        labels: optional (T,) phase per row (-1: unlabelled).
        frames: optional sequence of T BGR uint8 images (anything with
            `len()` and `[row]`, e.g. a list or a lazily decoding reader).
        frame_indices: optional (T,) frame number of each row in the source
            video (default 0..T-1), shown in captions.
        dataset: dataset name of the embeddings file.
        split: "train" or "val".

    Example:

    >>> v = EmbeddedVideo("a", np.zeros((3, 2)))
    >>> v.num_frames, v.frame_number(2)
    (3, 2)
    """

    name: str
    embs: np.ndarray
    labels: np.ndarray = None
    frames: object = None
    frame_indices: np.ndarray = None
    dataset: str = DEFAULT_DATASET
    split: str = "val"

    @property
    def num_frames(self):
        """Number of embedding rows."""
        return len(self.embs)

    def frame_number(self, row):
        """The source-video frame number of embedding row `row`."""
        if self.frame_indices is None:
            return int(row)
        return int(self.frame_indices[row])

    def label(self, row):
        """The phase of row `row`, or None without labels."""
        return None if self.labels is None else int(self.labels[row])


# ------------------------------------------------------------- alignment
def nearest_neighbour_alignment(query_emb, candidate_emb,
                                distance=align.DEFAULT_DISTANCE):
    """Nearest candidate frame of every query frame.

    The rule of Kendall's tau (`framewise_alignment.nearest_neighbours`):
    `argmin` of the `cdist` distance, the first candidate frame on ties.

    Args:
        query_emb: (Tq, D) query embeddings.
        candidate_emb: (Tc, D) candidate embeddings.
        distance: `scipy.spatial.distance.cdist` metric (default squared
            Euclidean, as CARL and TCC).

    Returns:
        int64 (Tq,) candidate row matched to each query row.

    Raises:
        FeatureShapeError: not 2-D, empty, or of different widths.

    Example:

    >>> e = np.eye(3)
    >>> nearest_neighbour_alignment(e, e[::-1]).tolist()
    [2, 1, 0]
    """
    query = np.asarray(query_emb)
    candidate = np.asarray(candidate_emb)
    for what, arr in (("query", query), ("candidate", candidate)):
        if arr.ndim != 2 or not arr.shape[0] or not arr.shape[1]:
            raise errors.FeatureShapeError(
                f"{what} embeddings must be (T > 0, D > 0), got shape "
                f"{arr.shape}", key=what)
    if query.shape[1] != candidate.shape[1]:
        raise errors.FeatureShapeError(
            f"query embeddings have {query.shape[1]} dimensions, candidate "
            f"embeddings {candidate.shape[1]}", key="candidate")
    return align.nearest_neighbours(query, candidate, distance)


def phase_agreement(nns, query_labels, candidate_labels):
    """Fraction of query frames matched to a frame of the same phase.

    Args:
        nns: (Tq,) matched candidate rows.
        query_labels: (Tq,) phases of the query rows.
        candidate_labels: (Tc,) phases of the candidate rows.

    Returns:
        float in [0, 1] over the query rows labelled >= 0 (NaN if none).

    Example:

    >>> phase_agreement(np.array([0, 0, 2]), [0, 1, 1], [0, 1, 1])
    0.6666666666666666
    """
    qlab = np.asarray(query_labels)
    match = np.asarray(candidate_labels)[np.asarray(nns)]
    valid = qlab >= 0
    return float(np.mean(qlab[valid] == match[valid])) if valid.any() \
        else float("nan")


# ------------------------------------------------------------- drawing
def phase_colours(labels):
    """BGR colour of each label (`PALETTE`, `UNLABELLED` for -1).

    Example:

    >>> phase_colours([0, -1]).tolist()
    [[180, 119, 31], [215, 215, 215]]
    """
    labels = np.asarray(labels, np.int64)
    out = PALETTE[np.maximum(labels, 0) % len(PALETTE)]
    out[labels < 0] = UNLABELLED
    return out


def _text(image, text, org, *, max_width=None, colour=_BLACK, align_to="left"):
    """Draws one line, cut with '..' to `max_width` pixels; `org` is the
    baseline point at the left, centre or right end (`align_to`)."""
    text = str(text)

    def width(s):
        return cv2.getTextSize(s, _FONT, _SCALE, 1)[0][0]

    if max_width is not None and width(text) > max_width:
        while text and width(text + "..") > max_width:
            text = text[:-1]
        text += ".."
    x, y = org
    if align_to == "center":
        x -= width(text) // 2
    elif align_to == "right":
        x -= width(text)
    cv2.putText(image, text, (int(x), int(y)), _FONT, _SCALE, colour, 1,
                cv2.LINE_AA)


def _vertical_text(image, text, center, max_height):
    """Draws `text` rotated 90 degrees counter-clockwise around `center`."""
    canvas = np.full((_LINE + 4, max_height, 3), 255, np.uint8)
    _text(canvas, text, (max_height // 2, _LINE - 2), max_width=max_height,
          align_to="center")
    rotated = np.ascontiguousarray(np.rot90(canvas))
    h, w = rotated.shape[:2]
    y0, x0 = center[1] - h // 2, center[0] - w // 2
    image[y0:y0 + h, x0:x0 + w] = np.minimum(image[y0:y0 + h, x0:x0 + w],
                                             rotated)


def _band(labels, length, thickness):
    """A (thickness, length) colour strip of `labels` stretched to
    `length` pixels (pixel i shows row i * T // length)."""
    idx = np.arange(length) * len(labels) // length
    return np.repeat(phase_colours(np.asarray(labels)[idx])[None],
                     thickness, axis=0)


def _ticks(n):
    """Up to 6 integer tick values over 0..n-1."""
    return np.unique(np.linspace(0, n - 1, min(n, 6)).round().astype(int))


def _dashed_line(image, p0, p1, colour, dash=6):
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    steps = max(int(np.hypot(*(p1 - p0)) // dash), 1)
    points = p0 + (p1 - p0) * np.linspace(0, 1, steps + 1)[:, None]
    for a, b in zip(points[:-1:2], points[1::2]):
        cv2.line(image, tuple(int(v) for v in a.round()),
                 tuple(int(v) for v in b.round()), colour, 1, cv2.LINE_AA)


def _check_labels(labels, n, what):
    if labels is None:
        return None
    labels = np.asarray(labels, np.int64)
    if labels.shape != (n,):
        raise errors.FeatureShapeError(
            f"{what} labels must have one entry per frame ({n}), got shape "
            f"{labels.shape}", key=f"{what}_labels")
    return labels


def draw_alignment_plot(nns, num_candidate_frames, *, query_labels=None,
                        candidate_labels=None, query_name="query",
                        candidate_name="candidate", tau=None,
                        size=(640, 600)):
    """The alignment path as an image: query frame vs matched frame.

    Frame t of the query is the point (t, nns[t]), frames at the centres of
    their pixel columns/rows, joined in time order. The dashed grey line is
    the diagonal (both videos at uniform speed). With both label arrays the
    background is shaded where the two frames share a phase, and colour
    strips along the axes give each video's phases (legend on top).

    Args:
        nns: (Tq,) matched candidate row of each query row.
        num_candidate_frames: Tc.
        query_labels, candidate_labels: optional (Tq,) / (Tc,) phases.
        query_name, candidate_name: axis captions.
        tau: optional Kendall's tau shown in the title.
        size: (width, height) in pixels (>= 240 x 240).

    Returns:
        BGR uint8 image of `size`.

    Raises:
        FeatureShapeError: `nns` outside 0..Tc-1, or label arrays of the
            wrong length.

    Example:

    >>> draw_alignment_plot(np.arange(5), 5).shape
    (600, 640, 3)
    """
    nns = np.asarray(nns, np.int64).ravel()
    tq, tc = len(nns), int(num_candidate_frames)
    if not tq or tc < 1 or nns.min() < 0 or nns.max() >= tc:
        raise errors.FeatureShapeError(
            f"need >= 1 query frame matched into 0..{tc - 1}, got "
            f"{tq} frames in [{nns.min(initial=0)}, {nns.max(initial=0)}]",
            key="nns")
    qlab = _check_labels(query_labels, tq, "query")
    clab = _check_labels(candidate_labels, tc, "candidate")
    width, height = (int(v) for v in size)
    if width < 240 or height < 240:
        raise ValueError(f"size must be >= (240, 240), got {size}")
    left, right, top, bottom = 74, 16, 48, 64
    pw, ph = width - left - right, height - top - bottom
    image = np.full((height, width, 3), 255, np.uint8)
    labelled = qlab is not None and clab is not None
    if labelled:
        # Shaded blocks: pixel (x, y) tinted where query row at x and
        # candidate row at y are in the same phase.
        qrow = qlab[np.arange(pw) * tq // pw]
        crow = clab[(ph - 1 - np.arange(ph)) * tc // ph]
        same = (qrow[None, :] == crow[:, None]) & (qrow[None, :] >= 0)
        tint = (0.78 * 255 + 0.22 * phase_colours(
            np.broadcast_to(qrow, (ph, pw)))).astype(np.uint8)
        image[top:top + ph, left:left + pw][same] = tint[same]
    if qlab is not None:
        image[top + ph + 3:top + ph + 11, left:left + pw] = _band(qlab, pw, 8)
    if clab is not None:
        image[top:top + ph, left - 11:left - 3] = np.flip(
            _band(clab, ph, 8), axis=1).transpose(1, 0, 2)

    def x_of(q):
        return left + (q + 0.5) * pw / tq

    def y_of(c):
        return top + ph - (c + 0.5) * ph / tc

    cv2.rectangle(image, (left, top), (left + pw - 1, top + ph - 1), _BLACK)
    _dashed_line(image, (x_of(0), y_of(0)), (x_of(tq - 1), y_of(tc - 1)),
                 _GREY)
    for v in _ticks(tq):
        x = int(round(x_of(v)))
        cv2.line(image, (x, top + ph + 12), (x, top + ph + 16), _BLACK)
        _text(image, v, (x, top + ph + 29), align_to="center")
    for v in _ticks(tc):
        y = int(round(y_of(v)))
        cv2.line(image, (left - 16, y), (left - 12, y), _BLACK)
        _text(image, v, (left - 19, y + 4), align_to="right")
    points = np.stack([x_of(np.arange(tq)), y_of(nns)], axis=1)
    points = points.round().astype(np.int32)
    cv2.polylines(image, [points.reshape(-1, 1, 2)], False, _PATH, 2,
                  cv2.LINE_AA)
    if tq * 4 <= pw:
        for p in points:
            cv2.circle(image, (int(p[0]), int(p[1])), 2, _PATH, -1,
                       cv2.LINE_AA)
    _text(image, f"query frame ({query_name})", (left + pw // 2, height - 12),
          max_width=pw, align_to="center")
    _vertical_text(image, f"matched candidate frame ({candidate_name})",
                   (12, top + ph // 2), ph)
    title = f"{query_name} -> {candidate_name}"
    if tau is not None:
        title += f"   Kendall's tau {tau:.3f}"
    _text(image, title, (8, 16), max_width=width - 16)
    _legend(image, (8, 36), width - 16,
            sorted({int(v) for v in np.concatenate(
                [qlab, clab]) if v >= 0}) if labelled else [])
    return image


def _legend(image, org, max_width, phases):
    """Line keys and phase swatches on one row starting at `org`."""
    x, y = org
    cv2.line(image, (x, y - 4), (x + 18, y - 4), _PATH, 2, cv2.LINE_AA)
    _text(image, "nearest neighbour", (x + 22, y))
    x += 150
    _dashed_line(image, (x, y - 4), (x + 18, y - 4), _GREY)
    _text(image, "diagonal", (x + 22, y))
    x += 90
    for k in phases:
        if x + 70 > org[0] + max_width:
            _text(image, "...", (x, y))
            break
        cv2.rectangle(image, (x, y - 9), (x + 10, y), tuple(
            int(c) for c in phase_colours([k])[0]), -1)
        _text(image, f"phase {k}", (x + 14, y))
        x += 72


def _even(value):
    return max(2, int(value) // 2 * 2)


def _tile(image, height, what):
    """`image` scaled to `height` pixels (even width, aspect kept)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise errors.FeatureShapeError(
            f"{what} frame must be (H, W, 3) uint8 BGR, got "
            f"{image.shape} {image.dtype}", key=what)
    h, w = image.shape[:2]
    size = (_even(w * height / h), int(height))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp)


def _caption(video, row):
    text = f"frame {video.frame_number(row)}"
    label = video.label(row)
    return text if label is None else f"{text}  phase {label}"


def _timeline(video, row, width, thickness=10):
    """The video's phase strip with a marker at `row`."""
    labels = (video.labels if video.labels is not None
              else np.full(video.num_frames, -1))
    strip = np.ascontiguousarray(_band(labels, width, thickness))
    x = int((row + 0.5) * width / video.num_frames)
    cv2.line(strip, (x, 0), (x, thickness - 1), _BLACK, 2)
    return strip


def draw_aligned_pair(query, candidate, t, nn, tile_height=160):
    """One frame of the alignment video: query row t beside candidate row nn.

    Above each frame its video's name, below it the frame number and phase
    and the video's phase timeline with a marker at the shown frame.

    Args:
        query, candidate: `EmbeddedVideo`s with `frames`.
        t: query row.
        nn: candidate row matched to it.
        tile_height: pixel height of each frame (even).

    Returns:
        BGR uint8 image with even height and width.

    Example:

    >>> f = [np.zeros((8, 8, 3), np.uint8)] * 3
    >>> v = EmbeddedVideo("a", np.zeros((3, 2)), frames=f)
    >>> draw_aligned_pair(v, v, 0, 2, tile_height=64).shape
    (116, 132, 3)
    """
    tiles = [_tile(query.frames[t], tile_height, "query"),
             _tile(candidate.frames[nn], tile_height, "candidate")]
    gap = 4
    width = tiles[0].shape[1] + gap + tiles[1].shape[1]
    height = _even(_LINE + 4 + tile_height + _LINE + 6 + 10 + 4)
    image = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for video, row, tile, role in ((query, t, tiles[0], "query"),
                                   (candidate, nn, tiles[1], "candidate")):
        w = tile.shape[1]
        _text(image, f"{role}: {video.name}", (x + 2, _LINE), max_width=w - 4)
        y = _LINE + 4
        image[y:y + tile_height, x:x + w] = tile
        y += tile_height + _LINE
        _text(image, _caption(video, row), (x + 2, y), max_width=w - 4)
        y += 6
        image[y:y + 10, x:x + w] = _timeline(video, row, w)
        x += w + gap
    return image


def sheet_rows(num_frames, stride=1, max_frames=48):
    """Query rows of the contact sheet: every `stride`-th row, thinned
    evenly to at most `max_frames` (first and last kept).

    Example:

    >>> sheet_rows(10, 2).tolist(), sheet_rows(100, 1, 3).tolist()
    ([0, 2, 4, 6, 8], [0, 50, 99])
    """
    rows = np.arange(0, int(num_frames), int(stride))
    if len(rows) > max_frames:
        rows = rows[np.unique(np.linspace(0, len(rows) - 1,
                                          int(max_frames)).round().astype(
            int))]
    return rows


def draw_contact_sheet(query, candidate, nns, rows, thumb_height=96,
                       columns=4):
    """Query frames beside their matches, a grid of (query, match) cells.

    Each cell shows query row t and candidate row nns[t], a phase-coloured
    bar under each, and "t -> nn" in source frame numbers.

    Args:
        query, candidate: `EmbeddedVideo`s with `frames`.
        nns: (Tq,) matched candidate rows.
        rows: query rows to show (`sheet_rows`).
        thumb_height: pixel height of each frame.
        columns: cells per sheet row.

    Returns:
        BGR uint8 image.

    Example:

    >>> f = [np.zeros((8, 8, 3), np.uint8)] * 3
    >>> v = EmbeddedVideo("a", np.zeros((3, 2)), frames=f)
    >>> draw_contact_sheet(v, v, np.arange(3), [0, 1, 2], 32, 2).shape
    (144, 150, 3)
    """
    rows = [int(r) for r in rows]
    if not rows:
        raise ValueError("the contact sheet needs at least one query row")
    cells = []
    for t in rows:
        nn = int(nns[t])
        pair = []
        for video, row, what in ((query, t, "query"),
                                 (candidate, nn, "candidate")):
            tile = _tile(video.frames[row], thumb_height, what)
            label = -1 if video.labels is None else video.label(row)
            bar = np.repeat(phase_colours([label])[None], 5, axis=0)
            pair.append(np.concatenate(
                [tile, np.repeat(bar, tile.shape[1], axis=1)], axis=0))
        body = np.concatenate([pair[0], np.full((pair[0].shape[0], 2, 3),
                                                255, np.uint8), pair[1]],
                              axis=1)
        cell = np.full((body.shape[0] + _LINE + 4, body.shape[1], 3), 255,
                       np.uint8)
        cell[:body.shape[0]] = body
        _text(cell, f"{query.frame_number(t)} -> "
                    f"{candidate.frame_number(nn)}",
              (cell.shape[1] // 2, cell.shape[0] - 5),
              max_width=cell.shape[1], align_to="center")
        cells.append(cell)
    cell_h = max(c.shape[0] for c in cells)
    cell_w = max(c.shape[1] for c in cells)
    ncols = min(int(columns), len(cells))
    nrows = -(-len(cells) // ncols)
    gap, header = 6, _LINE + 8
    sheet = np.full((header + nrows * (cell_h + gap),
                     ncols * (cell_w + gap) + gap, 3), 255, np.uint8)
    _text(sheet, f"query {query.name} | matched frame of {candidate.name}",
          (gap, _LINE), max_width=sheet.shape[1] - 2 * gap)
    for i, cell in enumerate(cells):
        y = header + (i // ncols) * (cell_h + gap)
        x = gap + (i % ncols) * (cell_w + gap)
        sheet[y:y + cell.shape[0], x:x + cell.shape[1]] = cell
    return sheet


# ------------------------------------------------------------- files
def write_png(path, image):
    """Writes a BGR uint8 image as PNG, atomically (local or remote).

    Example:

    >>> import tempfile
    >>> write_png(os.path.join(tempfile.mkdtemp(), "x.png"),
    ...           np.zeros((4, 4, 3), np.uint8))
    """
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f"OpenCV cannot encode a {np.shape(image)} image "
                         "as PNG")
    filesystems.atomic_write_bytes(path, buf.tobytes())


def video_codec(preferred=None):
    """The first encoder of `CODECS` (or `preferred`) that PyAV has.

    Raises:
        MissingDependencyError: none of them (or not `preferred`).

    Example:

    >>> video_codec("mpeg4")
    'mpeg4'
    """
    names = (preferred,) if preferred else CODECS
    for name in names:
        try:
            av.codec.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        return name
    raise errors.MissingDependencyError(
        f"PyAV's FFmpeg has no video encoder among {list(names)}")


def write_mp4(path, images, fps=BASE_FPS, codec=None):
    """Encodes BGR uint8 images of one even size as an MP4 file.

    Encoded in a local temporary file and then written atomically, so a
    failure leaves no partial video (and remote paths work).

    Args:
        path: output file (local or remote).
        images: iterable of (H, W, 3) BGR uint8 images, H and W even.
        fps: frame rate (int or `fractions.Fraction`).
        codec: encoder name (default: `video_codec()`).

    Returns:
        (codec used, number of frames written).

    Raises:
        FeatureShapeError: no image, odd or changing sizes.

    Example:

    >>> import tempfile
    >>> black = [np.zeros((16, 16, 3), np.uint8)] * 3
    >>> write_mp4(os.path.join(tempfile.mkdtemp(), "b.mp4"), black, 10,
    ...           "mpeg4")
    ('mpeg4', 3)
    """
    codec = video_codec(codec)
    count, shape = 0, None
    # PyAV muxes into local files only: encode into a local temporary file,
    # then write its bytes to `path` (local or remote) atomically.
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "video.mp4")
        with av.open(local, "w") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.pix_fmt = "yuv420p"
            for image in images:
                image = np.ascontiguousarray(image)
                if shape is None:
                    shape = image.shape
                    if image.ndim != 3 or shape[0] % 2 or shape[1] % 2:
                        raise errors.FeatureShapeError(
                            f"video frames must be (even H, even W, 3), got "
                            f"{shape}", path=path)
                    stream.height, stream.width = shape[:2]
                elif image.shape != shape:
                    raise errors.FeatureShapeError(
                        f"frame {count} has shape {image.shape}, the first "
                        f"{shape}", path=path)
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                container.mux(stream.encode(frame))
                count += 1
            if not count:
                raise errors.FeatureShapeError("no frame to encode",
                                               path=path)
            container.mux(stream.encode())
        with open(local, "rb") as f:
            filesystems.atomic_write_bytes(path, f.read())
    return codec, count


def file_stem(query_name, candidate_name):
    """`<query>__<candidate>` with characters unsafe in file names as '_'.

    Example:

    >>> file_stem("pour/0001", "0002 x")
    'pour_0001__0002_x'
    """
    def safe(name):
        return re.sub(r"[^A-Za-z0-9._-]", "_", str(name))
    return f"{safe(query_name)}__{safe(candidate_name)}"


def visualize_pair(query, candidate, out_dir, *, stride=1,
                   distance=align.DEFAULT_DISTANCE, tile_height=160,
                   thumb_height=96, max_sheet_frames=48, codec=None):
    """Aligns two videos and writes the plot (and, with frames, the MP4
    and the contact sheet) into `out_dir`.

    Args:
        query, candidate: `EmbeddedVideo`s; both with `frames` or neither.
        out_dir: existing output folder (local or remote).
        stride: every `stride`-th query frame in the video and sheet (the
            plot and the numbers use every frame); the video plays at
            `BASE_FPS / stride` so it keeps its duration.
        distance: `cdist` metric of the nearest neighbours.
        tile_height, thumb_height: frame heights in the video / the sheet.
        max_sheet_frames: most cells of the contact sheet.
        codec: video encoder (default `video_codec()`).

    Returns:
        dict: `query`, `candidate`, `dataset`, `query_split`,
        `candidate_split`, `num_query_frames`, `num_candidate_frames`,
        `tau` (Kendall's tau of this pair, NaN if undefined),
        `phase_agreement` (None without labels), `nearest` (the matched
        candidate row of every query row), `query_frames` /
        `candidate_frames` (source frame numbers of `nearest`'s rows),
        `codec` (None without frames) and `files` {plot[, video, sheet]}.

    Raises:
        ConfigError: stride < 1, or frames on one side only.
        FeatureShapeError: unusable embeddings or frames.

    Example:

    ```python
    visualize_pair(EmbeddedVideo("a", embs_a), EmbeddedVideo("b", embs_b),
                   "out")  # out/a__b_plot.png
    ```
    """
    if int(stride) < 1:
        raise errors.ConfigError(f"alignment stride must be >= 1, got "
                                 f"{stride!r}")
    has_frames = [v.frames is not None for v in (query, candidate)]
    if has_frames[0] != has_frames[1]:
        raise errors.ConfigError("give frames for both videos or neither")
    for video in (query, candidate):
        if video.frames is not None and len(video.frames) != video.num_frames:
            raise errors.FrameCountMismatchError(
                f"{len(video.frames)} frames for {video.num_frames} "
                "embedding rows", video_id=video.name)
    nns = nearest_neighbour_alignment(query.embs, candidate.embs, distance)
    tau = align.alignment_tau(nns)
    labelled = query.labels is not None and candidate.labels is not None
    stem = filesystems.join(out_dir, file_stem(query.name, candidate.name))
    files = {"plot": f"{stem}_plot.png"}
    write_png(files["plot"], draw_alignment_plot(
        nns, candidate.num_frames, query_labels=query.labels,
        candidate_labels=candidate.labels, query_name=query.name,
        candidate_name=candidate.name, tau=tau))
    used_codec = None
    if has_frames[0]:
        rows = range(0, query.num_frames, int(stride))
        files["video"] = f"{stem}.mp4"
        used_codec, _ = write_mp4(
            files["video"],
            (draw_aligned_pair(query, candidate, t, nns[t], tile_height)
             for t in rows),
            fractions.Fraction(BASE_FPS, int(stride)), codec)
        files["sheet"] = f"{stem}_sheet.png"
        write_png(files["sheet"], draw_contact_sheet(
            query, candidate, nns,
            sheet_rows(query.num_frames, stride, max_sheet_frames),
            thumb_height))
    return {
        "query": query.name, "candidate": candidate.name,
        "dataset": query.dataset, "query_split": query.split,
        "candidate_split": candidate.split,
        "num_query_frames": query.num_frames,
        "num_candidate_frames": candidate.num_frames,
        "tau": tau,
        "phase_agreement": (phase_agreement(nns, query.labels,
                                            candidate.labels)
                            if labelled else None),
        "nearest": nns.tolist(),
        "query_frames": [query.frame_number(r)
                         for r in range(query.num_frames)],
        "candidate_frames": [candidate.frame_number(int(r)) for r in nns],
        "codec": used_codec,
        "files": files,
    }


# ------------------------------------------------------------- inputs
def _row_name(dataset, split, index):
    prefix = "" if dataset == DEFAULT_DATASET else f"{dataset}/"
    return f"{prefix}{split}_{index}"


def _read_video_ids(path, data):
    """{dataset: {split: [ids]}} of the CARL task's `embeddings_videos.json`,
    checked against the embeddings' datasets and video counts."""
    try:
        ids = filesystems.read_json(path)
    except ValueError as e:
        raise errors.MalformedFileError(f"not valid JSON ({e})",
                                        path=path) from None
    datasets = ids.get("datasets") if isinstance(ids, dict) else None
    if not isinstance(datasets, dict):
        raise errors.MalformedFileError(
            "expected {'datasets': {dataset: {split: [video ids]}}}",
            path=path, key="datasets")
    if set(datasets) != set(data):
        raise errors.MalformedFileError(
            f"datasets {sorted(datasets)} differ from the embeddings' "
            f"{sorted(data)}", path=path, key="datasets")
    seen = set()
    for ds, splits in data.items():
        for split in SPLITS:
            entry = datasets[ds]
            names = entry.get(split) if isinstance(entry, dict) else None
            key = f"datasets.{ds}.{split}"
            count = len(splits[split]["embs"])
            if not isinstance(names, list) or len(names) != count or not all(
                    isinstance(n, str) and n for n in names):
                raise errors.MalformedFileError(
                    f"expected a list of {count} video ids (the embeddings' "
                    f"{split} videos)", path=path, key=key)
            for name in names:
                if name in seen:
                    raise errors.MalformedFileError(
                        "video id listed twice", path=path, key=key,
                        video_id=name)
                seen.add(name)
    return datasets


def load_embedded_videos(ground_truth, predictions=None, videos_file=None):
    """Every video of a frame-wise embeddings file, named by its id.

    Args:
        ground_truth: .npz/.json with the frame labels (`framewise_io`).
        predictions: .npz/.json with the embeddings (default: the same).
        videos_file: video ids (default: `embeddings_videos.json` beside
            `predictions`; without it videos are named by npz key, e.g.
            `val_0`).

    Returns:
        (videos, ids_path): `EmbeddedVideo`s in file order (datasets, then
        train, val) and the ids file used, or None.

    Raises:
        MalformedFileError: unreadable files, or ids that do not match
            the embeddings (datasets, counts, repeated ids).

    Example:

    ```python
    videos, _ = load_embedded_videos("run/embeddings.npz")
    [v.name for v in videos if v.split == "val"]
    ```
    """
    predictions = ground_truth if predictions is None else predictions
    data = load_framewise(ground_truth, predictions)
    path = videos_file or os.path.join(os.path.dirname(str(predictions)),
                                       VIDEOS_FILE)
    if filesystems.isfile(path):
        ids = _read_video_ids(path, data)
    elif videos_file:
        raise errors.MalformedFileError("video ids file not found",
                                        path=path)
    else:
        ids, path = None, None
    videos = []
    for ds, splits in data.items():
        for split in SPLITS:
            for i, (embs, labels) in enumerate(zip(splits[split]["embs"],
                                                   splits[split]["labels"])):
                name = ids[ds][split][i] if ids else _row_name(ds, split, i)
                videos.append(EmbeddedVideo(name, embs, labels, dataset=ds,
                                            split=split))
    return videos, path


def parse_pairs(value):
    """`--alignment_pairs`: a count N or `query,candidate[;query,candidate]`.

    Returns:
        int N >= 1, or a list of (query id, candidate id).

    Raises:
        ConfigError: anything else.

    Example:

    >>> parse_pairs("3"), parse_pairs("a,b; c,d")
    (3, [('a', 'b'), ('c', 'd')])
    """
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        if int(text) < 1:
            raise errors.ConfigError("--alignment_pairs: the number of pairs "
                                     "must be >= 1")
        return int(text)
    pairs = []
    for item in text.split(";"):
        parts = [p.strip() for p in item.split(",")]
        if len(parts) != 2 or not all(parts):
            raise errors.ConfigError(
                f"--alignment_pairs: expected a number of pairs or "
                f"'query,candidate[;query,candidate...]' video ids, got "
                f"{item.strip()!r} in {value!r}")
        pairs.append(tuple(parts))
    return pairs


def select_pairs(videos, pairs, source=None):
    """The (query, candidate) videos to draw.

    Args:
        videos: `EmbeddedVideo`s (`load_embedded_videos`).
        pairs: N (per dataset, consecutive evaluation videos: val 0 -> val
            1, val 1 -> val 2, ..., at most N pairs) or a list of (query id,
            candidate id) from any split or dataset.
        source: the file the ids come from (for errors).

    Returns:
        list of (query, candidate) `EmbeddedVideo`s.

    Raises:
        DataError: an unknown video id, or no dataset with two evaluation
            videos.

    Example:

    >>> v = [EmbeddedVideo(n, np.zeros((2, 1))) for n in "abc"]
    >>> [(q.name, c.name) for q, c in select_pairs(v, 5)]
    [('a', 'b'), ('b', 'c')]
    """
    if isinstance(pairs, int):
        chosen, by_dataset = [], {}
        for video in videos:
            if video.split == "val":
                by_dataset.setdefault(video.dataset, []).append(video)
        for val in by_dataset.values():
            chosen.extend(list(zip(val[:-1], val[1:]))[:pairs])
        if not chosen:
            raise errors.DataError(
                "no dataset has two evaluation (val) videos to align; name "
                "the videos with --alignment_pairs=query,candidate",
                path=source)
        return chosen
    by_name = {v.name: v for v in videos}
    out = []
    for names in pairs:
        for name in names:
            if name not in by_name:
                known = ", ".join(list(by_name)[:5])
                raise errors.DataError(
                    f"not in the embeddings ({len(by_name)} videos: "
                    f"{known}{', ...' if len(by_name) > 5 else ''})",
                    path=source, video_id=name)
        out.append((by_name[names[0]], by_name[names[1]]))
    return out


class RecordFrames:
    """The frames of one video's embedding rows, decoded on first use.

    Args:
        encoded: JPEG bytes of every frame of the record.
        frame_indices: record frame of each embedding row.
        path: the record file (for errors).
        video_id: the video (for errors).

    Example:

    ```python
    frames = RecordFrames(jpegs, np.flatnonzero(labels >= 0), path, vid)
    frames[0]  # BGR uint8
    ```
    """

    def __init__(self, encoded, frame_indices, path, video_id):
        self._encoded = encoded
        self._indices = np.asarray(frame_indices, np.int64)
        self._path, self._video_id = path, video_id
        self._cache = {}

    def __len__(self):
        return len(self._indices)

    def __getitem__(self, row):
        row = int(row)
        if row not in self._cache:
            index = int(self._indices[row])
            try:
                self._cache[row] = jpeg.check_jpeg(
                    self._encoded[index], path=self._path,
                    video_id=self._video_id)
            except errors.DataError as e:
                raise type(e)(e.message, path=e.path, video_id=e.video_id,
                              key=f"image/encoded[{index}]") from None
        return self._cache[row]


def read_record_frames(records, video_ids):
    """JPEGs and frame labels of the records of `video_ids`.

    Args:
        records: file pattern(s) of frame-labels records (comma-separated
            or a list; `python -m tfaction.data.convert --format=tcc`).
        video_ids: the `video/id`s needed.

    Returns:
        {video id: (record file, [JPEG bytes], (N,) int64 frame labels)};
        the first record of an id wins. Reading stops once all are found.

    Raises:
        DataError: no file matches; an id is in no record.
        MalformedFileError: a record is not a frame-labels record.
        CorruptRecordError: a truncated or corrupt TFRecord file.
    """
    import tensorflow as tf

    from tfaction.data import schemas
    from tfaction.data import tfrecord_io

    wanted, found = set(video_ids), {}
    files = tfrecord_io.list_files(records)
    for path in files:
        for index, data in enumerate(tfrecord_io.iterate_records(path)):
            try:
                parsed = schemas.parse_frame_labels(data)
            except tf.errors.InvalidArgumentError as e:
                raise errors.MalformedFileError(
                    f"record {index} is not a frame-labels record (written "
                    f"by `python -m tfaction.data.convert --format=tcc`): "
                    f"{e.message.strip()}", path=path) from None
            vid = parsed[schemas.VIDEO_ID].numpy().decode()
            if vid in wanted and vid not in found:
                found[vid] = (path, list(
                    parsed[schemas.IMAGE_ENCODED].numpy()),
                    parsed[schemas.FRAME_LABEL_INDEX].numpy().astype(
                        np.int64))
                if len(found) == len(wanted):
                    return found
    missing = sorted(wanted - set(found))
    raise errors.DataError(
        f"no record with this video/id in the {len(files)} file(s) matching "
        f"the pattern ({len(missing)} id(s) missing)", path=str(records),
        video_id=missing[0])


def attach_frames(video, record):
    """`video` with its frames from `record` (`read_record_frames` value).

    Embedding row r is the r-th record frame labelled >= 0 (the CARL task
    scores labelled frames only); their labels must equal the embeddings'.

    Raises:
        FrameCountMismatchError: another number of labelled frames.
        MalformedFileError: the labels differ.

    Example:

    ```python
    video = attach_frames(video, read_record_frames(pattern, [vid])[vid])
    ```
    """
    path, encoded, record_labels = record
    kept = np.flatnonzero(record_labels >= 0)
    if len(kept) != video.num_frames:
        raise errors.FrameCountMismatchError(
            f"the record has {len(kept)} labelled frames (of "
            f"{len(record_labels)}) but the embeddings have "
            f"{video.num_frames} rows; were they written from these "
            "records?", path=path, video_id=video.name)
    if video.labels is not None and not np.array_equal(
            record_labels[kept], video.labels):
        row = int(np.flatnonzero(record_labels[kept] != video.labels)[0])
        raise errors.MalformedFileError(
            f"frame labels differ from the embeddings' at row {row} (record "
            f"frame {int(kept[row])}: {int(record_labels[kept[row]])} vs "
            f"{int(video.labels[row])})", path=path, video_id=video.name,
            key="frame/label/index")
    return dataclasses.replace(
        video, frames=RecordFrames(encoded, kept, path, video.name),
        frame_indices=kept)


def run_cli(ground_truth, predictions, options):
    """CLI entry (`experiments/evaluate.py --alignment_dir`).

    Args:
        ground_truth, predictions: as `framewise.run_cli` (labels and
            embeddings; usually the same `embeddings.npz`).
        options: flag values by name; used: `alignment_dir` (required),
            `alignment_pairs` (see `parse_pairs`, default 1),
            `alignment_stride` (default 1), `records` (pattern of the
            converted records; without it only the plots are drawn),
            `distance`.

    Returns:
        dict: `alignment_dir`, `video_ids` (the ids file or None),
        `records`, and `pairs` (`visualize_pair` results, without the
        per-frame lists) ; the per-frame lists go to
        `<alignment_dir>/alignments.json`.

    Raises:
        ConfigError: bad flag values.
        DataError: unknown ids, missing records, mismatching frames.

    Example:

    >>> # run_cli("e.npz", "e.npz", {"alignment_dir": "out",
    >>> #         "records": "records/*.tfrecord"})
    """
    opt = {**DEFAULTS, **{k: v for k, v in (options or {}).items()
                          if v is not None}}
    out_dir = opt.get("alignment_dir")
    if not out_dir:
        raise errors.ConfigError("alignment_dir is required")
    stride = int(opt["alignment_stride"])
    if stride < 1:
        raise errors.ConfigError(f"--alignment_stride must be >= 1, got "
                                 f"{stride}")
    wanted = parse_pairs(opt["alignment_pairs"])
    videos, ids_path = load_embedded_videos(ground_truth, predictions)
    source = ids_path or predictions
    pairs = select_pairs(videos, wanted, source)
    records = opt.get("records")
    if records:
        if ids_path is None:
            raise errors.MalformedFileError(
                f"reading frames needs the video ids: no {VIDEOS_FILE} "
                "beside the embeddings (the CARL task writes it with "
                "embeddings.npz)", path=predictions)
        needed = {v.name: v for pair in pairs for v in pair}
        found = read_record_frames(records, list(needed))
        with_frames = {name: attach_frames(v, found[name])
                       for name, v in needed.items()}
        pairs = [(with_frames[q.name], with_frames[c.name]) for q, c in pairs]
    filesystems.makedirs(out_dir)
    results = [visualize_pair(q, c, out_dir, stride=stride,
                              distance=opt.get("distance") or
                              align.DEFAULT_DISTANCE)
               for q, c in pairs]
    filesystems.write_json(filesystems.join(out_dir, "alignments.json"),
                           {"pairs": results})
    per_frame = ("nearest", "query_frames", "candidate_frames")
    return {"alignment_dir": str(out_dir), "video_ids": ids_path,
            "records": records,
            "pairs": [{k: v for k, v in r.items() if k not in per_frame}
                      for r in results]}


def format_lines(result):
    """One line per drawn pair (for the CLI's stdout).

    Example:

    >>> print(format_lines({"pairs": [{"query": "a", "candidate": "b",
    ...     "tau": 1.0, "phase_agreement": None,
    ...     "files": {"plot": "o/a__b_plot.png"}}]}))
    alignment a -> b: tau 1.0000: o/a__b_plot.png
    """
    lines = []
    for pair in result["pairs"]:
        scores = f"tau {pair['tau']:.4f}"
        if pair.get("phase_agreement") is not None:
            scores += f", same phase {pair['phase_agreement']:.4f}"
        lines.append(f"alignment {pair['query']} -> {pair['candidate']}: "
                     f"{scores}: {', '.join(pair['files'].values())}")
    return "\n".join(lines)
