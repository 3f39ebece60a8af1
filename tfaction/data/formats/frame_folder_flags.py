"""Flags shared by the frame-folder formats (hmdb51_frames, charades_frames).

Both read JPEG frame folders below one root, so they declare these flags
alike (the registry defines a flag declared by several formats once).

Example:

```python
registry.register_format("my_frames", flags=[*frame_folder_flags.FLAGS,
                                             ...], ...)
```
"""

from tfaction.data.formats import registry

FRAMES_ROOT = registry.flag("string", "frames_root", None,
                            "Root of the RGB frame folders.", required=True)
JPEG_CHECK = registry.flag(
    "enum", "jpeg_check", "decode",
    "decode: decode every JPEG; header: start/end markers only.",
    enum_values=["decode", "header"])
FLAGS = (FRAMES_ROOT, JPEG_CHECK)
